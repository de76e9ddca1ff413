"""FutureStore: long-poll wake-up, pending answer after the bound, retention, 404 vs 410, the
completion logs of batch polls, cancel hooks."""

from __future__ import annotations

import threading
import time

import pytest

from tinker.local.server.futures import FutureStore, Target
from tinker.local.server.http_errors import Gone, NotFound
from tinker.local.server.outcomes import Outcome


def _done(request_id: str, text: str) -> Outcome:
    return Outcome(request_id, {"text": text}, failed=False)


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
    result = _done("m:1", "metrics")
    store.resolve("m:1", result)
    waiting.join(10)
    assert not waiting.is_alive()  # returned well before its 30 s bound
    assert got == [result]


def test_unknown_id_is_not_found() -> None:
    with pytest.raises(NotFound, match="'nope' not found"):
        FutureStore(delivered_grace_seconds=600.0, undelivered_seconds=3600.0).wait("nope", 0)


def test_delivered_result_is_kept_for_the_grace_period_then_gone() -> None:
    clock = _Clock()
    store = FutureStore(delivered_grace_seconds=10, undelivered_seconds=1000, clock=clock)
    store.add("m:1")
    result = _done("m:1", "x1")
    store.resolve("m:1", result)
    assert store.wait("m:1", 0) is result
    clock.now += 5
    assert store.sweep() == 0
    assert store.wait("m:1", 0) is result  # a re-poll after a lost response still works
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
    store.resolve("done", _done("done", "x1"))
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
    first = _done("m:1", "first")
    store.resolve("m:1", first)
    store.resolve("m:1", _done("m:1", "second"))
    assert store.wait("m:1", 0) is first


SAMPLER = Target("s:sample:0", 0)


def test_completions_come_after_the_cursor_and_are_forgotten_once_seen() -> None:
    store = FutureStore(delivered_grace_seconds=600.0, undelivered_seconds=3600.0)
    for request_id in ("a", "b"):
        store.add(request_id, target=SAMPLER)
    store.add("clone", target=Target("s:sample:0", 1))
    store.add("plain")
    for request_id in ("b", "clone", "plain", "a"):
        store.resolve(request_id, _done(request_id, request_id))
    found, cursor = store.completions(SAMPLER, 0, 0.0, [])
    assert [c.request_id for c in found] == ["b", "a"]  # in the order they finished
    assert found[0].cursor < found[1].cursor == cursor
    again, same = store.completions(SAMPLER, found[0].cursor, 0.0, [])
    assert [c.request_id for c in again] == ["a"] and same == cursor
    assert store.completions(SAMPLER, cursor, 0.0, []) == ([], cursor)
    clone, _ = store.completions(Target("s:sample:0", 1), 0, 0.0, [])
    assert [c.request_id for c in clone] == ["clone"]


def test_a_batch_poll_waits_for_a_completion_within_its_bound() -> None:
    store = FutureStore(delivered_grace_seconds=600.0, undelivered_seconds=3600.0)
    store.add("a", target=SAMPLER)
    started = time.monotonic()
    assert store.completions(SAMPLER, 0, 0.1, []) == ([], 0)
    assert time.monotonic() - started >= 0.1
    threading.Timer(0.05, lambda: store.resolve("a", _done("a", "x"))).start()
    found, _ = store.completions(SAMPLER, 0, 10.0, [])
    assert [c.request_id for c in found] == ["a"]


def test_acknowledged_results_count_as_delivered() -> None:
    clock = _Clock()
    store = FutureStore(delivered_grace_seconds=10.0, undelivered_seconds=3600.0, clock=clock)
    for request_id in ("acked", "kept"):
        store.add(request_id, target=SAMPLER)
        store.resolve(request_id, _done(request_id, "x"))
    store.completions(SAMPLER, 0, 0.0, ["acked", "unknown"])
    clock.now += 11
    assert store.sweep() == 1
    with pytest.raises(Gone):
        store.wait("acked", 0)
    assert store.wait("kept", 0) is not None


def test_cancel_calls_the_hook_of_a_pending_request_once() -> None:
    store = FutureStore(delivered_grace_seconds=600.0, undelivered_seconds=3600.0)
    store.add("m:1")
    calls: list[str] = []
    store.set_cancel("m:1", lambda: calls.append("cancel") is None)
    assert store.cancel("m:1") is True
    assert store.cancel("m:1") is False  # the hook is used up
    assert calls == ["cancel"]
    store.add("m:2")
    store.set_cancel("m:2", lambda: True)
    store.resolve("m:2", _done("m:2", "x"))
    assert store.cancel("m:2") is False  # finished: nothing to stop
    with pytest.raises(NotFound):
        store.cancel("never")
