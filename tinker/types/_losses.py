"""Loss functions: their names, the `loss_fn_inputs` each one takes, and a batch check.

The tables are facts of the service: which inputs each loss takes (an unknown key is refused
with HTTP 400) and their wire dtypes. The local server uses the same tables to validate what
it receives.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from tinker.types._inputs import Datum
    from tinker.types._tensors import TensorDtype

__all__ = [
    "INPUT_KEY_DTYPES",
    "LOSS_FN_INPUT_KEYS",
    "LOSS_FN_OPTIONAL_KEYS",
    "LOSS_FN_TYPES",
    "OPEN_INPUT_LOSSES",
    "LossFnType",
    "validate_batch",
]

LossFnType = Literal[
    "cross_entropy",
    "importance_sampling",
    "ppo",
    "cispo",
    "dro",
    "gspo",
    "stable_reinforce",
    "custom",
]
LOSS_FN_TYPES: tuple[str, ...] = typing.get_args(LossFnType)

_POLICY_GRADIENT_KEYS = frozenset({"target_tokens", "logprobs", "advantages"})

# Loss -> the keys its loss_fn_inputs must have.
LOSS_FN_INPUT_KEYS: Mapping[str, frozenset[str]] = {
    "cross_entropy": frozenset({"target_tokens", "weights"}),
    "importance_sampling": _POLICY_GRADIENT_KEYS,
    "ppo": _POLICY_GRADIENT_KEYS,
    "cispo": _POLICY_GRADIENT_KEYS,
    "dro": _POLICY_GRADIENT_KEYS,
    "gspo": _POLICY_GRADIENT_KEYS | {"sequence_ratio_mask"},
    # The sampler's recorded behaviour replaces `logprobs`, found through provenance spans.
    "stable_reinforce": frozenset({"target_tokens", "advantages"}),
    # An uploaded loss graph reads target_tokens and the inputs it was traced with.
    "custom": frozenset({"target_tokens"}),
}

# Loss -> keys it also accepts (the service's RL examples send `weights`; no formula reads it).
# Any key in neither table is refused, as the service refuses it.
LOSS_FN_OPTIONAL_KEYS: Mapping[str, frozenset[str]] = {
    "cross_entropy": frozenset(),
    **{
        loss: frozenset({"weights"})
        for loss in ("importance_sampling", "ppo", "cispo", "dro", "gspo")
    },
    "stable_reinforce": frozenset({"logprobs", "weights"}),
    "custom": frozenset(),
}
# Losses that take any further input (each named by the loss graph; any dtype and rank).
OPEN_INPUT_LOSSES = frozenset({"custom"})

# Key -> wire dtype; also how a plain list under that key becomes a TensorData.
INPUT_KEY_DTYPES: Mapping[str, TensorDtype] = {
    "target_tokens": "int64",
    "weights": "float32",
    "advantages": "float32",
    "logprobs": "float32",
    "clip_low_threshold": "float32",
    "clip_high_threshold": "float32",
    "sequence_ratio_mask": "float32",
}


def validate_batch(data: Sequence[Datum], loss_fn: str) -> None:
    """Check a forward/forward_backward batch before sending it.

    Raises ValueError naming the datum and field: an unknown loss, missing or unexpected keys,
    a wrong dtype, or a first dimension that differs from `model_input.length`.
    """
    required = LOSS_FN_INPUT_KEYS.get(loss_fn)
    if required is None:
        known = ", ".join(LOSS_FN_TYPES)
        raise ValueError(f"unknown loss_fn {loss_fn!r}; expected one of {known}")
    for index, datum in enumerate(data):
        _validate_datum(index, datum, loss_fn, required)


def _validate_datum(index: int, datum: Datum, loss_fn: str, required: frozenset[str]) -> None:
    where = f"data[{index}]"
    inputs = datum.loss_fn_inputs
    missing = sorted(required - inputs.keys())
    if missing:
        raise ValueError(f"{where}.loss_fn_inputs: {loss_fn} needs {_names(missing)}")
    accepted = required | LOSS_FN_OPTIONAL_KEYS[loss_fn]
    unexpected = sorted(inputs.keys() - accepted)
    if unexpected and loss_fn not in OPEN_INPUT_LOSSES:
        raise ValueError(
            f"{where}.loss_fn_inputs: unexpected {_names(unexpected)} for {loss_fn} "
            f"(accepted: {_names(sorted(accepted))})"
        )
    length = datum.model_input.length
    for key in sorted(inputs.keys() & accepted):
        tensor = inputs[key]
        field = f"{where}.loss_fn_inputs[{key!r}]"
        wanted = INPUT_KEY_DTYPES[key]
        if tensor.dtype != wanted:
            raise ValueError(f"{field}: expected dtype {wanted}, got {tensor.dtype}")
        first = tensor.shape[0] if tensor.shape else tensor.to_numpy().size
        if first != length:
            raise ValueError(
                f"{field}: expected {length} entries (model_input.length), got {first}"
            )
    for key in sorted(inputs.keys()):
        if inputs[key].dtype == "float32":
            _check_finite(f"{where}.loss_fn_inputs[{key!r}]", inputs[key].values)


def _check_finite(field: str, values: Any) -> None:
    """ValueError at the first NaN or infinity (a merely overflowing sum is fine)."""
    import numpy as np

    finite = np.isfinite(values)
    if not finite.all():
        index = int(np.flatnonzero(~finite.reshape(-1))[0])
        value = float(values.reshape(-1)[index])
        raise ValueError(f"{field}[{index}]: must be finite, got {value}")


def _names(keys: Sequence[str]) -> str:
    return ", ".join(repr(k) for k in keys)
