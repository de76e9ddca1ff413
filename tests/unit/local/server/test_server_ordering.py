"""OrderedQueue: seq_id order regardless of arrival order, bounded waits on gaps."""

from __future__ import annotations

import logging
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinker.local.server.http_errors import ServiceUnavailable
from tinker.local.server.ordering import OrderedQueue


def test_jobs_run_in_seq_id_order_when_submitted_backwards() -> None:
    queue = OrderedQueue("run", gap_seconds=30.0)
    ran: list[int] = []
    done = threading.Event()

    def job(seq: int) -> None:
        ran.append(seq)
        if len(ran) == 5:
            done.set()

    for seq in (5, 3, 4, 2):
        queue.submit(seq, lambda seq=seq: job(seq))
    assert ran == []  # seq 1 has not arrived: nothing may run yet
    queue.submit(1, lambda: job(1))
    assert done.wait(10)
    assert ran == [1, 2, 3, 4, 5]


def test_gap_is_skipped_after_the_bounded_wait_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue = OrderedQueue("run-gap", gap_seconds=0.2)
    ran: list[int] = []
    done = threading.Event()

    def job(seq: int) -> None:
        ran.append(seq)
        if seq == 4:
            done.set()

    with caplog.at_level(logging.WARNING, logger="tinker.local.server.ordering"):
        queue.submit(1, lambda: job(1))
        queue.submit(4, lambda: job(4))
        queue.submit(3, lambda: job(3))
        assert done.wait(10)
    assert ran == [1, 3, 4]
    assert "seq_id 2 never arrived" in caplog.text
    assert queue.next_seq_id == 5


def test_late_arrival_after_a_skipped_gap_still_runs() -> None:
    queue = OrderedQueue("run-late", gap_seconds=0.1)
    ran: list[int] = []
    second = threading.Event()
    queue.submit(2, lambda: (ran.append(2), second.set()))
    assert second.wait(10)
    late = threading.Event()
    queue.submit(1, lambda: (ran.append(1), late.set()))
    assert late.wait(10)
    assert ran == [2, 1]


def test_a_failing_job_does_not_stop_the_queue() -> None:
    queue = OrderedQueue("run-fail", gap_seconds=30.0)
    done = threading.Event()

    def boom() -> None:
        raise RuntimeError("job failed")

    queue.submit(1, boom)
    queue.submit(2, done.set)
    assert done.wait(10)


def test_unordered_job_runs_before_later_seq_ids() -> None:
    queue = OrderedQueue("run-unordered", gap_seconds=30.0)
    ran: list[str] = []
    gate = threading.Event()
    started = threading.Event()
    done = threading.Event()
    queue.submit(1, lambda: (started.set(), gate.wait(10), ran.append("1")))
    assert started.wait(10)
    queue.submit(2, lambda: (ran.append("2"), done.set()))
    queue.submit_unordered(lambda: ran.append("x"))
    gate.set()
    assert done.wait(10)
    assert ran == ["1", "x", "2"]


def test_closed_queue_rejects_new_jobs() -> None:
    queue = OrderedQueue("run-closed", gap_seconds=30.0)
    queue.close()
    with pytest.raises(ServiceUnavailable, match="no longer loaded"):
        queue.submit(1, lambda: None)


def test_closing_abandons_queued_jobs_instead_of_losing_them() -> None:
    queue = OrderedQueue("run-abandon", gap_seconds=30.0)
    abandoned: list[int] = []
    queue.submit(3, lambda: None, lambda: abandoned.append(3))
    queue.submit(2, lambda: None, lambda: abandoned.append(2))
    queue.close()
    assert abandoned == [2, 3]


@settings(max_examples=30, deadline=None)
@given(st.permutations(list(range(1, 9))))
def test_any_arrival_order_executes_in_seq_id_order(arrival: list[int]) -> None:
    queue = OrderedQueue("run-property", gap_seconds=30.0, idle_seconds=0.05)
    ran: list[int] = []
    done = threading.Event()

    def job(seq: int) -> None:
        ran.append(seq)
        if len(ran) == len(arrival):
            done.set()

    for seq in arrival:
        queue.submit(seq, lambda seq=seq: job(seq))
    assert done.wait(10)
    assert ran == sorted(arrival)
