"""Every public client method has the official name, parameters and defaults, of both eras.

Two tables: `SIGNATURES` is the public API of the official SDK 0.5.1, `SIGNATURES_038` that of
0.38.0 (ServiceClient, TrainingClient, SamplingClient, RestClient, AdminClient). The official
parameters come first, in order; extra parameters with defaults may follow them (they do not
break callers). Where 0.38 inserted a parameter before one of 0.5.1 (`REORDERED_IN_038`), the
0.5.1 parameter must keep its default and stay reachable by keyword; the client maps the 0.5.1
positional form itself (tested in the client's own tests).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pytest

REQUIRED = inspect.Parameter.empty

# class -> method -> [(parameter, default)], in order, without self.
SIGNATURES: dict[str, dict[str, list[tuple[str, Any]]]] = {
    "tinker.service_client.ServiceClient": {
        "get_server_capabilities": [],
        "create_lora_training_client": [
            ("base_model", REQUIRED),
            ("rank", 32),
            ("seed", None),
            ("train_mlp", True),
            ("train_attn", True),
            ("train_unembed", True),
            ("user_metadata", None),
        ],
        "create_training_client_from_state": [("path", REQUIRED), ("user_metadata", None)],
        "create_training_client_from_state_with_optimizer": [
            ("path", REQUIRED),
            ("user_metadata", None),
        ],
        "create_sampling_client": [
            ("model_path", None),
            ("base_model", None),
            ("retry_config", None),
        ],
        "create_rest_client": [],
        "get_telemetry": [],
    },
    "tinker.training_client.TrainingClient": {
        "forward": [("data", REQUIRED), ("loss_fn", REQUIRED), ("loss_fn_config", None)],
        "forward_backward": [
            ("data", REQUIRED),
            ("loss_fn", REQUIRED),
            ("loss_fn_config", None),
        ],
        "forward_backward_custom": [("data", REQUIRED), ("loss_fn", REQUIRED)],
        "optim_step": [("adam_params", REQUIRED)],
        "save_state": [("name", REQUIRED), ("ttl_seconds", None)],
        "load_state": [("path", REQUIRED)],
        "load_state_with_optimizer": [("path", REQUIRED)],
        "save_weights_for_sampler": [("name", REQUIRED), ("ttl_seconds", None)],
        "get_info": [],
        "get_tokenizer": [],
        "create_sampling_client": [("model_path", REQUIRED), ("retry_config", None)],
        "save_weights_and_get_sampling_client": [("name", None), ("retry_config", None)],
        "save_weights_and_get_sampling_client_submit": [("retry_config", None)],
        "unload_model": [],
        "get_telemetry": [],
        "on_queue_state_change": [("queue_state", REQUIRED)],
    },
    "tinker.sampling_client.SamplingClient": {
        "create": [
            ("holder", REQUIRED),
            ("model_path", None),
            ("base_model", None),
            ("sampling_session_id", None),
            ("retry_config", None),
        ],
        "sample": [
            ("prompt", REQUIRED),
            ("num_samples", REQUIRED),
            ("sampling_params", REQUIRED),
            ("include_prompt_logprobs", False),
            ("topk_prompt_logprobs", 0),
        ],
        "compute_logprobs": [("prompt", REQUIRED)],
        "get_tokenizer": [],
        "on_queue_state_change": [("queue_state", REQUIRED)],
    },
    "tinker.rest_client.RestClient": {
        "get_training_run": [("training_run_id", REQUIRED)],
        "get_training_run_by_tinker_path": [("tinker_path", REQUIRED)],
        "get_weights_info_by_tinker_path": [("tinker_path", REQUIRED)],
        "list_training_runs": [("limit", 20), ("offset", 0)],
        "list_checkpoints": [("training_run_id", REQUIRED)],
        "list_user_checkpoints": [("limit", 100), ("offset", 0)],
        "get_checkpoint_archive_url": [("training_run_id", REQUIRED), ("checkpoint_id", REQUIRED)],
        "get_checkpoint_archive_url_from_tinker_path": [("tinker_path", REQUIRED)],
        "delete_checkpoint": [("training_run_id", REQUIRED), ("checkpoint_id", REQUIRED)],
        "delete_checkpoint_from_tinker_path": [("tinker_path", REQUIRED)],
        "publish_checkpoint_from_tinker_path": [("tinker_path", REQUIRED)],
        "unpublish_checkpoint_from_tinker_path": [("tinker_path", REQUIRED)],
        "set_checkpoint_ttl_from_tinker_path": [
            ("tinker_path", REQUIRED),
            ("ttl_seconds", REQUIRED),
        ],
        "get_session": [("session_id", REQUIRED)],
        "list_sessions": [("limit", 20), ("offset", 0)],
        "get_sampler": [("sampler_id", REQUIRED)],
        "get_telemetry": [],
    },
}

# Methods that have an `*_async` twin taking the same parameters.
ASYNC_TWINS: dict[str, set[str]] = {
    "tinker.service_client.ServiceClient": {
        "get_server_capabilities",
        "create_lora_training_client",
        "create_training_client_from_state",
        "create_training_client_from_state_with_optimizer",
        "create_sampling_client",
    },
    "tinker.training_client.TrainingClient": {
        "forward",
        "forward_backward",
        "forward_backward_custom",
        "optim_step",
        "save_state",
        "load_state",
        "load_state_with_optimizer",
        "save_weights_for_sampler",
        "get_info",
        "create_sampling_client",
        "save_weights_and_get_sampling_client",
        "unload_model",
    },
    "tinker.sampling_client.SamplingClient": {"sample", "compute_logprobs"},
    "tinker.rest_client.RestClient": set(SIGNATURES["tinker.rest_client.RestClient"])
    - {"get_telemetry"},
}


def _resolve(path: str) -> type:
    module, _, name = path.rpartition(".")
    cls: type = getattr(importlib.import_module(module), name)
    return cls


def _parameters(fn: Any) -> list[inspect.Parameter]:
    return [p for p in inspect.signature(fn).parameters.values() if p.name != "self"]


def _assert_matches(fn: Any, expected: list[tuple[str, Any]], where: str) -> None:
    params = _parameters(fn)
    actual = [(p.name, p.default) for p in params[: len(expected)]]
    assert actual == expected, f"{where}: parameters {actual} != official {expected}"
    for p in params[: len(expected)]:
        assert p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY), f"{where}: {p.name} kind"
    for extra in params[len(expected) :]:
        assert extra.default is not REQUIRED and extra.kind is not extra.VAR_POSITIONAL, (
            f"{where}: extra parameter {extra.name} must have a default"
        )


def _assert_reachable(fn: Any, expected: list[tuple[str, Any]], where: str) -> None:
    """The 0.5.1 parameters of a method that 0.38 reordered: same names and defaults (or a
    default where 0.5.1 had none, which breaks no caller)."""
    params = {p.name: p for p in _parameters(fn)}
    for name, default in expected:
        assert name in params, f"{where}: parameter {name} is missing"
        assert default is REQUIRED or params[name].default == default, f"{where}: {name} default"
        assert params[name].kind is not params[name].POSITIONAL_ONLY, f"{where}: {name} kind"


# 0.5.1 methods whose parameters 0.38 changed: a parameter inserted before a 0.5.1 one, or
# (optim_step) the first one renamed `optim_params`, `adam_params=` kept as a keyword; 0.5.1
# positional calls keep their meaning (asserted in the clients' own tests).
REORDERED_IN_038 = {
    ("tinker.training_client.TrainingClient", "optim_step"),
    ("tinker.service_client.ServiceClient", "create_training_client_from_state"),
    ("tinker.service_client.ServiceClient", "create_training_client_from_state_with_optimizer"),
}


def _check(cls_path: str, method: str, expected: list[tuple[str, Any]], *, twin: bool) -> None:
    cls = _resolve(cls_path)
    name = f"{method}_async" if twin else method
    fn = getattr(cls, name, None)
    assert fn is not None, f"{cls_path}.{name} is missing"
    if twin:
        assert inspect.iscoroutinefunction(fn), f"{cls_path}.{name} is not async def"
    else:
        assert not inspect.iscoroutinefunction(fn), f"{cls_path}.{name} must be a sync method"
    if (cls_path, method) in REORDERED_IN_038:
        _assert_reachable(fn, expected, f"{cls_path}.{name}")
    else:
        _assert_matches(fn, expected, f"{cls_path}.{name}")


CASES = [(cls, method) for cls, methods in SIGNATURES.items() for method in methods]


@pytest.mark.parametrize(("cls_path", "method"), CASES)
def test_method_matches_official_signature(cls_path: str, method: str) -> None:
    _check(cls_path, method, SIGNATURES[cls_path][method], twin=False)


TWIN_CASES = [(cls, method) for cls, methods in ASYNC_TWINS.items() for method in methods]


@pytest.mark.parametrize(("cls_path", "method"), TWIN_CASES)
def test_async_twin_is_a_coroutine_with_the_same_parameters(cls_path: str, method: str) -> None:
    _check(cls_path, method, SIGNATURES[cls_path][method], twin=True)


def test_every_public_async_method_is_a_coroutine_function() -> None:
    for cls_path in SIGNATURES:
        cls = _resolve(cls_path)
        for name, member in inspect.getmembers(cls, inspect.isfunction):
            if name.endswith("_async") and not name.startswith("_"):
                assert inspect.iscoroutinefunction(member), f"{cls_path}.{name}"


def test_service_client_constructor_keywords() -> None:
    cls = _resolve("tinker.service_client.ServiceClient")
    params = {p.name: p for p in _parameters(cls.__init__)}
    first = _parameters(cls.__init__)[0]
    assert (first.name, first.default) == ("user_metadata", None)
    for name in ("api_key", "base_url", "timeout", "max_retries", "default_headers"):
        assert name in params, f"ServiceClient() lacks {name}="
        assert params[name].default is None


def test_module_constants() -> None:
    training = importlib.import_module("tinker.training_client")
    assert training.MAX_CHUNK_LEN == 128
    assert training.MAX_CHUNK_NUMBER_COUNT == 500000
