"""Worker pools: due-time order, bounded threads started on demand, closing, forks."""

from __future__ import annotations

import os
import threading
import time

import pytest

from tinker._workers import ClientClosedError, Pauses, WorkerPool


def test_timers_run_callbacks_in_time_order() -> None:
    timers = WorkerPool(1, name="test-timers")
    ran: list[str] = []
    done = threading.Event()
    timers.call_later(0.05, lambda: (ran.append("late"), done.set()))
    timers.call_later(0.0, lambda: ran.append("now"))
    assert done.wait(5)
    assert ran == ["now", "late"]
    timers.close()
    assert not timers.call_later(0.0, lambda: ran.append("after close"))
    assert timers.pending == 0


def test_waiting_tasks_cost_queue_entries_and_workers_stay_bounded() -> None:
    pool = WorkerPool(3, name="test-pool")
    release = threading.Event()
    running = [0, 0]
    lock = threading.Lock()

    def task() -> None:
        with lock:
            running[0] += 1
            running[1] = max(running)
        release.wait(5)
        with lock:
            running[0] -= 1

    futures = [pool.run(task) for _ in range(50)]
    for _ in range(40):  # and many delayed ones, that occupy nothing
        pool.call_later(60.0, lambda: None)
    assert pool.worker_count == 3
    deadline = time.monotonic() + 5
    while running[0] < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert running[0] == 3 and pool.pending == 47 + 40
    release.set()
    for future in futures:
        future.result(timeout=5)
    assert running[1] == 3
    pool.close()


def test_close_drops_queued_tasks_and_fails_their_futures() -> None:
    pool = WorkerPool(1, name="test-pool")
    gate, started = threading.Event(), threading.Event()

    def running() -> bool:
        started.set()
        return gate.wait(5)

    first = pool.run(running)
    assert started.wait(5)
    queued = pool.run(lambda: "never")
    dropped: list[BaseException] = []
    pool.call_later(30.0, lambda: None, dropped.append)
    pool.close(ClientClosedError("closing now"))
    assert str(queued.exception(timeout=1)) == "closing now"
    assert [str(reason) for reason in dropped] == ["closing now"]
    gate.set()
    assert first.result(timeout=5) is True  # what was running finishes
    assert isinstance(pool.run(lambda: 1).exception(0), ClientClosedError)


def test_workers_exit_when_idle() -> None:
    pool = WorkerPool(2, name="test-pool", idle_seconds=0.05)
    assert pool.run(lambda: 1).result(timeout=5) == 1
    deadline = time.monotonic() + 5
    while pool.worker_count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.worker_count == 0
    assert pool.run(lambda: 2).result(timeout=5) == 2  # and start again on demand


def test_a_task_that_raises_does_not_kill_its_worker(caplog: pytest.LogCaptureFixture) -> None:
    pool = WorkerPool(1, name="test-pool")

    def broken() -> None:
        raise RuntimeError("bug")

    pool.call_later(0.0, broken)
    assert pool.run(lambda: "still here").result(timeout=5) == "still here"
    assert "a task of test-pool failed" in caplog.text
    pool.close()


def test_fake_pauses_advance_a_fake_clock_and_go_on_at_once() -> None:
    slept: list[float] = []
    pool = WorkerPool(1, name="test-pool")
    done = threading.Event()
    started = time.monotonic()
    assert Pauses(slept.append).later(pool, 30.0, done.set)
    assert done.wait(5) and time.monotonic() - started < 5
    assert slept == [30.0]
    pool.close()
    assert not Pauses().later(pool, 1.0, done.set)


def test_a_forked_child_gets_an_empty_pool_with_free_locks() -> None:
    pool = WorkerPool(1, name="test-pool")
    held = threading.Event()
    release = threading.Event()

    def hold_the_lock() -> None:
        with pool._cond:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    assert held.wait(5)
    pid = os.fork()
    if pid == 0:  # child: the lock is held by a thread that does not exist here
        code = 1
        try:
            pool._after_fork_in_child()
            code = 0 if pool.pending == 0 and pool.run(lambda: 7).result(timeout=5) == 7 else 2
        finally:
            os._exit(code)
    release.set()
    holder.join(5)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    pool.close()
