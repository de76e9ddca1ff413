"""Every public client name of the official SDK 0.38.0 has its parameters and defaults.

The table is written from the 0.38 API reference (ServiceClient, TrainingClient,
SamplingClient, RestClient, AdminClient, APIFuture): the official parameters come first, in
order, with their defaults and kinds; extra parameters with defaults may follow. `LENIENT`
lists the parameters that have a default here although 0.38 requires them (so that 0.5.1 code
keeps working).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pytest

REQUIRED = inspect.Parameter.empty
KW = "keyword-only"  # marks the first keyword-only parameter of a row

SERVICE = "tinker.service_client.ServiceClient"
TRAINING = "tinker.training_client.TrainingClient"
SAMPLING = "tinker.sampling_client.SamplingClient"
REST = "tinker.rest_client.RestClient"
ADMIN = "tinker.rest_client.AdminClient"
FUTURE = "tinker._futures.APIFuture"

PAGE = [("limit", 20), ("offset", 0)]
SCOPE = ("access_scope", "owned")

# class -> method -> [(parameter, default)] in order, without self; KW before keyword-only ones.
SIGNATURES_038: dict[str, dict[str, list[Any]]] = {
    SERVICE: {
        "__init__": [
            ("user_metadata", None),
            ("project_id", None),
            KW,
            ("display_name", None),
            ("base_url", None),
            ("api_key", None),
            ("default_headers_overrides", None),
        ],
        "create_lora_training_client": [
            ("base_model", REQUIRED),
            ("rank", 32),
            ("seed", None),
            ("train_mlp", True),
            ("train_attn", True),
            ("train_unembed", True),
            ("user_metadata", None),
            ("optimizer", None),
        ],
        "create_training_client_from_state": [
            ("path", REQUIRED),
            ("base_model", None),
            ("user_metadata", None),
            ("weights_access_token", None),
            ("optimizer", None),
        ],
        "create_training_client_from_state_with_optimizer": [
            ("path", REQUIRED),
            ("base_model", None),
            ("user_metadata", None),
            ("weights_access_token", None),
        ],
        "create_sampling_client": [
            ("model_path", None),
            ("base_model", None),
            ("retry_config", None),
            ("record_stability_info", False),
        ],
        "create_custom_loss": [("fn", REQUIRED), ("input_ranks", REQUIRED)],
        "copy_weights": [
            ("path", REQUIRED),
            KW,
            ("ttl_seconds", None),
            ("weights_access_token", None),
        ],
        "close": [("status", REQUIRED), ("detail", None)],
        "get_console_url": [],
        "get_telemetry": [],
        "create_rest_client": [],
        "get_server_capabilities": [],
    },
    TRAINING: {
        "forward": [("data", REQUIRED), ("loss_fn", REQUIRED), ("loss_fn_config", None)],
        "forward_backward": [("data", REQUIRED), ("loss_fn", REQUIRED), ("loss_fn_config", None)],
        "forward_backward_custom": [
            ("data", REQUIRED),
            ("loss_fn", REQUIRED),
            KW,
            ("loss_type_input", None),
        ],
        "optim_step": [("optim_params", None), KW, ("adam_params", None)],
        "save_state": [
            ("name", REQUIRED),
            ("ttl_seconds", None),
            ("overwrite", False),
            ("user_metadata", None),
        ],
        "save_weights_for_sampler": [
            ("name", REQUIRED),
            ("ttl_seconds", None),
            ("user_metadata", None),
        ],
        "save_weights_external": [
            ("name", REQUIRED),
            ("ttl_seconds", None),
            ("age_encryption_recipients", None),
        ],
        "load_state": [("path", REQUIRED), ("weights_access_token", None)],
        "load_state_with_optimizer": [("path", REQUIRED), ("weights_access_token", None)],
        "get_info": [],
        "get_tokenizer": [],
        "get_console_url": [],
        "get_telemetry": [],
        "create_sampling_client": [
            ("model_path", REQUIRED),
            ("retry_config", None),
            ("record_stability_info", False),
        ],
        "save_weights_and_get_sampling_client": [
            ("name", None),
            ("retry_config", None),
            ("record_stability_info", False),
            ("kind", "snapshot"),
        ],
    },
    SAMPLING: {
        "create": [
            ("holder", REQUIRED),
            KW,
            ("model_path", None),
            ("base_model", None),
            ("sampling_session_id", None),
            ("retry_config", None),
            ("record_stability_info", False),
        ],
        "sample": [
            ("prompt", REQUIRED),
            ("num_samples", REQUIRED),
            ("sampling_params", REQUIRED),
            ("include_prompt_logprobs", False),
            ("topk_prompt_logprobs", 0),
            ("topk_sample_logprobs", 0),
            ("target_prompt_logprobs", None),
            ("prompt_alt_tokens_k", 0),
            ("prompt_logprobs_last_n", None),
        ],
        "compute_logprobs": [("prompt", REQUIRED), ("prompt_logprobs_last_n", None)],
        "get_tokenizer": [],
        "get_base_model": [],
        "get_sampler_handle": [],
        "from_sampler_handle": [("handle", REQUIRED), KW, ("api_key", None)],
        "on_queue_state_change": [("queue_state", REQUIRED), ("queue_state_reason", REQUIRED)],
        "get_telemetry": [],
    },
    REST: {
        "__init__": [("_holder", None), KW, ("base_url", None), ("api_key", None)],
        "get_server_capabilities": [],
        "get_training_run": [("training_run_id", REQUIRED), SCOPE],
        "get_training_run_by_tinker_path": [("tinker_path", REQUIRED), SCOPE],
        "get_weights_info_by_tinker_path": [("tinker_path", REQUIRED)],
        "list_training_runs": [*PAGE, SCOPE, ("project_id", None)],
        "list_checkpoints": [("training_run_id", REQUIRED)],
        "list_user_checkpoints": [("limit", 100), ("offset", 0)],
        "delete_checkpoint": [("training_run_id", REQUIRED), ("checkpoint_id", REQUIRED)],
        "delete_checkpoint_from_tinker_path": [("tinker_path", REQUIRED)],
        "publish_checkpoint_from_tinker_path": [("tinker_path", REQUIRED)],
        "unpublish_checkpoint_from_tinker_path": [("tinker_path", REQUIRED)],
        "set_checkpoint_ttl_from_tinker_path": [
            ("tinker_path", REQUIRED),
            ("ttl_seconds", REQUIRED),
        ],
        "get_external_weights_urls": [("tinker_path", REQUIRED)],
        "copy_weights": [
            ("path", REQUIRED),
            ("destination_project_id", None),
            KW,
            ("ttl_seconds", None),
            ("weights_access_token", None),
        ],
        "get_session": [("session_id", REQUIRED), SCOPE],
        "list_sessions": [*PAGE, SCOPE],
        "assign_session_project": [("session_id", REQUIRED), ("project_id", REQUIRED)],
        "export_session_trace": [("session_id", REQUIRED)],
        "whoami": [],
        "get_sampler": [("sampler_id", REQUIRED)],
        "search_sessions": [("request", REQUIRED)],
        "get_billing_usage": [("starting_on", REQUIRED), ("ending_before", REQUIRED)],
        "get_current_checkpoint_storage_usage": [("project_id", None)],
        "get_audit_log": [("event_type", "all"), ("day", None)],
        "get_telemetry": [],
    },
    ADMIN: {
        "__init__": [("_holder", None), KW, ("base_url", None), ("api_key", None)],
        "get_billing_usage": [("starting_on", REQUIRED), ("ending_before", REQUIRED)],
        "get_current_checkpoint_storage_usage": [("project_id", None)],
        "get_audit_log": [("event_type", "all"), ("day", None)],
        "get_telemetry": [],
    },
    FUTURE: {
        "result": [("timeout", None)],
        "result_async": [("timeout", None)],
        "future": [],
        "coroutine": [],
    },
}

# 0.38 methods that still have an `*_async` twin (deprecated there, kept silently here).
ASYNC_038: dict[str, set[str]] = {
    SERVICE: {
        "get_server_capabilities",
        "create_lora_training_client",
        "create_training_client_from_state",
        "create_training_client_from_state_with_optimizer",
        "create_sampling_client",
    },
    TRAINING: {
        "forward",
        "forward_backward",
        "forward_backward_custom",
        "optim_step",
        "save_state",
        "save_weights_for_sampler",
        "save_weights_external",
        "get_info",
        "load_state",
        "load_state_with_optimizer",
        "create_sampling_client",
        "save_weights_and_get_sampling_client",
    },
    SAMPLING: {"sample", "compute_logprobs", "get_base_model"},
    REST: set(SIGNATURES_038[REST]) - {"__init__", "get_telemetry", "whoami"},
    ADMIN: {"get_billing_usage", "get_current_checkpoint_storage_usage", "get_audit_log"},
}

# Required in 0.38, defaulted here so that 0.5.1 code (`service.close()`, an observer called
# with the state only) keeps working.
LENIENT = {
    (SERVICE, "close", "status"): "success",
    (SAMPLING, "on_queue_state_change", "queue_state_reason"): None,
}


def _resolve(path: str) -> type:
    module, _, name = path.rpartition(".")
    cls: type = getattr(importlib.import_module(module), name)
    return cls


def _expected(cls_path: str, method: str) -> list[tuple[str, Any, bool]]:
    """(name, default, keyword-only) per parameter of a row, with LENIENT defaults applied."""
    rows, keyword_only = [], False
    for entry in SIGNATURES_038[cls_path][method]:
        if entry == KW:
            keyword_only = True
            continue
        name, default = entry
        rows.append((name, LENIENT.get((cls_path, method, name), default), keyword_only))
    return rows


def _check(cls_path: str, name: str, expected: list[tuple[str, Any, bool]]) -> None:
    fn = inspect.getattr_static(_resolve(cls_path), name, None)
    assert fn is not None, f"{cls_path}.{name} is missing"
    if isinstance(fn, (staticmethod, classmethod)):
        fn = fn.__func__
    params = [p for p in inspect.signature(fn).parameters.values() if p.name != "self"]
    params = [p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    actual = [(p.name, p.default, p.kind is p.KEYWORD_ONLY) for p in params[: len(expected)]]
    assert actual == expected, f"{cls_path}.{name}: {actual} != 0.38 {expected}"
    for extra in params[len(expected) :]:
        assert extra.default is not REQUIRED, f"{cls_path}.{name}: extra {extra.name} required"


def _case(cls_path: str, method: str) -> Any:
    return pytest.param(cls_path, method, id=f"{cls_path.rpartition('.')[2]}.{method}")


CASES = [_case(cls, method) for cls, methods in SIGNATURES_038.items() for method in methods]
TWIN_CASES = [_case(cls, method) for cls, methods in ASYNC_038.items() for method in methods]


@pytest.mark.parametrize(("cls_path", "method"), CASES)
def test_method_matches_the_038_signature(cls_path: str, method: str) -> None:
    _check(cls_path, method, _expected(cls_path, method))


@pytest.mark.parametrize(("cls_path", "method"), TWIN_CASES)
def test_038_async_twin_exists_with_the_same_parameters(cls_path: str, method: str) -> None:
    twin = getattr(_resolve(cls_path), f"{method}_async", None)
    assert twin is not None and inspect.iscoroutinefunction(twin), f"{method}_async"
    _check(cls_path, f"{method}_async", _expected(cls_path, method))


def test_038_top_level_names_are_exported() -> None:
    import tinker

    for name in (
        "ServiceClient",
        "TrainingClient",
        "SamplingClient",
        "APIFuture",
        "RestClient",
        "AdminClient",
        "BackcompatTrainingClientFuture",
        "BackcompatSamplingClientFuture",
        "BillingError",
        "ExperimentalWarning",
    ):
        assert getattr(tinker, name) is not None, name
    from tinker.lib.public_interfaces import AwaitableConcurrentFuture
    from tinker.lib.public_interfaces.rest_client import RestClient

    assert RestClient is tinker.RestClient
    assert issubclass(AwaitableConcurrentFuture, tinker.APIFuture)
    assert issubclass(tinker.BackcompatTrainingClientFuture, tinker.TrainingClient)
    assert issubclass(tinker.BackcompatSamplingClientFuture, tinker.SamplingClient)
