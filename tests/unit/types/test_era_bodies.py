"""Request bodies of both protocol eras, against the bodies the official SDKs send.

0.5.1 sends the fields its caller set (an explicit None included); 0.38 sends every field with
its default and leaves out None values. Key order is compared too (the expected bodies are the
documented wire examples of the 0.38 protocol, in their order).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tinker import _wire
from tinker import types as T


def body(obj: Any, era: _wire.json_codec.Era) -> list[tuple[str, Any]]:
    """The JSON object `obj` is sent as, with its keys in wire order."""
    return list(json.loads(_wire.dumps(obj, era=era)).items())


MODERN = [
    (
        T.CreateSessionRequest(
            tags=[], user_metadata={"who": "me"}, sdk_version="0.38.0", display_name="disp"
        ),
        {
            "tags": [],
            "user_metadata": {"who": "me"},
            "sdk_version": "0.38.0",
            "display_name": "disp",
            "type": "create_session",
        },
    ),
    (
        T.CreateModelRequest(
            session_id="sess1",
            model_seq_id=0,
            base_model="Qwen/Qwen3-8B",
            lora_config=T.LoraConfig(rank=8),
        ),
        {
            "session_id": "sess1",
            "model_seq_id": 0,
            "base_model": "Qwen/Qwen3-8B",
            "lora_config": {
                "rank": 8,
                "train_unembed": True,
                "train_mlp": True,
                "train_attn": True,
            },
            "optimizer_config": {"type": "adamw"},
            "type": "create_model",
        },
    ),
    (
        T.OptimStepRequest(
            model_id="sess1:train:0",
            seq_id=4,
            optim_params=T.DimuonParams(learning_rate=0.01),
        ),
        {
            "model_id": "sess1:train:0",
            "seq_id": 4,
            "type": "optim_step",
            "optimizer_params": {
                "type": "dimuon",
                "learning_rate": 0.01,
                "grad_clip_norm": 0.0,
                "beta1": 0.9,
            },
        },
    ),
    (
        T.LoadWeightsRequest(
            session_id="sess1", model_seq_id=1, path="tinker://r/weights/a", optimizer=False
        ),
        {
            "session_id": "sess1",
            "model_seq_id": 1,
            "path": "tinker://r/weights/a",
            "optimizer": False,
            "type": "load_weights",
        },
    ),
    (
        T.SaveWeightsRequest(model_id="sess1:train:0", path="ck1", seq_id=4, ttl_seconds=7200),
        {
            "model_id": "sess1:train:0",
            "path": "ck1",
            "seq_id": 4,
            "ttl_seconds": 7200,
            "overwrite": False,
            "type": "save_weights",
        },
    ),
    (
        T.SampleRequest(
            num_samples=2,
            prompt=T.ModelInput.from_ints([1, 2, 3]),
            sampling_params=T.SamplingParams(max_tokens=3, stop=["\n"]),
            sampling_session_id="sess1:sample:0",
            seq_id=0,
            prompt_logprobs=False,
            record_stability_info=False,
        ),
        {
            "num_samples": 2,
            "prompt": {"chunks": [{"tokens": [1, 2, 3], "type": "encoded_text"}]},
            "sampling_params": {
                "max_tokens": 3,
                "stop": ["\n"],
                "temperature": 1.0,
                "top_k": -1,
                "top_p": 1.0,
            },
            "sampling_session_id": "sess1:sample:0",
            "seq_id": 0,
            "prompt_logprobs": False,
            "topk_prompt_logprobs": 0,
            "topk_sample_logprobs": 0,
            "prompt_alt_tokens_k": 0,
            "record_stability_info": False,
            "type": "sample",
        },
    ),
]


@pytest.mark.parametrize(("request_model", "expected"), MODERN, ids=lambda v: type(v).__name__)
def test_0_38_bodies_are_the_official_ones(request_model: Any, expected: dict[str, Any]) -> None:
    assert body(request_model, "0.38") == list(expected.items())


def test_0_5_1_bodies_carry_only_the_fields_set() -> None:
    request = T.SampleRequest(
        prompt=T.ModelInput.from_ints([1, 2]),
        sampling_params=T.SamplingParams(max_tokens=3, seed=None),
        sampling_session_id="s:sample:0",
        seq_id=1,
    )
    assert dict(body(request, "0.5.1")) == {  # no `type` literals, chunks' neither
        "prompt": {"chunks": [{"tokens": [1, 2]}]},
        "sampling_params": {"max_tokens": 3, "seed": None},
        "sampling_session_id": "s:sample:0",
        "seq_id": 1,
    }
    step = T.OptimStepRequest(model_id="m", seq_id=2, adam_params=T.AdamParams(learning_rate=0.001))
    assert dict(body(step, "0.5.1")) == {
        "adam_params": {"learning_rate": 0.001},
        "model_id": "m",
        "seq_id": 2,
    }
    modern = dict(body(step, "0.38"))
    assert modern["adam_params"] == {
        "learning_rate": 0.001,
        "beta1": 0.9,
        "beta2": 0.95,
        "eps": 1e-12,
        "weight_decay": 0.0,
        "grad_clip_norm": 0.0,
    }


def test_a_datum_in_both_eras_and_its_spans() -> None:
    datum = T.Datum(
        model_input=T.ModelInput.from_ints([1, 2]),
        loss_fn_inputs={"target_tokens": [2, 3], "weights": [1.0, 0.5]},
    )
    inputs = {
        "target_tokens": {"data": [2, 3], "dtype": "int64", "shape": [2]},
        "weights": {"data": [1.0, 0.5], "dtype": "float32", "shape": [2]},
    }
    assert dict(body(datum, "0.5.1")) == {
        "loss_fn_inputs": inputs,
        "model_input": {"chunks": [{"tokens": [1, 2]}]},
    }
    assert dict(body(datum, "0.38")) == {
        "loss_fn_inputs": inputs,
        "model_input": {"chunks": [{"tokens": [1, 2], "type": "encoded_text"}]},
    }
    spans = [T.PromptProvenanceSpan(sequence_id="q", length=2)]
    traced = datum.with_provenance(spans, [T.SampledProvenanceSpan(sequence_id="s", length=2)])
    sent = dict(body(traced, "0.38"))
    assert sent["model_input_spans"] == [
        {"prompt_tokens": {"sequence_id": "q", "offset": 0, "length": 2}}
    ]
    assert sent["loss_fn_input_spans"] == [
        {"sampled_tokens": {"sequence_id": "s", "offset": 0, "length": 2}}
    ]
