"""FutureStore: long-poll wake-up, pending answer after the bound, retention, 404 vs 410."""

from __future__ import annotations

import threading
import time

import pytest

from tinker.local.server.futures import FutureStore
from tinker.local.server.http_errors import Gone, NotFound


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_add_is_idempotent_per_request_id() -> None:
    store = FutureStore(delivered_grace_seconds=600.0, undelivered_seconds=3600.0)
    assert store.add("m:1") is True
    assert store.add("m:1") is False


def test_wait_returns_none_while_pending() -> None:
    store = FutureStore(delivered_grace_seconds=600.0, undelivered_seconds=3600.0)
    store.add("m:1")
    assert store.wait("m:1", 0.05) is None


def test_waiting_poll_wakes_when_the_result_arrives() -> None:
    store = FutureStore(delivered_grace_seconds=600.0, undelivered_seconds=3600.0)
    store.add("m:1")
    got: list[object] = []
    waiting = threading.Thread(target=lambda: got.append(store.wait("m:1", 30.0)))
    waiting.start()
    time.sleep(0.05)
    store.resolve("m:1", b'{"metrics":{}}')
    waiting.join(10)
    assert not waiting.is_alive()  # returned well before its 30 s bound
    assert got == [b'{"metrics":{}}']


def test_unknown_id_is_not_found() -> None:
    with pytest.raises(NotFound, match="'nope' not found"):
        FutureStore(delivered_grace_seconds=600.0, undelivered_seconds=3600.0).wait("nope", 0)


def test_delivered_result_is_kept_for_the_grace_period_then_gone() -> None:
    clock = _Clock()
    store = FutureStore(delivered_grace_seconds=10, undelivered_seconds=1000, clock=clock)
    store.add("m:1")
    store.resolve("m:1", b"x1")
    assert store.wait("m:1", 0) == b"x1"
    clock.now += 5
    assert store.sweep() == 0
    assert store.wait("m:1", 0) == b"x1"  # a re-poll after a lost response still works
    clock.now += 6
    assert store.sweep() == 1
    with pytest.raises(Gone, match="expired"):
        store.wait("m:1", 0)
    assert store.add("m:1") is False  # a late resubmit does not run the op again


def test_undelivered_result_expires_after_its_longer_bound_but_pending_never() -> None:
    clock = _Clock()
    store = FutureStore(delivered_grace_seconds=10, undelivered_seconds=100, clock=clock)
    store.add("done")
    store.add("pending")
    store.resolve("done", b"x1")
    clock.now += 50
    assert store.sweep() == 0
    clock.now += 51
    assert store.sweep() == 1
    with pytest.raises(Gone):
        store.wait("done", 0)
    assert store.wait("pending", 0) is None
    assert store.pending_count() == 1


def test_first_resolution_wins() -> None:
    store = FutureStore(delivered_grace_seconds=600.0, undelivered_seconds=3600.0)
    store.add("m:1")
    store.resolve("m:1", b"first")
    store.resolve("m:1", b"second")
    assert store.wait("m:1", 0) == b"first"
