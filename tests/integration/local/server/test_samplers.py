"""Sampling over real HTTP: sampling sessions, asample futures, result shape, 429 back-pressure."""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np

from tinker import _wire, types
from tinker.local import EngineConfig, serve

from .fake_backend import FakeBackend
from .wire_client import WireClient, fwdbwd


def _sample_body(sampler_id: str, seq_id: int, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "num_samples": 2,
        "prompt": {"chunks": [{"tokens": [10, 11, 12]}]},
        "sampling_params": {"max_tokens": 3},
        "sampling_session_id": sampler_id,
        "seq_id": seq_id,
        "prompt_logprobs": False,
        "topk_prompt_logprobs": 0,
    }
    body.update(extra)
    return body


def test_base_model_sampling_session_and_sample(client: WireClient) -> None:
    session_id = client.session()
    body = {
        "session_id": session_id,
        "sampling_session_seq_id": 0,
        "base_model": "fake/tiny",
        "model_path": None,
    }
    answer = client.ok("create_sampling_session", body)
    sampler_id = f"{session_id}:sample:0"
    assert answer == {"type": "create_sampling_session", "sampling_session_id": sampler_id}
    assert client.ok("create_sampling_session", body) == answer  # retried: same sampler
    submitted = client.ok("asample", _sample_body(sampler_id, 0))
    request_id = f"{sampler_id}:0"
    assert submitted == {
        "request_id": request_id,
        "model_id": None,
        "sample_sequence_ids": [f"{request_id}/0", f"{request_id}/1"],
    }
    result = client.result(submitted["request_id"])
    assert result == {
        "type": "sample",
        "sequences": [
            {"tokens": [13, 14, 15], "logprobs": [-0.5, -0.5, -0.5], "stop_reason": "length"},
            {"tokens": [14, 15, 16], "logprobs": [-0.5, -0.5, -0.5], "stop_reason": "length"},
        ],
        "prompt_logprobs": None,
        "topk_prompt_logprobs": None,
    }
    _wire.structure(result, types.SampleResponse)
    assert client.get(f"samplers/{sampler_id}").json() == {
        "sampler_id": sampler_id,
        "base_model": "fake/tiny",
        "model_path": None,
    }
    assert client.get(f"sessions/{session_id}").json()["sampler_ids"] == [sampler_id]


def test_stop_tokens_prompt_logprobs_and_topk(client: WireClient) -> None:
    session_id = client.session()
    sampler_id = client.ok(
        "create_sampling_session",
        {"session_id": session_id, "sampling_session_seq_id": 0, "base_model": "fake/tiny"},
    )["sampling_session_id"]
    body = _sample_body(
        sampler_id,
        0,
        num_samples=1,
        sampling_params={"max_tokens": 5, "stop": [14]},
        prompt_logprobs=True,
        topk_prompt_logprobs=2,
    )
    result = client.run("asample", body)
    assert result["sequences"][0]["tokens"] == [13, 14]
    assert result["sequences"][0]["stop_reason"] == "stop"
    assert result["prompt_logprobs"] == [None, -1.0, -1.0]
    tenth = float(np.float32(-0.1))  # results are float32, as in 0.38
    assert result["topk_prompt_logprobs"] == [
        None,
        [[1, tenth], [2, -2.0]],
        [[1, tenth], [2, -2.0]],
    ]
    parsed = _wire.structure(result, types.SampleResponse)
    assert parsed.topk_prompt_logprobs is not None
    assert parsed.topk_prompt_logprobs[1] == [(1, tenth), (2, -2.0)]


def test_sampling_from_saved_sampler_weights(client: WireClient, backend: FakeBackend) -> None:
    session_id = client.session()
    model_id = client.model(session_id)
    client.run("forward_backward", fwdbwd(model_id, 1))
    client.run("optim_step", {"model_id": model_id, "seq_id": 2, "adam_params": {}})
    path = client.run("save_weights_for_sampler", {"model_id": model_id, "path": "s", "seq_id": 3})[
        "path"
    ]
    answer = client.ok(
        "create_sampling_session",
        {"session_id": session_id, "sampling_session_seq_id": 0, "model_path": path},
    )
    sampler_id = answer["sampling_session_id"]
    assert client.get(f"samplers/{sampler_id}").json()["model_path"] == path
    result = client.run("asample", _sample_body(sampler_id, 0, num_samples=1))
    assert len(result["sequences"][0]["tokens"]) == 3


def test_ephemeral_sampler_from_save_weights_for_sampler(client: WireClient) -> None:
    session_id = client.session()
    model_id = client.model(session_id)
    answer = client.run(
        "save_weights_for_sampler",
        {"model_id": model_id, "sampling_session_seq_id": 3, "seq_id": 1},
    )
    sampler_id = answer["sampling_session_id"]
    assert sampler_id == f"{session_id}:sample:3"
    result = client.run("asample", _sample_body(sampler_id, 0))
    assert len(result["sequences"]) == 2
    assert client.get(f"samplers/{sampler_id}").json()["model_path"] is None


def test_duplicate_sample_seq_id_runs_once(client: WireClient, backend: FakeBackend) -> None:
    session_id = client.session()
    sampler_id = client.ok(
        "create_sampling_session",
        {"session_id": session_id, "sampling_session_seq_id": 0, "base_model": "fake/tiny"},
    )["sampling_session_id"]
    first = client.submit("asample", _sample_body(sampler_id, 7))
    second = client.submit("asample", _sample_body(sampler_id, 7))
    assert first == second
    client.result(first)
    assert backend.calls.count("sample") == 1


def test_idempotency_key_separates_samplers_copied_into_other_processes(
    client: WireClient, backend: FakeBackend
) -> None:
    session_id = client.session()
    sampler_id = client.ok(
        "create_sampling_session",
        {"session_id": session_id, "sampling_session_seq_id": 0, "base_model": "fake/tiny"},
    )["sampling_session_id"]

    def submit(key: str, prompt: list[int]) -> str:
        body = _sample_body(sampler_id, 0, prompt={"chunks": [{"tokens": prompt}]})
        response = client.post("asample", body, headers={"X-Idempotency-Key": key})
        assert response.status_code == 200
        return str(response.json()["request_id"])

    parent = submit("key-parent", [10])
    retried = submit("key-parent", [10])  # a transport retry reuses its key
    worker = submit("key-worker", [20])  # another process's copy, also at seq_id 0
    assert parent == retried != worker
    assert client.result(parent)["sequences"][0]["tokens"][0] == 11
    assert client.result(worker)["sequences"][0]["tokens"][0] == 21
    assert backend.calls.count("sample") == 2


def test_sampling_errors(client: WireClient) -> None:
    session_id = client.session()
    unknown = client.post("asample", _sample_body("nope:sample:0", 0))
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": "Sampler 'nope:sample:0' not found."}
    missing_ckpt = client.post(
        "create_sampling_session",
        {
            "session_id": session_id,
            "sampling_session_seq_id": 0,
            "model_path": f"tinker://{session_id}:train:0/sampler_weights/none",
        },
    )
    assert missing_ckpt.status_code == 404
    neither = client.post(
        "create_sampling_session", {"session_id": session_id, "sampling_session_seq_id": 1}
    )
    assert neither.status_code == 400
    image = _sample_body("x", 0)
    image["prompt"] = {
        "chunks": [{"data": "YWJj", "format": "png", "height": 2, "width": 2, "tokens": 4}]
    }
    sampler_id = client.ok(
        "create_sampling_session",
        {"session_id": session_id, "sampling_session_seq_id": 2, "base_model": "fake/tiny"},
    )["sampling_session_id"]
    image["sampling_session_id"] = sampler_id
    rejected = client.post("asample", image)
    assert rejected.status_code == 400 and "ImageChunk" in rejected.json()["detail"]


def test_full_sample_queue_answers_429(tmp_path: pathlib.Path) -> None:
    backend = FakeBackend()
    config = EngineConfig(long_poll_seconds=0.2, max_pending_samples=1, sample_workers=1)
    with serve(data_dir=tmp_path, backend=backend, config=config) as server:
        client = WireClient(server.url)
        session_id = client.session()
        sampler_id = client.ok(
            "create_sampling_session",
            {"session_id": session_id, "sampling_session_seq_id": 0, "base_model": "fake/tiny"},
        )["sampling_session_id"]
        backend.gate.clear()
        try:
            held = client.submit("asample", _sample_body(sampler_id, 0))
            refused = client.post("asample", _sample_body(sampler_id, 1))
            assert refused.status_code == 429
            assert "back off" in refused.json()["detail"]
        finally:
            backend.gate.set()
        client.result(held)
        # A 0.38 client resubmits with the seq_id of the refused attempt: a new request.
        again = client.ok("asample", _sample_body(sampler_id, 1))
        assert again["request_id"] == f"{sampler_id}:1"
        assert "sequences" in client.result(again["request_id"])
        assert client.post("asample", _sample_body(sampler_id, 2)).status_code == 200


def test_sampler_caches_are_bounded_and_rebuild_or_explain(tmp_path: pathlib.Path) -> None:
    config = EngineConfig(long_poll_seconds=0.2, max_cached_samplers=1, max_ephemeral_samplers=1)
    with serve(data_dir=tmp_path, backend=FakeBackend(), config=config) as server:
        client = WireClient(server.url)
        session_id = client.session()
        model_id = client.model(session_id)
        base = client.ok(
            "create_sampling_session",
            {"session_id": session_id, "sampling_session_seq_id": 0, "base_model": "fake/tiny"},
        )["sampling_session_id"]
        first, second = (
            client.run(
                "save_weights_for_sampler",
                {"model_id": model_id, "sampling_session_seq_id": n, "seq_id": n},
            )["sampling_session_id"]
            for n in (1, 2)
        )
        # only one built sampler is cached: alternating samplers are rebuilt, not lost
        for seq, sampler_id in enumerate([base, second, base, second]):
            assert "sequences" in client.run("asample", _sample_body(sampler_id, seq))
        # only one ephemeral snapshot is kept: the older one explains itself
        failed = client.run("asample", _sample_body(first, 0))
        assert failed["category"] == "user" and "no longer kept" in failed["error"]
