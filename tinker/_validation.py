"""Every check of the clients' arguments, run in the caller's thread before anything is sent.

A bad argument raises here, naming the argument and what is wrong with it (TypeError for a
wrong type, ValueError for a wrong value), and nothing reaches the wire. The checks of a
batch's contents (loss inputs, their dtypes, lengths and values) are the loss tables' own:
`tinker.types.validate_batch`, next to the tables they read; the field types of every wire model
are checked by the models when they are built (tinker/types/_checks.py), on the server too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

import attrs

from tinker import types
from tinker._retry import RetryConfig
from tinker.config import check_header_value

if TYPE_CHECKING:
    import requests.adapters

__all__ = [
    "FINISH_STATUSES",
    "MAX_AGE_RECIPIENTS",
    "SAMPLING_CLIENT_KINDS",
    "FinishStatus",
    "NoTrainableLayersError",
    "SamplerHandleState",
    "StateSource",
    "adapter_factory",
    "check_access_scope",
    "check_adam",
    "check_batch",
    "check_checkpoint_path",
    "check_custom_batch",
    "check_data",
    "check_finish",
    "check_flag",
    "check_header_overrides",
    "check_id",
    "check_kind",
    "check_lora_args",
    "check_metadata",
    "check_name",
    "check_optim_params",
    "check_optimizer_config",
    "check_optional_str",
    "check_page",
    "check_prompt_scoring",
    "check_recipients",
    "check_retry_config",
    "check_sample_args",
    "check_sampler_handle",
    "check_sampler_source",
    "check_session_labels",
    "check_tinker_path",
    "check_ttl",
]

TINKER_SCHEME = "tinker://"


class NoTrainableLayersError(ValueError, AssertionError):
    """All of train_mlp, train_attn and train_unembed are False.

    A ValueError like every other bad argument, and an AssertionError for code written against
    the official SDK, which asserts this.
    """


# -- shared ------------------------------------------------------------------------------------


def check_tinker_path(path: object, what: str = "path") -> str:
    """`path` itself if it is a `tinker://` string, else a ValueError/TypeError naming it."""
    if not isinstance(path, str):
        raise TypeError(f"{what} must be a str starting with 'tinker://', got {path!r}")
    if not path.startswith(TINKER_SCHEME) or len(path) == len(TINKER_SCHEME):
        raise ValueError(f"{what} must start with 'tinker://', got {path!r}")
    return path


def check_checkpoint_path(tinker_path: object) -> types.ParsedCheckpointTinkerPath:
    """A `tinker://<run>/<weights|sampler_weights>/<name>` path, parsed."""
    return types.ParsedCheckpointTinkerPath.from_tinker_path(
        check_tinker_path(tinker_path, "tinker_path")
    )


def check_retry_config(retry_config: object) -> None:
    """TypeError unless `retry_config` is None or a RetryConfig."""
    if retry_config is not None and not isinstance(retry_config, RetryConfig):
        raise TypeError(f"retry_config must be a RetryConfig, got {type(retry_config).__name__}")


def check_ttl(ttl_seconds: object) -> int | None:
    """A checkpoint lifetime: a positive int of seconds, or None (kept forever)."""
    if ttl_seconds is None:
        return None
    if not isinstance(ttl_seconds, int) or isinstance(ttl_seconds, bool) or ttl_seconds <= 0:
        raise ValueError(f"ttl_seconds must be a positive int or None, got {ttl_seconds!r}")
    return ttl_seconds


def check_metadata(user_metadata: object) -> dict[str, str] | None:
    """User metadata: None or a dict of str to str (copied)."""
    if user_metadata is None:
        return None
    if not isinstance(user_metadata, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in user_metadata.items()
    ):
        raise TypeError(f"user_metadata must be a dict[str, str], got {user_metadata!r}")
    return dict(user_metadata)


# -- ServiceClient -------------------------------------------------------------------------------


def check_optional_str(value: object, what: str) -> str | None:
    """None or a non-empty str."""
    if value is not None and (not isinstance(value, str) or not value):
        raise ValueError(f"{what} must be a non-empty str or None, got {value!r}")
    return value


def check_session_labels(project_id: object, display_name: object) -> dict[str, str]:
    """The session fields that are set, among `project_id` and `display_name`."""
    labels = {"project_id": project_id, "display_name": display_name}
    return {
        name: value
        for name, value in labels.items()
        if check_optional_str(value, name) is not None and isinstance(value, str)
    }


def check_header_overrides(default_headers: object, overrides: object) -> dict[str, str] | None:
    """`default_headers` then `default_headers_overrides` (each None or a mapping), merged;
    the header names and values are checked by the ClientConfig they go into."""
    merged: dict[str, str] = {}
    for what, headers in (
        ("default_headers", default_headers),
        ("default_headers_overrides", overrides),
    ):
        if headers is None:
            continue
        if not isinstance(headers, Mapping):
            raise TypeError(f"{what} must be a mapping of str to str, got {type(headers).__name__}")
        for name, value in headers.items():
            if not isinstance(name, str) or not name:
                raise TypeError(f"{what} has a header name that is not a non-empty str: {name!r}")
            check_header_value(f"{what}[{name!r}]", value)
        merged.update(headers)
    if default_headers is None and overrides is None:
        return None
    return merged


FinishStatus = Literal["success", "errored", "interrupted"]
FINISH_STATUSES: tuple[FinishStatus, ...] = ("success", "errored", "interrupted")


def check_finish(status: object, detail: object) -> types.SessionFinishRequest:
    """The body that finishes a session: a known status and an optional str detail."""
    if status not in FINISH_STATUSES:
        raise ValueError(f"status must be one of {', '.join(FINISH_STATUSES)}; got {status!r}")
    if detail is not None and not isinstance(detail, str):
        raise TypeError(f"detail must be a str or None, got {type(detail).__name__}")
    return types.SessionFinishRequest(
        reason=types.SessionFinishReason(type=cast("Any", status)), detail=detail
    )


@attrs.frozen
class StateSource:
    """A checked checkpoint to create a training client from."""

    path: str
    base_model: str | None
    weights_access_token: str | None
    optimizer: bool
    optimizer_config: types.OptimizerConfigBase | None = None


def adapter_factory(spec: object) -> Callable[[], requests.adapters.BaseAdapter]:
    """`http_adapter=` as a factory; anything but an adapter or a callable is a TypeError."""
    import requests.adapters

    if isinstance(spec, requests.adapters.BaseAdapter):
        return lambda: spec
    if callable(spec):
        return cast("Callable[[], requests.adapters.BaseAdapter]", spec)
    raise TypeError(
        "http_adapter must be a requests.adapters.BaseAdapter or a function returning one, "
        f"got {type(spec).__name__}"
    )


def check_lora_args(
    base_model: object, rank: object, seed: object, flags: Mapping[str, object]
) -> None:
    """The arguments of create_lora_training_client (at least one layer group trains)."""
    if not isinstance(base_model, str) or not base_model:
        raise ValueError(f"base_model must be a non-empty str, got {base_model!r}")
    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        raise ValueError(f"rank must be an int >= 1, got {rank!r}")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise TypeError(f"seed must be an int or None, got {seed!r}")
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a bool, got {value!r}")
    if not any(flags.values()):
        raise NoTrainableLayersError(
            "at least one of train_mlp, train_attn and train_unembed must be True"
        )


def check_sampler_source(
    model_path: object, base_model: object, retry_config: object
) -> tuple[str | None, str | None]:
    """What a sampling client samples from: saved sampler weights or a base model."""
    if model_path is None and base_model is None:
        raise ValueError("create_sampling_client needs model_path or base_model")
    if model_path is not None:
        check_tinker_path(model_path, "model_path")
    if base_model is not None and (not isinstance(base_model, str) or not base_model):
        raise ValueError(f"base_model must be a non-empty str, got {base_model!r}")
    check_retry_config(retry_config)
    return cast("str | None", model_path), base_model


# -- TrainingClient ------------------------------------------------------------------------------


def check_data(data: object) -> list[types.Datum]:
    """A batch: a non-empty sequence (not a string) of Datum, as a list."""
    if not isinstance(data, Sequence) or isinstance(data, (str, bytes)):
        raise TypeError(f"data must be a list of Datum, got {type(data).__name__}")
    batch = list(data)
    if not batch:
        raise ValueError("No data provided")
    for index, datum in enumerate(batch):
        if not isinstance(datum, types.Datum):
            raise TypeError(f"data[{index}] must be a Datum, got {type(datum).__name__}")
    return batch


def check_batch(
    data: object, loss_fn: object, loss_fn_config: object
) -> tuple[list[types.Datum], types.LossFnType, dict[str, float | str] | None]:
    """A forward/forward_backward batch, its loss name and its loss config: numbers (as
    floats); for "custom", also strings (its loss_id)."""
    if not isinstance(loss_fn, str) or loss_fn not in types.LOSS_FN_TYPES:
        raise ValueError(f"unknown loss_fn {loss_fn!r}; expected one of {types.LOSS_FN_TYPES}")
    if loss_fn_config is not None:
        values: tuple[type, ...] = (int, float, str) if loss_fn == "custom" else (int, float)
        if not isinstance(loss_fn_config, Mapping) or not all(
            isinstance(k, str) and isinstance(v, values) and not isinstance(v, bool)
            for k, v in loss_fn_config.items()
        ):
            expected = "dict[str, float | str]" if loss_fn == "custom" else "dict[str, float]"
            raise TypeError(f"loss_fn_config must be a {expected}, got {loss_fn_config!r}")
        loss_fn_config = {
            k: v if isinstance(v, str) else float(v) for k, v in loss_fn_config.items()
        }
    batch = check_data(data)
    types.validate_batch(batch, loss_fn)
    return batch, cast(types.LossFnType, loss_fn), loss_fn_config


def check_custom_batch(data: object, loss_fn: object) -> list[types.Datum]:
    """A forward_backward_custom batch: callable loss, every datum with target_tokens."""
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    batch = check_data(data)
    for index, datum in enumerate(batch):
        if "target_tokens" not in datum.loss_fn_inputs:
            raise ValueError(f"data[{index}].loss_fn_inputs lacks 'target_tokens'")
    return batch


def check_adam(params: object) -> types.AdamParams:
    """AdamParams with finite, non-negative settings and betas in [0, 1)."""
    if not isinstance(params, types.AdamParams):
        raise TypeError(f"adam_params must be an AdamParams, got {type(params).__name__}")
    for name in ("learning_rate", "eps", "weight_decay", "grad_clip_norm"):
        value = getattr(params, name)
        if not 0 <= value < math.inf:  # NaN fails too
            raise ValueError(f"adam_params.{name} must be finite and >= 0, got {value}")
    for name in ("beta1", "beta2"):
        value = getattr(params, name)
        if not 0 <= value < 1:
            raise ValueError(f"adam_params.{name} must be in [0, 1), got {value}")
    return params


def check_name(name: object, what: str) -> str:
    """A checkpoint name: non-empty, no '/', not '.' or '..'."""
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise ValueError(
            f"{what} must be a non-empty str without '/' (not '.' or '..'), got {name!r}"
        )
    return name


# -- SamplingClient ------------------------------------------------------------------------------


def check_sample_args(
    prompt: object,
    num_samples: object,
    sampling_params: object,
    include_prompt_logprobs: object,
    topk_prompt_logprobs: object,
) -> None:
    """The arguments of SamplingClient.sample."""
    if not isinstance(prompt, types.ModelInput):
        raise TypeError(f"prompt must be a ModelInput, got {type(prompt).__name__}")
    if not isinstance(num_samples, int) or isinstance(num_samples, bool):
        raise TypeError(f"num_samples must be an int, got {num_samples!r}")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if not isinstance(sampling_params, types.SamplingParams):
        raise TypeError(
            f"sampling_params must be a SamplingParams, got {type(sampling_params).__name__}"
        )
    max_tokens = sampling_params.max_tokens
    if max_tokens is not None and max_tokens < 0:
        raise ValueError(f"sampling_params.max_tokens must be >= 0, got {max_tokens}")
    if not isinstance(include_prompt_logprobs, bool):
        raise TypeError(f"include_prompt_logprobs must be a bool, got {include_prompt_logprobs!r}")
    if (
        not isinstance(topk_prompt_logprobs, int)
        or isinstance(topk_prompt_logprobs, bool)
        or topk_prompt_logprobs < 0
    ):
        raise ValueError(f"topk_prompt_logprobs must be an int >= 0, got {topk_prompt_logprobs!r}")


# -- RestClient ----------------------------------------------------------------------------------


def check_id(value: object, what: str) -> str:
    """An id that goes into a URL: a non-empty str."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty str, got {value!r}")
    return value


def check_access_scope(access_scope: object) -> dict[str, object]:
    """The query of an `access_scope`: "owned" (the server's default, not sent) or
    "accessible"."""
    if access_scope not in ("owned", "accessible"):
        raise ValueError(f"access_scope must be 'owned' or 'accessible', got {access_scope!r}")
    return {} if access_scope == "owned" else {"access_scope": access_scope}


def check_page(limit: object, offset: object) -> tuple[int, int]:
    """A page of a list: limit >= 1, offset >= 0."""
    return _count(limit, "limit", 1), _count(offset, "offset", 0)


# -- 0.38 parameters -----------------------------------------------------------------------------


def check_flag(value: object, what: str) -> bool:
    """A bool (not merely truthy)."""
    if not isinstance(value, bool):
        raise TypeError(f"{what} must be a bool, got {value!r}")
    return value


def check_optimizer_config(optimizer: object) -> types.OptimizerConfigBase | None:
    """The optimizer chosen at model creation: None (Adam) or an optimizer config."""
    if optimizer is not None and not isinstance(optimizer, types.OptimizerConfigBase):
        raise TypeError(
            "optimizer must be an AdamOptimizerConfig or DimuonOptimizerConfig (or None for "
            f"Adam), got {type(optimizer).__name__}"
        )
    return optimizer


def check_optim_params(
    optim_params: object, adam_params: object, optimizer_type: str
) -> types.AdamParams | types.OptimParamsBase:
    """The parameters of one optim_step: exactly one of `optim_params` and the legacy
    `adam_params`, of the family of the optimizer the run was created with."""
    if optim_params is not None and adam_params is not None:
        raise ValueError("optim_step takes optim_params or adam_params, not both")
    name = "optim_params" if optim_params is not None else "adam_params"
    params = optim_params if optim_params is not None else adam_params
    if params is None:
        raise TypeError("optim_step needs optim_params (AdamParams, DimuonParams, ...)")
    if isinstance(params, types.AdamParams):
        family = "adamw"
        check_adam(params)
    elif isinstance(params, types.OptimParamsBase):
        family = params.type
    else:
        raise TypeError(
            f"{name} must be an AdamParams or DimuonParams, got {type(params).__name__}"
        )
    if family != optimizer_type:
        raise ValueError(
            f"optim_step got {name}={type(params).__name__} ({family!r}) but this run's "
            f"optimizer is {optimizer_type!r}, chosen when it was created"
        )
    return params


SAMPLING_CLIENT_KINDS = ("snapshot", "inflight")


def check_kind(kind: object) -> str:
    """A sampling client kind: "snapshot" (the weights now) or "inflight" (follows training)."""
    if kind not in SAMPLING_CLIENT_KINDS:
        raise ValueError(f"kind must be 'snapshot' or 'inflight', got {kind!r}")
    return str(kind)


MAX_AGE_RECIPIENTS = 10


def check_recipients(recipients: object) -> list[str] | None:
    """Age encryption recipients: None, or 1 to 10 `age1...` or SSH public keys."""
    if recipients is None:
        return None
    if not isinstance(recipients, Sequence) or isinstance(recipients, (str, bytes)):
        raise TypeError("age_encryption_recipients must be a list of str")
    keys = list(recipients)
    if not 1 <= len(keys) <= MAX_AGE_RECIPIENTS:
        raise ValueError(
            f"age_encryption_recipients takes 1 to {MAX_AGE_RECIPIENTS} keys, got {len(keys)}"
        )
    for index, key in enumerate(keys):
        if not isinstance(key, str) or not key.startswith(("age1", "ssh-")):
            raise ValueError(
                f"age_encryption_recipients[{index}] must be an age1... or ssh-... public key"
            )
    return keys


def _count(value: object, what: str, least: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise ValueError(f"{what} must be an int >= {least}, got {value!r}")
    return value


def check_prompt_scoring(
    prompt: types.ModelInput,
    include_prompt_logprobs: bool,
    topk_sample_logprobs: object,
    target_prompt_logprobs: object,
    prompt_alt_tokens_k: object,
    prompt_logprobs_last_n: object,
) -> None:
    """The 0.38 scoring parameters of `sample`: counts >= 0, target ids an int64 `[len(prompt)
    - 1, K]` TensorData, `prompt_logprobs_last_n` >= 1 and only with include_prompt_logprobs."""
    _count(topk_sample_logprobs, "topk_sample_logprobs", 0)
    _count(prompt_alt_tokens_k, "prompt_alt_tokens_k", 0)
    if prompt_logprobs_last_n is not None:
        _count(prompt_logprobs_last_n, "prompt_logprobs_last_n", 1)
        if not include_prompt_logprobs:
            raise ValueError("prompt_logprobs_last_n needs include_prompt_logprobs=True")
    if target_prompt_logprobs is None:
        return
    if not isinstance(target_prompt_logprobs, types.TensorData):
        raise TypeError(
            "target_prompt_logprobs must be a TensorData of token ids, got "
            f"{type(target_prompt_logprobs).__name__}"
        )
    if target_prompt_logprobs.dtype != "int64":
        raise ValueError(
            f"target_prompt_logprobs must have dtype int64 (token ids), got "
            f"{target_prompt_logprobs.dtype}"
        )
    shape = target_prompt_logprobs.shape
    if shape is None or len(shape) != 2:
        raise ValueError(
            f"target_prompt_logprobs must be 2-D [len(prompt) - 1, K], got shape {shape}"
        )
    if shape[0] != prompt.length - 1:
        raise ValueError(
            f"target_prompt_logprobs has {shape[0]} rows; it needs one per prompt position "
            f"after the first: {prompt.length - 1}"
        )


@attrs.frozen
class SamplerHandleState:
    """What a sampler handle names: the server, session and sampler (no credentials)."""

    base_url: str
    headers: dict[str, str]
    session_id: str
    sampling_session_id: str
    base_model: str | None
    record_stability_info: bool


def check_sampler_handle(handle: object) -> SamplerHandleState:
    """Decode a `SamplingClient.get_sampler_handle()` string (URL-safe base64 of JSON)."""
    import base64
    import binascii
    import json

    if not isinstance(handle, str) or not handle:
        raise TypeError(f"handle must be a non-empty str, got {type(handle).__name__}")
    try:
        state = json.loads(base64.urlsafe_b64decode(handle.encode("ascii")))
        holder = state["holder"]
        parsed = SamplerHandleState(
            base_url=holder["base_url"],
            headers=dict(holder.get("default_headers_overrides") or {}),
            session_id=state["session_id"],
            sampling_session_id=state["sampling_session_id"],
            base_model=state.get("base_model"),
            record_stability_info=bool(state.get("record_stability_info", False)),
        )
    except (binascii.Error, UnicodeError, ValueError, KeyError, TypeError, AttributeError):
        raise ValueError(
            "handle is not a sampler handle (SamplingClient.get_sampler_handle() makes one)"
        ) from None
    for name in ("base_url", "session_id", "sampling_session_id"):
        if not isinstance(getattr(parsed, name), str) or not getattr(parsed, name):
            raise ValueError(f"the sampler handle has no {name}")
    return parsed
