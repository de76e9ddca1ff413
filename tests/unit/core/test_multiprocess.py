"""Fork and spawn: a runtime made in the parent works in worker processes, same session."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from typing import Any

import pytest
from core_fake_service import FakeService
from core_mp_worker import use_runtime

from tinker._runtime import Runtime, RuntimeOptions, Traffic
from tinker.config import ClientConfig


@pytest.fixture
def runtime(service: FakeService) -> Runtime:
    config = ClientConfig(api_key="k", base_url=service.url, telemetry=False)
    started = Runtime.start(config, options=RuntimeOptions())
    yield started  # type: ignore[misc]
    started.close()


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_pool_workers_use_the_parent_session(
    method: str, runtime: Runtime, service: FakeService
) -> None:
    # Exercise the parent's threads first, so that the child inherits live state.
    assert runtime.call(Traffic.TRAIN, "GET", "/api/v1/warm")["path"] == "/api/v1/warm"
    context = multiprocessing.get_context(method)
    with context.Pool(2) as pool:
        results = pool.starmap(use_runtime, [(runtime, n) for n in range(4)], chunksize=1)
    assert [r["echo"] for r in results] == [{"n": n} for n in range(4)]
    assert all(r["path"] == f"/api/v1/items/{n}" for n, r in enumerate(results))
    assert all(r["same"] and r["session_id"] == "sess-1" for r in results)
    assert all(r["heartbeats"] == 1 for r in results)
    assert os.getpid() not in {r["pid"] for r in results}
    assert len(service.seen("/api/v1/create_session")) == 1
    # The parent is unaffected.
    assert runtime.call(Traffic.TRAIN, "GET", "/api/v1/after")["path"] == "/api/v1/after"


def test_bare_fork_child_rebuilds_lazily_and_the_parent_goes_on(runtime: Runtime) -> None:
    runtime.call(Traffic.TRAIN, "GET", "/api/v1/warm")
    pid = os.fork()
    if pid == 0:  # child: must work (and never hang) with the inherited runtime
        code = 1
        try:
            result = use_runtime(runtime, 7)
            code = 0 if result["echo"] == {"n": 7} and result["heartbeats"] == 1 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert use_runtime(runtime, 8)["echo"] == {"n": 8}


def test_fork_child_waiting_on_an_inherited_future_gets_its_result(
    runtime: Runtime, service: FakeService
) -> None:
    service.auto_complete = False
    inherited = runtime.track("inherited-1", "Sample", None)
    pid = os.fork()
    if pid == 0:  # child: only waits on the parent's future, never touches the runtime
        code = 1
        try:
            code = 0 if inherited.result(timeout=20) == {"done": 1} else 2
        finally:
            os._exit(code)
    service.complete("inherited-1", {"done": 1})
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert inherited.result(timeout=10) == {"done": 1}


def test_fork_while_other_threads_hold_runtime_locks(runtime: Runtime) -> None:
    from tinker._futures import chain
    from tinker._retry import RetryConfig

    handler = runtime.sample_retrier(RetryConfig())
    runtime.call_later(0.0, lambda: None)  # the parent's timer thread is running
    held, release = threading.Event(), threading.Event()

    def hold_locks() -> None:
        with runtime.timers._cond, handler._lock, runtime.sample_limiter._lock, runtime._lock:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold_locks)
    holder.start()
    assert held.wait(5)
    pid = os.fork()
    if pid == 0:  # child: every lock above is held by a thread that does not exist here
        code = 1
        try:
            signal.alarm(20)  # a deadlock kills the child instead of hanging the test

            def attempt() -> Any:
                submitted = runtime.submit(
                    runtime.sample_limiter.submit,
                    lambda: runtime.call(Traffic.SAMPLE, "POST", "/api/v1/asample", body={})[
                        "request_id"
                    ],
                )
                return chain(submitted, lambda rid: runtime.track(rid, "Sample", None))

            result = handler.execute(attempt).result(timeout=15)
            code = 0 if result == {"echo": {}} else 2
        finally:
            os._exit(code)
    release.set()
    holder.join(5)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
