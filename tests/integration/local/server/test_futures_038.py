"""Futures of the 0.38 protocol: metadata-only answers, the retrieve_futures batch poller
(cursor, acknowledgements, long poll, failed completions, clones) and cancel_future."""

from __future__ import annotations

import pathlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from tinker._wire import proto
from tinker.local import LocalServer, serve

from .conftest import FAST
from .fake_backend import FAILING_MAX_TOKENS, FakeBackend
from .wire_client import WireClient, sample_body

CLONE = 1_000_000_000


def _sample(sampler_id: str, seq_id: int, max_tokens: int = 3) -> dict[str, Any]:
    return sample_body(sampler_id, seq_id, [1, 2, 3], max_tokens=max_tokens)


def _sampler(client: WireClient) -> str:
    body = {"session_id": client.session(), "sampling_session_seq_id": 0, "base_model": "fake/tiny"}
    return str(client.ok("create_sampling_session", body)["sampling_session_id"])


def _poll(
    sampler_id: str,
    cursor: int,
    *,
    clone: int = 0,
    timeout: float | None = None,
    acks: list[str] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "target": {
            "type": "sampling_session",
            "sampling_session_id": sampler_id,
            "cloned_sampler_id": clone,
        },
        "prev_cursor": cursor,
        "retrieved_request_ids": sorted(acks or []),
    }
    if timeout is not None:
        body["timeout"] = timeout
    return body


@pytest.fixture
def small_inline(tmp_path: pathlib.Path, backend: FakeBackend) -> Iterator[LocalServer]:
    config = attrs.evolve(FAST, inline_result_bytes=10, batch_poll_seconds=2.0, sample_workers=1)
    with serve(data_dir=tmp_path / "data", backend=backend, config=config) as server:
        yield server


def test_a_large_result_is_announced_once_by_its_size(small_inline: LocalServer) -> None:
    with WireClient(small_inline.url) as client:
        sampler_id = _sampler(client)
        request_id = client.submit("asample", _sample(sampler_id, 0))
        assert "sequences" in client.result(request_id)  # finished (a JSON poll: no metadata)
        protobuf = {"Accept": proto.CONTENT_TYPE}
        poll = {"request_id": request_id, "allow_metadata_only": True}
        first = client.post("retrieve_future", poll, headers=protobuf)
        assert first.headers["Content-Type"] == "application/json"
        announced = first.json()
        size = announced["response_payload_size"]
        assert announced == {"status": "complete_metadata", "response_payload_size": size}
        again = client.post("retrieve_future", poll, headers=protobuf)
        assert again.headers["Content-Type"] == proto.CONTENT_TYPE  # announced only once
        assert len(again.content) == size > 10
        assert len(proto.decode_sample_response(again.content).sequences) == 1


def test_the_batch_poller_reports_completions_after_the_cursor(small_inline: LocalServer) -> None:
    with WireClient(small_inline.url) as client:
        sampler_id = _sampler(client)
        first = client.submit("asample", _sample(sampler_id, 0))
        second = client.submit("asample", _sample(sampler_id, 1))
        cursor = 0
        seen: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + 10
        while len(seen) < 2 and time.monotonic() < deadline:
            answer = client.ok("retrieve_futures", _poll(sampler_id, cursor))
            assert answer["cursor"] >= cursor
            cursor = answer["cursor"]
            seen.update((c["request_id"], c) for c in answer["completions"])
        assert set(seen) == {first, second}
        for request_id, completion in seen.items():
            payload = client.poll_proto(request_id).content
            assert completion == {
                "state": "finished",
                "request_id": request_id,
                "response_payload_uncompressed_size": len(payload),
            }
        started = time.monotonic()
        ack_only = client.ok(
            "retrieve_futures", _poll(sampler_id, cursor, timeout=0.0, acks=[first, second])
        )
        assert ack_only == {"completions": [], "cursor": cursor}
        assert time.monotonic() - started < 1.0  # timeout 0: answered at once


def test_a_long_batch_poll_wakes_when_a_sample_finishes(
    small_inline: LocalServer, backend: FakeBackend
) -> None:
    with WireClient(small_inline.url) as client:
        sampler_id = _sampler(client)
        backend.gate.clear()
        request_id = client.submit("asample", _sample(sampler_id, 0))
        answers: list[dict[str, Any]] = []

        def poll() -> None:
            with WireClient(client.url) as own:
                answers.append(own.ok("retrieve_futures", _poll(sampler_id, 0)))

        poller = threading.Thread(target=poll)
        poller.start()
        time.sleep(0.3)
        assert not answers  # still waiting
        backend.gate.set()
        poller.join(timeout=10)
        assert [c["request_id"] for c in answers[0]["completions"]] == [request_id]
        empty = client.ok("retrieve_futures", _poll(sampler_id, answers[0]["cursor"], timeout=0.2))
        assert empty["completions"] == []


def test_failed_samples_and_clones_have_their_own_completions(small_inline: LocalServer) -> None:
    with WireClient(small_inline.url) as client:
        sampler_id = _sampler(client)
        clone_id = client.ok(
            "join_sampling_session",
            {"sampling_session_id": sampler_id, "type": "join_sampling_session"},
        )
        assert clone_id == {"client_counter": 1, "type": "join_sampling_session"}
        assert (
            client.ok("join_sampling_session", {"sampling_session_id": sampler_id})[
                "client_counter"
            ]
            == 2
        )
        cloned = client.submit("asample", _sample(sampler_id, CLONE * 1))
        failing = client.submit("asample", _sample(sampler_id, 0, FAILING_MAX_TOKENS))
        client.poll_proto(cloned)
        client.result(failing)
        own = client.ok("retrieve_futures", _poll(sampler_id, 0, timeout=5.0))
        assert own["completions"] == [{"state": "failed", "request_id": failing}]
        clone = client.ok("retrieve_futures", _poll(sampler_id, 0, clone=1, timeout=5.0))
        assert [c["request_id"] for c in clone["completions"]] == [cloned]
        unknown = client.post("join_sampling_session", {"sampling_session_id": "nope:sample:0"})
        assert unknown.status_code == 404


def test_cancel_future_stops_a_queued_sample(
    small_inline: LocalServer, backend: FakeBackend
) -> None:
    with WireClient(small_inline.url) as client:
        sampler_id = _sampler(client)
        backend.gate.clear()
        running = client.submit("asample", _sample(sampler_id, 0))
        assert backend.entered.wait(5)  # the one worker is busy with it
        queued = client.submit("asample", _sample(sampler_id, 1))
        assert client.ok("cancel_future", {"request_id": queued}) == {}
        assert client.result(queued) == {
            "error": "The sample was cancelled by the client.",
            "category": "user",
        }
        assert client.ok("cancel_future", {"request_id": running}) == {}  # running: it finishes
        backend.gate.set()
        assert "sequences" in client.result(running)
        assert backend.calls.count("sample") == 1
        assert client.post("cancel_future", {"request_id": "never-submitted"}).status_code == 404
