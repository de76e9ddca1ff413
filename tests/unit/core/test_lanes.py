"""Ordered lanes: submits reach the server in seq_id order, retries keep their seq_id, results
resolve concurrently, and nothing waits on a thread for its turn."""

from __future__ import annotations

import functools
import random
import threading
import time
from typing import Any

import pytest
from core_helpers import RuntimeFactory
from support.fake_service import FakeService, FakeTime, Reply

from tinker._calls import ApiCall
from tinker._futures import APIFuture, combine, completed, flatten
from tinker._lanes import OrderedLane
from tinker._retry import SUBMIT
from tinker._runtime import RuntimeOptions
from tinker._transport import Traffic


def forward_call(path: str, seq: int, poll_as: str, **fields: Any) -> ApiCall:
    return ApiCall(
        traffic=Traffic.TRAIN,
        method="POST",
        path=path,
        body={"seq_id": seq},
        poll_as=poll_as,
        **fields,
    )


@pytest.fixture
def slow_polls(service: FakeService) -> FakeService:
    service.auto_complete = False
    return service


def test_lane_submits_arrive_in_seq_order_with_retries_and_resolve_concurrently(
    slow_polls: FakeService, make_runtime: RuntimeFactory
) -> None:
    service = slow_polls
    rng = random.Random(7)
    flaky = set(rng.sample(range(1, 201), 30))
    failures: dict[int, int] = {}

    def intercept(path: str, body: Any) -> Reply | None:
        if path == "/api/v1/forward_backward" and body["seq_id"] in flaky:
            count = failures.get(body["seq_id"], 0)
            if count < 2:
                failures[body["seq_id"]] = count + 1
                return Reply(503 if count == 0 else 429)
        return None

    service.intercept = intercept
    fake = FakeTime()
    runtime = make_runtime(
        options=RuntimeOptions(heartbeat=False, submit_workers=4, sleep=fake.sleep)
    )
    lane = runtime.lane()
    seq_ids = lane.reserve(200)
    assert seq_ids == list(range(1, 201))

    def submit_one(seq: int) -> APIFuture[Any]:
        call = forward_call("/api/v1/forward_backward", seq, "ForwardBackward", retry=SUBMIT)
        return flatten(lane.submit(seq, functools.partial(runtime.submit, call)))

    # Submit from several threads in shuffled order: the lane restores seq order.
    order = seq_ids[:]
    rng.shuffle(order)
    futures: dict[int, APIFuture[Any]] = {}
    lock = threading.Lock()

    def producer(chunk: list[int]) -> None:
        for seq in chunk:
            future = submit_one(seq)
            with lock:
                futures[seq] = future

    threads = [threading.Thread(target=producer, args=(order[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    deadline = time.monotonic() + 30
    while len(service.seen("/api/v1/retrieve_future")) < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    while time.monotonic() < deadline:
        if all(f.request_id is not None for f in futures.values()):
            break
        time.sleep(0.01)
    arrivals = [r.body["seq_id"] for r in service.seen("/api/v1/forward_backward")]
    assert arrivals == sorted(arrivals)  # retries repeat a seq id, never reorder
    assert sorted(set(arrivals)) == seq_ids
    assert len(arrivals) == 200 + 2 * len(flaky)

    # Results are polled concurrently: the last one resolves while the others are pending.
    last = futures[200]
    service.complete(str(last.request_id), {"n": 200})
    assert last.result(timeout=20) == {"n": 200}
    assert not any(futures[seq].done() for seq in range(1, 200))
    service.complete_many({str(f.request_id): {"n": seq} for seq, f in futures.items()})
    assert [futures[s].result(timeout=20)["n"] for s in seq_ids] == seq_ids


def test_lane_failures_do_not_block_later_submits_and_skip_frees_a_slot() -> None:
    lane = OrderedLane()
    ran: list[int] = []
    first, second, third, fourth = lane.reserve(4)

    def boom() -> APIFuture[int]:
        ran.append(first)
        raise RuntimeError("submit failed")

    later = lane.submit(fourth, lambda: completed(ran.append(fourth) or 4))
    middle = lane.submit(second, lambda: completed(ran.append(second) or 2))
    assert not later.done() and not middle.done()
    failing = lane.submit(first, boom)
    assert isinstance(failing.exception(timeout=5), RuntimeError)
    assert middle.result(timeout=5) == 2
    assert not later.done()  # waits for `third`
    lane.skip(third)
    assert later.result(timeout=5) == 4
    assert ran == [first, second, fourth]
    with pytest.raises(ValueError, match="not reserved"):
        lane.submit(99, lambda: completed(None))
    with pytest.raises(ValueError, match="not reserved or has already run"):
        lane.submit(first, lambda: completed(None))


def test_the_next_submit_starts_only_when_the_previous_one_completed() -> None:
    lane = OrderedLane()
    one, two = lane.reserve(2)
    sent: APIFuture[str] = APIFuture()
    started: list[int] = []
    first = lane.submit(one, lambda: started.append(one) or sent)
    second = lane.submit(two, lambda: started.append(two) or completed("two"))
    assert started == [one] and not first.done()  # no thread waits meanwhile
    sent.set_exception(OSError("lost"))
    assert started == [one, two]
    assert isinstance(first.exception(0), OSError) and second.result(0) == "two"
    later = lane.reserve(1)[0]
    lane.fail_pending(RuntimeError("closing"))  # nothing parked: nothing to fail
    assert lane.submit(later, lambda: completed(3)).result(0) == 3


def test_a_single_worker_pool_never_deadlocks_on_composed_futures(
    make_runtime: RuntimeFactory,
) -> None:
    runtime = make_runtime(options=RuntimeOptions(heartbeat=False, submit_workers=1))
    lane = runtime.lane()
    chunk_futures = []
    for seq in lane.reserve(30):
        call = forward_call("/api/v1/forward", seq, "Forward")
        chunk_futures.append(flatten(lane.submit(seq, functools.partial(runtime.submit, call))))
    merged = combine(chunk_futures, lambda values: [v["echo"]["seq_id"] for v in values])
    assert merged.result(timeout=30) == list(range(1, 31))


def test_a_long_run_of_submits_that_complete_at_once_does_not_recurse() -> None:
    lane = OrderedLane()
    seq_ids = lane.reserve(5000)
    futures = [lane.submit(seq, lambda seq=seq: completed(seq)) for seq in reversed(seq_ids)]
    assert [f.result(0) for f in reversed(futures)] == seq_ids


def test_chunks_sent_together_go_first_last_and_hold_back_later_seq_ids() -> None:
    lane = OrderedLane()
    started: list[int] = []
    sends: dict[int, APIFuture[int]] = {}

    def start(seq: int) -> APIFuture[int]:
        started.append(seq)
        sends[seq] = APIFuture()
        return sends[seq]

    first = lane.reserve(3)
    later = lane.reserve(1)
    chunks = lane.submit_together(first, [functools.partial(start, s) for s in first])
    after = lane.submit(later[0], functools.partial(start, later[0]))
    assert started == [2, 3]  # the later chunks at once, not the first
    sends[3].set_exception(RuntimeError("chunk 3 refused"))
    assert started == [2, 3]
    sends[2].set_result(2)
    assert started == [2, 3, 1]  # every other chunk settled: the first goes
    assert chunks[1].result() == 2 and isinstance(chunks[2].exception(), RuntimeError)
    assert not chunks[0].done() and started[-1] != 4  # the lane waits for the first chunk
    sends[1].set_result(1)
    assert chunks[0].result() == 1
    assert started == [2, 3, 1, 4]
    sends[4].set_result(4)
    assert after.result() == 4


def test_a_poisoned_lane_fails_what_is_queued_and_everything_later_and_sends_nothing() -> None:
    lane = OrderedLane()
    started: list[int] = []
    held: APIFuture[int] = APIFuture()
    one, two = lane.reserve(2)
    chunks = lane.reserve(3)
    in_flight = lane.submit(one, lambda: started.append(one) or held)
    queued = lane.submit(two, lambda: started.append(two) or completed(2))
    together = lane.submit_together(chunks, [lambda: completed(0)] * 3)
    poison = RuntimeError("poisoned")
    lane.poison(poison)
    lane.poison(RuntimeError("a second poison"))  # the first one stays
    later = lane.submit(lane.reserve(1)[0], lambda: completed(9))
    for future in (queued, *together, later):
        assert future.exception(0) is poison
    held.set_result(1)  # the request in flight still completes
    assert in_flight.result(0) == 1
    assert started == [one]
    with pytest.raises(RuntimeError, match=r"^poisoned$"):
        lane.hand_over("pickled")


def test_closing_fails_every_chunk_of_a_group_still_waiting_for_its_turn() -> None:
    lane = OrderedLane()
    (first,) = lane.reserve(1)
    lane.submit(first, lambda: APIFuture())  # in flight for good
    chunks = lane.submit_together(lane.reserve(3), [lambda: completed(0)] * 3)
    closing = RuntimeError("closing")
    lane.fail_pending(closing)
    assert [chunk.exception(0) for chunk in chunks] == [closing] * 3


def test_a_lane_failed_between_two_runs_stops_without_an_error() -> None:
    lane = OrderedLane()
    one, two = lane.reserve(2)
    advance = lane._advance

    def advance_then_close() -> bool:
        ready = advance()  # True: `two` is parked ...
        lane.fail_pending(RuntimeError("closing"))  # ... and is failed before it is run
        return ready

    lane._advance = advance_then_close  # type: ignore[method-assign]
    second = lane.submit(two, lambda: completed(2))
    first = lane.submit(one, lambda: completed(1))  # runs `one`, then finds `two` gone
    assert first.result(0) == 1
    assert str(second.exception(0)) == "closing"
