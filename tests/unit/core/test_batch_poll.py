"""CompletionWatcher: the batch poller that wakes sample futures on their completion."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from tinker._batch_poll import BatchTarget, CompletionWatcher
from tinker._futures import APIFuture
from tinker._poller import PollJob
from tinker._transport import Reply
from tinker.errors import APIConnectionError, TinkerError

TARGET = BatchTarget("S:sample:0", 2)


def reply(status: int, body: Any) -> Reply:
    return Reply(status_code=status, headers={}, body=body, is_json=True, url="http://s")


class Harness:
    """A watcher whose polls answer from a script and run when the test says so."""

    def __init__(self, *answers: Reply | Exception) -> None:
        self.answers = list(answers)
        self.sent: list[tuple[dict[str, Any], float]] = []
        self.started: list[PollJob] = []
        self.sizes: list[int | None] = []  # the payload size each completion announced
        self.runs = 0
        self.watcher = CompletionWatcher(TARGET, self.send, self.start, self.run)

    def start(self, job: PollJob, size: int | None) -> None:
        self.started.append(job)
        self.sizes.append(size)

    def send(self, body: Mapping[str, Any], timeout: float) -> Reply:
        self.sent.append((dict(body), timeout))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def run(self, watcher: CompletionWatcher) -> None:
        self.runs += 1

    def step(self) -> float | None:
        """One poll; the pause before the next (None: idle or gave up)."""
        try:
            self.watcher.poll_once(self.watcher)
        except Exception as exc:
            return self.watcher.pause_after(exc)
        return None


def finished(cursor: int, *request_ids: str) -> Reply:
    """A batch poll's answer: `request_ids` finished, and the new cursor."""
    completions = [{"state": "finished", "request_id": r} for r in request_ids]
    return reply(200, {"completions": completions, "cursor": cursor})


def job(request_id: str) -> PollJob:
    return PollJob(
        future=APIFuture(request_id), request_id=request_id, request_type="Sample", structure=dict
    )


def test_completions_start_the_payload_polls_of_their_futures() -> None:
    harness = Harness(
        reply(
            200,
            {
                "completions": [
                    {
                        "state": "finished",
                        "request_id": "a",
                        "response_payload_uncompressed_size": 9,
                    },
                    {"state": "failed", "request_id": "b"},
                ],
                "cursor": 5,
            },
        ),
        finished(5),
    )
    a, b = job("a"), job("b")
    harness.watcher.wait(a)
    harness.watcher.wait(b)
    assert harness.runs == 1  # started once, not once per future
    assert harness.step() is None  # the new cursor waits for the payloads' acknowledgements
    assert harness.started == [a, b]
    assert harness.sizes == [9, None]  # what the payload poll holds of the response budget
    assert a.allow_metadata_only is False and b.allow_metadata_only is True
    body, timeout = harness.sent[0]
    assert body == {
        "target": {
            "type": "sampling_session",
            "sampling_session_id": "S:sample:0",
            "cloned_sampler_id": 2,
        },
        "prev_cursor": 0,
        "retrieved_request_ids": [],
    }
    assert timeout == 45.0
    a.future.set_result({})
    assert harness.runs == 2  # a's acknowledgement restarts the idle watcher
    b.future.set_result({})
    assert harness.runs == 2
    assert harness.step() is None
    assert len(harness.sent) == 2
    body, timeout = harness.sent[1]
    assert body["timeout"] == 0.0 and timeout == 5.0  # ack-only: nobody waits any more
    assert (body["prev_cursor"], body["retrieved_request_ids"]) == (5, ["a", "b"])


def test_a_new_cursor_alone_is_acknowledged_with_the_payloads_of_its_completions() -> None:
    harness = Harness(
        finished(1, "a"),
        finished(1),
    )
    a = job("a")
    harness.watcher.wait(a)
    assert harness.step() is None  # no ack-only poll while a's payload is fetched
    assert len(harness.sent) == 1
    a.future.set_result({})
    assert harness.step() is None
    assert [(body["prev_cursor"], body["retrieved_request_ids"]) for body, _ in harness.sent] == [
        (0, []),
        (1, ["a"]),
    ]
    assert harness.runs == 2  # woken by the wait and by the acknowledgement, then idle


def test_a_completion_before_its_waiter_is_kept_for_it() -> None:
    harness = Harness(
        finished(1, "x"),
    )
    waiting = job("w")
    harness.watcher.wait(waiting)
    harness.step()
    early = job("x")
    harness.watcher.wait(early)
    assert harness.started == [early]


@pytest.mark.parametrize(
    ("answer", "pause"),
    [
        (reply(402, {}), 5.0),
        (reply(429, {}), 1.0),
        (reply(503, {}), 1.0),
        (APIConnectionError("down"), 1.0),
    ],
)
def test_busy_answers_pause_and_poll_again(answer: Reply | Exception, pause: float) -> None:
    harness = Harness(answer)
    harness.watcher.wait(job("a"))
    assert harness.step() == pause
    assert harness.watcher.waiting == 1


def test_a_terminal_answer_fails_every_waiting_future_and_later_ones() -> None:
    harness = Harness(reply(400, {}), reply(400, {}), reply(400, {}), reply(400, {"detail": "x"}))
    waiting = job("a")
    harness.watcher.wait(waiting)
    assert [harness.step() for _ in range(3)] == [1.0, 1.0, 1.0]
    assert harness.step() is None
    with pytest.raises(TinkerError, match="retrieve_futures polling failed for sampling session"):
        waiting.future.result(timeout=1)
    later = job("b")
    harness.watcher.wait(later)
    with pytest.raises(TinkerError, match="HTTP 400"):
        later.future.result(timeout=1)


def test_an_early_completion_is_acknowledged_once_its_payload_is_fetched() -> None:
    harness = Harness(
        finished(1, "x"),
        finished(1),
    )
    harness.watcher.wait(job("w"))
    harness.step()  # x completes before anybody waits for it
    early = job("x")
    harness.watcher.wait(early)
    assert harness.started == [early]
    early.future.set_result({})
    harness.step()  # w still waits: a long poll that carries x's acknowledgement
    assert [(body["prev_cursor"], body["retrieved_request_ids"]) for body, _ in harness.sent] == [
        (0, []),
        (1, ["x"]),
    ]


def test_a_future_cancelled_while_its_payload_is_fetched_releases_the_cursor() -> None:
    harness = Harness(
        finished(3, "a"),
        finished(3),
    )
    a = job("a")
    harness.watcher.wait(a)
    assert harness.step() is None and harness.runs == 1  # the cursor waits for a's payload
    assert a.future.cancel()
    assert harness.runs == 2
    harness.step()
    body, _ = harness.sent[1]
    assert (body["prev_cursor"], body["retrieved_request_ids"]) == (3, ["a"])


def test_a_future_abandoned_before_its_completion_is_acknowledged_when_it_completes() -> None:
    harness = Harness(
        finished(0),
        finished(1, "a"),
        finished(1),
    )
    a, b = job("a"), job("b")
    harness.watcher.wait(a)
    harness.watcher.wait(b)
    harness.step()
    assert a.future.cancel()  # the server has no outcome of a yet: nothing to acknowledge
    harness.step()  # b still waits: a long poll, which reports a's completion
    assert harness.started == []  # nobody fetches a's payload ...
    harness.step()  # b still waits
    acks = [body["retrieved_request_ids"] for body, _ in harness.sent]
    assert acks == [[], [], ["a"]]  # ... and the server is told it may drop it


def test_closing_sends_one_last_ack_only_poll_when_anything_is_unacknowledged() -> None:
    harness = Harness(
        finished(4, "a"),
        finished(4),
    )
    a = job("a")
    harness.watcher.wait(a)
    harness.step()
    a.future.set_result({})  # its acknowledgement would go in the next poll, which never runs
    harness.watcher.final_ack(1.0)
    body, timeout = harness.sent[-1]
    assert (body["prev_cursor"], body["retrieved_request_ids"], body["timeout"]) == (4, ["a"], 0.0)
    assert timeout == 1.0
    harness.watcher.final_ack(1.0)
    assert len(harness.sent) == 2  # acknowledged: a second call sends nothing


def test_a_failed_last_poll_is_not_an_error() -> None:
    harness = Harness(
        finished(4, "a"),
        APIConnectionError("down"),
    )
    a = job("a")
    harness.watcher.wait(a)
    harness.step()
    a.future.set_result({})
    harness.watcher.final_ack(1.0)  # best effort: the failure ends it quietly
    assert len(harness.sent) == 2
