"""The public types against the official SDKs' signatures, one table per SDK version.

Each table maps a type to its fields and defaults as the official SDK has them (REQUIRED: no
default; UNSTATED: the field exists, its default is not pinned by the reference). Our types
serve both versions at once, so a type's declared fields must be exactly the union of the two
tables' fields (for the types a table lists), every 0.38 default must be ours, and every 0.5.1
field must be a constructor keyword with the 0.5.1 default. Any drift fails.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import attrs
import pytest

import tinker
from tinker import types as T

REQUIRED = object()
UNSTATED = object()

# --- SDK 0.38 -----------------------------------------------------------------------------

SDK_038: dict[str, dict[str, Any]] = {
    "TensorData": {
        "dtype": REQUIRED,
        "shape": None,
        "sparse_crow_indices": None,
        "sparse_col_indices": None,
    },
    "Datum": {
        "model_input": REQUIRED,
        "loss_fn_inputs": {},
        "model_input_spans": None,
        "loss_fn_input_spans": None,
    },
    "PromptProvenanceSpan": {"sequence_id": REQUIRED, "offset": 0, "length": REQUIRED},
    "SampledProvenanceSpan": {"sequence_id": REQUIRED, "offset": 0, "length": REQUIRED},
    "ForwardBackwardInput": {"data": REQUIRED, "loss_fn": REQUIRED, "loss_fn_config": None},
    "ForwardBackwardOutput": {
        "loss_fn_output_type": REQUIRED,
        "loss_fn_outputs": REQUIRED,
        "metrics": {},
    },
    "AdamOptimizerConfig": {"type": "adamw"},
    "DimuonOptimizerConfig": {"type": "dimuon", "version": 1},
    "AdamParams": {
        "learning_rate": 1e-4,
        "beta1": 0.9,
        "beta2": 0.95,
        "eps": 1e-12,
        "weight_decay": 0.0,
        "grad_clip_norm": 0.0,
    },
    "DimuonParams": {
        "type": "dimuon",
        "learning_rate": REQUIRED,
        "grad_clip_norm": 0.0,
        "beta1": 0.9,
    },
    "OptimStepRequest": {
        "optim_params": REQUIRED,
        "model_id": REQUIRED,
        "seq_id": UNSTATED,
        "type": "optim_step",
    },
    "ImageChunk": {
        "data": REQUIRED,
        "format": REQUIRED,
        "expected_tokens": None,
        "type": "image",
    },
    "ImageAssetPointerChunk": {
        "format": REQUIRED,
        "location": REQUIRED,
        "expected_tokens": None,
        "type": "image_asset_pointer",
    },
    "DmelChunk": {"dmel": REQUIRED, "type": "dmel"},
    "SampleResponse": {
        "sequences": REQUIRED,
        "prompt_logprobs_np": UNSTATED,
        "topk_prompt_logprobs_np": UNSTATED,
        "target_prompt_logprobs": UNSTATED,
        "prompt_cache_hit_tokens": 0,
        "prompt_alt_tokens": UNSTATED,
    },
    "SampledSequence": {
        "stop_reason": REQUIRED,
        "sequence_id": UNSTATED,
        "tokens_np": UNSTATED,
        "logprobs_np": UNSTATED,
        "topk_logprobs_np": UNSTATED,
    },
    "TopkLogprobs": {"token_ids": REQUIRED, "logprobs": REQUIRED},
    "PromptAltTokens": {"tokens": REQUIRED, "logprobs": REQUIRED},
    "SamplingParams": {
        "max_tokens": None,
        "seed": None,
        "stop": None,
        "temperature": 1,
        "top_k": -1,
        "top_p": 1,
    },
    "GetInfoResponse": {"optimizer_config": T.AdamOptimizerConfig()},
    "LoadWeightsRequest": {
        "model_id": None,
        "session_id": UNSTATED,
        "model_seq_id": UNSTATED,
        "base_model": UNSTATED,
        "user_metadata": UNSTATED,
        "optimizer_config": UNSTATED,
        "weights_access_token": UNSTATED,
    },
    "LoadWeightsResponse": {"model_id": None},
    "SaveWeightsRequest": {"ttl_seconds": UNSTATED, "overwrite": False, "user_metadata": UNSTATED},
    "SaveWeightsForSamplerRequest": {
        "kind": "snapshot",
        "ttl_seconds": UNSTATED,
        "user_metadata": UNSTATED,
    },
    "SaveWeightsExternalRequest": {
        "model_id": REQUIRED,
        "path": REQUIRED,
        "seq_id": UNSTATED,
        "ttl_seconds": UNSTATED,
        "age_encryption_recipients": UNSTATED,
        "type": "save_weights_external",
    },
    "SaveWeightsExternalResponse": {"path": REQUIRED, "type": UNSTATED},
    "CreateModelRequest": {"optimizer_config": T.AdamOptimizerConfig()},
    "CreateSessionRequest": {"project_id": UNSTATED, "display_name": UNSTATED},
    "FutureRetrieveRequest": {"allow_metadata_only": False},
    "Checkpoint": {"user_metadata": UNSTATED, "expires_at": UNSTATED},
    "SupportedModel": {
        "max_context_length": UNSTATED,
        "trainable": UNSTATED,
        "sampleable": UNSTATED,
    },
    "WeightsInfoResponse": {
        "optimizer_config": UNSTATED,
        "train_unembed": UNSTATED,
        "train_mlp": UNSTATED,
        "train_attn": UNSTATED,
    },
    "GetSessionResponse": {"user_metadata": UNSTATED, "display_name": UNSTATED},
    "ExternalWeightsUrlsResponse": {"urls": REQUIRED, "expires": REQUIRED},
    "CopyWeightsRequest": {
        "session_id": None,
        "model_seq_id": None,
        "destination_project_id": None,
        "source_path": REQUIRED,
        "ttl_seconds": None,
        "weights_access_token": None,
    },
    "CopyWeightsResponse": {"tinker_path": REQUIRED},
    "WhoamiResponse": {"user_urn": REQUIRED, "org_urn": REQUIRED, "email": UNSTATED},
    "AuthTokenResponse": {"jwt": REQUIRED},
}
# Types whose whole field list the 0.38 table gives (the others list only new fields).
COMPLETE_038 = {
    "TensorData", "Datum", "PromptProvenanceSpan", "SampledProvenanceSpan",
    "ForwardBackwardInput", "ForwardBackwardOutput", "AdamOptimizerConfig",
    "DimuonOptimizerConfig", "AdamParams", "DimuonParams", "OptimStepRequest", "ImageChunk",
    "ImageAssetPointerChunk", "DmelChunk", "SampleResponse", "SampledSequence", "TopkLogprobs",
    "PromptAltTokens", "SamplingParams", "SaveWeightsExternalRequest",
    "SaveWeightsExternalResponse", "ExternalWeightsUrlsResponse", "CopyWeightsRequest",
    "CopyWeightsResponse", "WhoamiResponse", "AuthTokenResponse",
}  # fmt: skip

# --- SDK 0.5.1 ----------------------------------------------------------------------------

SDK_051: dict[str, dict[str, Any]] = {
    "AdamParams": {"learning_rate": 1e-4, "beta1": 0.9, "beta2": 0.95, "eps": 1e-12},
    "LoraConfig": {
        "rank": REQUIRED,
        "seed": None,
        "train_unembed": True,
        "train_mlp": True,
        "train_attn": True,
    },
    "ModelInput": {"chunks": REQUIRED},
    "EncodedTextChunk": {"tokens": REQUIRED},
    "ImageChunk": {
        "data": REQUIRED,
        "format": REQUIRED,
        "height": UNSTATED,
        "width": UNSTATED,
        "tokens": UNSTATED,
        "expected_tokens": None,
    },
    "ImageAssetPointerChunk": {
        "format": REQUIRED,
        "height": UNSTATED,
        "location": REQUIRED,
        "tokens": UNSTATED,
        "width": UNSTATED,
    },
    "TensorData": {"data": REQUIRED, "dtype": REQUIRED, "shape": None},
    "Datum": {"loss_fn_inputs": REQUIRED, "model_input": REQUIRED},
    "Checkpoint": {
        "checkpoint_id": REQUIRED,
        "checkpoint_type": REQUIRED,
        "time": REQUIRED,
        "tinker_path": REQUIRED,
        "size_bytes": None,
        "public": False,
    },
    "TrainingRun": {
        "training_run_id": REQUIRED,
        "base_model": REQUIRED,
        "model_owner": REQUIRED,
        "is_lora": REQUIRED,
        "corrupted": False,
        "lora_rank": UNSTATED,
        "last_request_time": REQUIRED,
        "last_checkpoint": UNSTATED,
        "last_sampler_checkpoint": UNSTATED,
        "user_metadata": UNSTATED,
    },
    "SamplingParams": {
        "max_tokens": None,
        "seed": None,
        "stop": None,
        "temperature": 1,
        "top_k": -1,
        "top_p": 1,
    },
    "SampleResponse": {
        "sequences": REQUIRED,
        "type": "sample",
        "prompt_logprobs": None,
        "topk_prompt_logprobs": None,
    },
    "SampledSequence": {"stop_reason": REQUIRED, "tokens": UNSTATED, "logprobs": None},
    "ForwardBackwardOutput": {
        "loss_fn_output_type": REQUIRED,
        "loss_fn_outputs": REQUIRED,
        "metrics": UNSTATED,
    },
}


def declared(cls: type) -> dict[str, Any]:
    """The declared fields of a wire type with their defaults (REQUIRED when none)."""
    out: dict[str, Any] = {}
    if attrs.has(cls):
        for field in attrs.fields(cls):
            if not field.init:
                continue
            default = field.default
            if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                default = default.factory()  # type: ignore[call-arg]
            out[field.name] = REQUIRED if default is attrs.NOTHING else default
        return out
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if field.name.startswith("_"):
            continue
        if field.default is not dataclasses.MISSING:
            out[field.name] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            out[field.name] = field.default_factory()
        else:
            out[field.name] = REQUIRED
    return out


def keywords(cls: type) -> dict[str, Any]:
    """The constructor's keyword parameters with their defaults (REQUIRED when none)."""
    parameters = inspect.signature(cls).parameters.values()
    return {
        p.name: REQUIRED if p.default is p.empty else p.default
        for p in parameters
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def test_the_tables_name_public_types() -> None:
    assert {*SDK_038, *SDK_051} <= set(T.__all__)


@pytest.mark.parametrize("name", sorted(SDK_038))
def test_0_38_fields_and_defaults(name: str) -> None:
    ours = declared(getattr(T, name))
    for field, default in SDK_038[name].items():
        assert field in ours, f"{name}.{field} is missing"
        if default is not UNSTATED:
            assert ours[field] == default or ours[field] is default, f"{name}.{field}"
    if name in COMPLETE_038:
        # Exactly the 0.38 fields plus the 0.5.1 ones kept as fields (the others, e.g.
        # SampledSequence.tokens, are now list views).
        kept_051 = set(SDK_051.get(name, {})) & set(ours)
        assert set(ours) == set(SDK_038[name]) | kept_051, name


@pytest.mark.parametrize("name", sorted(SDK_051))
def test_0_5_1_keywords_and_defaults(name: str) -> None:
    accepted = keywords(getattr(T, name))
    for field, default in SDK_051[name].items():
        assert field in accepted, f"{name}({field}=...) is not accepted"
        if default not in (UNSTATED, REQUIRED):
            assert accepted[field] == default, f"{name}.{field}"


def test_the_top_level_names_of_0_38() -> None:
    top_level_038 = {
        "AdamOptimizerConfig", "DimuonOptimizerConfig", "AdamParams", "DimuonParams",
        "OptimParams", "Checkpoint", "CheckpointType", "ParsedCheckpointTinkerPath",
        "TrainingRun", "Datum", "DmelChunk", "EncodedTextChunk", "ModelInput",
        "ModelInputChunk", "ForwardBackwardOutput", "LoraConfig", "ModelID", "StopReason",
        "TensorDtype", "OptimStepRequest", "OptimStepResponse", "PromptProvenanceSpan",
        "SampledProvenanceSpan", "SampledSequence", "SampleRequest", "SampleResponse",
        "SamplingParams", "TensorData", "BillingError", "ExperimentalWarning",
    }  # fmt: skip
    assert top_level_038 <= set(tinker.__all__)
    for name in top_level_038:
        assert getattr(tinker, name) is not None
