"""CancelDrain: each queued cancel is sent once by at most `batch` drains at a time; a failed
cancel is logged and dropped; close sends what is left within its budget."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest

from tinker._cancels import CancelDrain


class HeldPool:
    """A scheduler that keeps the drains it is given until the test runs them."""

    def __init__(self, *, closed: bool = False) -> None:
        self.tasks: list[Callable[[], None]] = []
        self.closed = closed

    def call_later(self, delay: float, fn: Callable[[], None], on_drop: Any = None) -> bool:
        if self.closed:
            return False
        self.tasks.append(fn)
        return True


def test_at_most_batch_drains_run_and_every_id_is_sent_once() -> None:
    sent: list[str] = []
    pool = HeldPool()
    drain = CancelDrain(sent.append, pool, batch=2)
    for n in range(5):
        drain.cancel(f"req-{n}")
    assert len(pool.tasks) == 2  # the other three wait in the queue, not as tasks
    assert drain.queued == 5
    pool.tasks[0]()
    assert sent == [f"req-{n}" for n in range(5)]
    pool.tasks[1]()  # the second drain finds nothing left
    assert sent == [f"req-{n}" for n in range(5)]
    drain.cancel("req-5")  # both drains have finished: a new one starts
    assert len(pool.tasks) == 3


def test_a_failed_cancel_is_logged_and_the_rest_still_go(caplog: pytest.LogCaptureFixture) -> None:
    sent: list[str] = []

    def send(request_id: str) -> None:
        if request_id == "req-1":
            raise ConnectionError("refused")
        sent.append(request_id)

    pool = HeldPool()
    drain = CancelDrain(send, pool, batch=1)
    for n in range(3):
        drain.cancel(f"req-{n}")
    with caplog.at_level(logging.WARNING, logger="tinker._cancels"):
        pool.tasks[0]()
    assert sent == ["req-0", "req-2"]
    assert [r.getMessage() for r in caplog.records] == [
        "could not cancel request req-1 on the server: refused"
    ]


def test_close_sends_the_rest_within_its_budget_and_drops_what_is_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    sent: list[str] = []

    def slow_send(request_id: str) -> None:
        sent.append(request_id)
        now[0] += 0.4

    drain = CancelDrain(slow_send, HeldPool(closed=True), batch=4, clock=lambda: now[0])
    for n in range(5):
        drain.cancel(f"req-{n}")
    with caplog.at_level(logging.INFO, logger="tinker._cancels"):
        drain.close(1.0)
    assert sent == ["req-0", "req-1", "req-2"]  # 0.0, 0.4, 0.8 < 1.0; then the budget is spent
    assert drain.queued == 0
    assert "2 abandoned samples were not cancelled" in caplog.text


def test_cancels_never_wait_for_the_server() -> None:
    release = threading.Event()
    pool = HeldPool()
    drain = CancelDrain(lambda _: release.wait(5), pool, batch=1)
    drain.cancel("req-0")  # returns at once: the send happens on the pool
    assert pool.tasks and drain.queued == 1
    release.set()
