"""Sampling in the 0.38 protocol: sequence ids and stability records, the new request fields
(checked before anything is queued) and their protobuf answers, in-flight samplers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinker._wire import proto
from tinker._wire.proto import messages

from .fake_backend import FakeBackend, FakeStore
from .wire_client import WireClient, fwdbwd, sample_body

PROMPT = [10, 11, 12]


def _sampler(client: WireClient, session_id: str) -> str:
    body = {"session_id": session_id, "sampling_session_seq_id": 0, "base_model": "fake/tiny"}
    return str(client.ok("create_sampling_session", body)["sampling_session_id"])


def _sample(sampler_id: str, seq_id: int, **extra: Any) -> dict[str, Any]:
    return sample_body(sampler_id, seq_id, PROMPT, num_samples=2, **extra)


def _response(client: WireClient, request_id: str) -> messages.SampleResponse:
    answer = client.poll_proto(request_id)
    assert answer.headers["Content-Type"] == proto.CONTENT_TYPE, answer.text
    return proto.decode(answer.content, messages.SampleResponse)


def test_sequence_ids_name_the_recorded_stability_info(client: WireClient, server: Any) -> None:
    session_id = client.session()
    sampler_id = _sampler(client, session_id)
    submitted = client.ok("asample", _sample(sampler_id, 0, record_stability_info=True))
    ids = submitted["sample_sequence_ids"]
    assert ids == [f"{submitted['request_id']}/0", f"{submitted['request_id']}/1"]
    result = _response(client, submitted["request_id"])
    store = server.engine.samplers.stability(session_id)
    assert isinstance(store, FakeStore)
    assert store.records == {
        sequence_id: {"prompt": PROMPT, "tokens": sequence.tokens.tolist()}
        for sequence_id, sequence in zip(ids, result.sequences, strict=True)
    }
    unrecorded = client.ok("asample", _sample(sampler_id, 1))
    client.poll_proto(unrecorded["request_id"])
    assert set(store.records) == set(ids)  # only samples that asked for it


def test_every_extra_field_comes_back_in_the_protobuf_answer(client: WireClient) -> None:
    sampler_id = _sampler(client, client.session())
    targets = {"data": [1, 2, -1, 3], "dtype": "int64", "shape": [2, 2]}
    extra = {
        "prompt_logprobs": True,
        "topk_prompt_logprobs": 2,
        "topk_sample_logprobs": 2,
        "target_prompt_logprobs": targets,
        "prompt_alt_tokens_k": 3,
        "prompt_logprobs_last_n": 1,
    }
    first = _response(client, client.submit("asample", _sample(sampler_id, 0, **extra)))
    assert first.prompt_cache_hit_tokens == 0
    again = _response(client, client.submit("asample", _sample(sampler_id, 1, **extra)))
    assert again.prompt_cache_hit_tokens == len(PROMPT)  # the fake's prefix cache
    sequence = first.sequences[0]
    assert sequence.tokens.tolist() == [13, 14, 15] and sequence.logprobs is not None
    topk = sequence.topk_sampled_logprobs
    assert topk is not None and (topk.k, topk.length) == (2, 3)
    assert first.prompt_logprobs is not None
    assert [math.isnan(v) for v in first.prompt_logprobs.tolist()] == [True, True, False]
    assert first.topk_prompt_logprobs is not None and first.topk_prompt_logprobs.length == 3
    scored = first.target_prompt_logprobs
    assert scored is not None and scored.shape == (2, 2) and scored.sparse_csr is None
    assert scored.dense is not None and scored.dense.tolist() == [-1.0, -1.0, 0.0, -1.0]
    alt = first.prompt_alt_tokens
    assert alt is not None and alt.tokens is not None and alt.logprobs is not None
    assert alt.tokens.shape == alt.logprobs.shape == (2, 3)
    sparse = {
        **targets,
        "data": [1, 3],
        "sparse_crow_indices": [0, 1, 2],
        "sparse_col_indices": [0, 0],
    }
    csr = _response(
        client, client.submit("asample", _sample(sampler_id, 2, target_prompt_logprobs=sparse))
    )
    table = csr.target_prompt_logprobs
    assert table is not None and table.sparse_csr is not None and table.shape == (2, 2)
    assert table.sparse_csr.crow_indices.tolist() == [0, 1, 2]
    assert table.sparse_csr.col_indices.tolist() == [0, 0]
    assert table.sparse_csr.values.tolist() == [-1.0, -1.0]


def test_the_new_sample_fields_are_checked_before_anything_is_queued(
    client: WireClient, backend: FakeBackend
) -> None:
    sampler_id = _sampler(client, client.session())
    # (fields, status, text): the request type refuses what it can tell alone (422), the
    # server what needs the sampler (400).
    cases = [
        (
            {"target_prompt_logprobs": {"data": [1, 2], "dtype": "int64", "shape": [2]}},
            422,
            "target_prompt_logprobs: must be 2-D [len(prompt) - 1, K], got shape [2]",
        ),
        (
            {"target_prompt_logprobs": {"data": [1], "dtype": "int64", "shape": [2, 2]}},
            422,
            "shape [2, 2] needs 4 values, data has 1 @ SampleRequest.target_prompt_logprobs",
        ),
        (
            {"target_prompt_logprobs": {"data": [1, 2, 3], "dtype": "int64", "shape": [3, 1]}},
            422,
            "target_prompt_logprobs: needs len(prompt) - 1 = 2 rows, got 3",
        ),
        (
            {
                "target_prompt_logprobs": {
                    "data": [1],
                    "dtype": "int64",
                    "shape": [2, 2],
                    "sparse_crow_indices": [0, 1, 1],
                }
            },
            422,
            "needs both sparse_crow_indices and sparse_col_indices",
        ),
        (
            {"target_prompt_logprobs": {"data": [1.5], "dtype": "float32", "shape": [1, 1]}},
            422,
            "target_prompt_logprobs: dtype must be int64 (token ids), got float32",
        ),
        ({"prompt_logprobs_last_n": 1}, 422, "prompt_logprobs_last_n: needs prompt_logprobs"),
        ({"prompt_logprobs": True, "prompt_logprobs_last_n": 3}, 400, "must be in 1..2"),
        ({"prompt_alt_tokens_k": -1}, 422, "prompt_alt_tokens_k: must be >= 0, got -1"),
        ({"topk_sample_logprobs": 99}, 400, "topk_sample_logprobs must be in 0..8"),
    ]
    for extra, status, text in cases:
        answer = client.post("asample", _sample(sampler_id, 0, **extra))
        assert answer.status_code == status and text in answer.json()["detail"], (
            extra,
            answer.text,
        )
    assert "sample" not in backend.calls


def test_inflight_samplers_follow_the_runs_newest_weights(client: WireClient) -> None:
    session_id = client.session()
    model_id = client.model(session_id)
    inflight = {
        "model_id": model_id,
        "sampling_session_seq_id": 1,
        "kind": "inflight",
        "type": "save_weights_for_sampler",
    }
    sampler_id = client.run("save_weights_for_sampler", {**inflight, "seq_id": 1})[
        "sampling_session_id"
    ]
    before = client.run("asample", _sample(sampler_id, 0))["sequences"][0]["tokens"]
    for seq_id in (2, 4, 6):
        client.run("forward_backward", fwdbwd(model_id, seq_id))
        client.run(
            "optim_step",
            {"model_id": model_id, "seq_id": seq_id + 1, "adam_params": {"learning_rate": 0.5}},
        )
    second = client.run(
        "save_weights_for_sampler", {**inflight, "seq_id": 8, "sampling_session_seq_id": 2}
    )
    after = client.run("asample", _sample(sampler_id, 1))["sequences"][0]["tokens"]
    newest = client.run("asample", _sample(second["sampling_session_id"], 0))["sequences"][0][
        "tokens"
    ]
    assert after == newest != before  # the first in-flight sampler reads the newest weights
    assert np.ndim(after) == 1
