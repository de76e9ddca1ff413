"""Regularizers for `forward_backward_custom`: named, weighted terms added to a custom loss.

A regularizer's function follows the custom-loss conventions (tinker._custom_loss): it gets
the batch and its per-token logprobs and returns its value (and, for a numpy one, its
gradient). Checked here, in the caller's thread, before any request is sent.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import attrs

__all__ = ["Regularizer", "check_regularizers"]


def _check_name(_instance: object, _attribute: object, name: Any) -> None:
    if not isinstance(name, str) or not name or ":" in name or "/" in name:
        raise ValueError(f"a regularizer name must be a non-empty str without ':' or '/', got "
                         f"{name!r}")  # fmt: skip


def _check_fn(_instance: object, _attribute: object, fn: Any) -> None:
    if not callable(fn):
        raise TypeError(f"a regularizer's fn must be callable, got {type(fn).__name__}")


def _check_weight(instance: Regularizer, _attribute: object, weight: Any) -> None:
    if isinstance(weight, bool) or not isinstance(weight, (int, float)):
        raise TypeError(
            f"regularizer {instance.name!r}: weight must be a number, got {type(weight).__name__}"
        )
    if not 0.0 <= weight < math.inf:  # NaN fails too
        raise ValueError(f"regularizer {instance.name!r}: weight must be finite and >= 0, "
                         f"got {weight!r}")  # fmt: skip


@attrs.frozen
class Regularizer:
    """A term `weight * fn(data, logprobs)` added to a custom loss; `name` labels its metrics
    (`regularizer/<name>:value`, `:contribution`, `:grad_norm`).

    `fn` is written like a custom loss function: with torch it returns `(value_tensor,
    metrics)`; a numpy one (no torch, or marked with `numpy_loss`) returns `(value, metrics,
    grads)` with grads[i] = dvalue/dlogprobs[i].
    """

    name: str = attrs.field(validator=_check_name)
    fn: Callable[..., Any] = attrs.field(validator=_check_fn)
    weight: float = attrs.field(default=1.0, validator=_check_weight)


def check_regularizers(regularizers: object) -> tuple[Regularizer, ...]:
    """The regularizers of one call: a sequence of Regularizer with distinct names."""
    if regularizers is None:
        return ()
    if isinstance(regularizers, (str, bytes)) or not isinstance(regularizers, Sequence):
        raise TypeError(
            f"regularizers must be a list of Regularizer, got {type(regularizers).__name__}"
        )
    seen: set[str] = set()
    for index, item in enumerate(regularizers):
        if not isinstance(item, Regularizer):
            raise TypeError(
                f"regularizers[{index}] must be a Regularizer(name, fn, weight), got "
                f"{type(item).__name__}"
            )
        if item.name in seen:
            raise ValueError(f"regularizer name {item.name!r} is given more than once")
        seen.add(item.name)
    return tuple(regularizers)
