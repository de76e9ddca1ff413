"""Adam with decoupled weight decay, step for step as torch.optim.AdamW, and the global
gradient clipping that every optimizer of this package shares.

Per tensor p with accumulated gradient g, one step is: if grad_clip_norm c > 0, scale every
g by min(1, c / (n + 1e-6)) where n is the global L2 norm over all tensors (torch's
clip_grad_norm_); t += 1; p *= 1 - lr * weight_decay; m = beta1 m + (1 - beta1) g;
v = beta2 v + (1 - beta2) g^2; p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps);
then g = 0. The defaults are the service's: lr 1e-4, betas (0.9, 0.95), eps 1e-12, no weight
decay, no clipping.

Hyperparameters are read on every call (schedules live on the client). A step always runs,
even when no gradient was accumulated (moments decay and the counter advances): this keeps
the update a pure function of the call sequence.

State tensors (checkpoint format, unchanged since the first release): `<name>.exp_avg`,
`<name>.exp_avg_sq` per parameter and `step` (int64, shape [1]).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, MutableMapping
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from tinker.local.compute.errors import UserInputError

Array = npt.NDArray[Any]

#: Added to the global gradient norm before dividing, as torch's clip_grad_norm_ does.
CLIP_EPS = 1e-6
#: Name of the step counter in every optimizer's state tensors.
STEP_KEY = "step"
ADAM_MOMENTS = ("exp_avg", "exp_avg_sq")


def clip_gradients(grads: MutableMapping[str, Array], max_norm: float) -> dict[str, float] | None:
    """Scale every gradient by min(1, max_norm / (n + CLIP_EPS)), n the global L2 norm.

    Returns {"grad_norm:mean": n} (the norm before clipping), or None when max_norm <= 0.
    """
    if max_norm <= 0:
        return None
    norm = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads.values()))
    factor = min(1.0, max_norm / (norm + CLIP_EPS))
    if factor < 1.0:
        for g in grads.values():
            g *= g.dtype.type(factor)
    return {"grad_norm:mean": norm}


def step_tensor(count: int) -> Array:
    """The `step` state tensor."""
    return np.array([count], dtype=np.int64)


def read_step(state: Mapping[str, Array]) -> int:
    """The step counter of optimizer state tensors; UserInputError if absent or malformed."""
    step = np.asarray(state.get(STEP_KEY, np.array([-1])))
    if step.size != 1 or not np.issubdtype(step.dtype, np.integer) or int(step.ravel()[0]) < 0:
        raise UserInputError("optimizer state needs a non-negative integer 'step' tensor")
    return int(step.ravel()[0])


@attrs.frozen
class AdamParams:
    """One optim_step's hyperparameters (defaults as the Tinker SDK's AdamParams)."""

    learning_rate: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-12
    weight_decay: float = 0.0
    grad_clip_norm: float = 0.0

    def validate(self) -> None:
        """Raise UserInputError for values torch would reject (or silently misuse)."""
        for name in ("learning_rate", "eps", "weight_decay", "grad_clip_norm"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise UserInputError(
                    f"adam_params.{name} must be a finite number >= 0, got {value}"
                )
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise UserInputError(f"adam_params.{name} must be in [0, 1), got {value}")


class Adam:
    """Adam(W) state (first/second moments per tensor and one step counter)."""

    def __init__(self, params: Mapping[str, Array]) -> None:
        self.step_count = 0
        self.exp_avg = {name: np.zeros_like(p) for name, p in params.items()}
        self.exp_avg_sq = {name: np.zeros_like(p) for name, p in params.items()}

    def step(
        self, params: MutableMapping[str, Array], grads: MutableMapping[str, Array], hp: AdamParams
    ) -> dict[str, float] | None:
        """Update `params` in place from `grads`, then zero `grads`.

        Returns {"grad_norm:mean": norm before clipping} when clipping is on, else None.
        """
        hp.validate()
        metrics = clip_gradients(grads, hp.grad_clip_norm)
        self.step_count += 1
        t = self.step_count
        step_size = hp.learning_rate / (1.0 - hp.beta1**t)
        bias_correction2_sqrt = math.sqrt(1.0 - hp.beta2**t)
        for name, p in params.items():
            g, m, v = grads[name], self.exp_avg[name], self.exp_avg_sq[name]
            cast = p.dtype.type
            if hp.weight_decay:
                p *= cast(1.0 - hp.learning_rate * hp.weight_decay)
            m *= cast(hp.beta1)
            m += cast(1.0 - hp.beta1) * g
            v *= cast(hp.beta2)
            v += cast(1.0 - hp.beta2) * g * g
            denom = np.sqrt(v) / cast(bias_correction2_sqrt) + cast(hp.eps)
            p -= cast(step_size) * (m / denom)
            g.fill(0)
        return metrics

    def state_tensors(self) -> dict[str, Array]:
        """The moments as float32 copies and the step counter (the checkpoint format)."""
        tensors = {STEP_KEY: step_tensor(self.step_count)}
        for name in self.exp_avg:
            tensors[f"{name}.exp_avg"] = self.exp_avg[name].astype(np.float32, copy=True)
            tensors[f"{name}.exp_avg_sq"] = self.exp_avg_sq[name].astype(np.float32, copy=True)
        return tensors

    def load_state(self, state: Mapping[str, Array]) -> None:
        """Restore from state_tensors() output (validated by the caller's shape check)."""
        self.step_count = read_step(state)
        for name, moment in self.exp_avg.items():
            self.exp_avg[name] = np.array(state[f"{name}.exp_avg"], dtype=moment.dtype)
            self.exp_avg_sq[name] = np.array(state[f"{name}.exp_avg_sq"], dtype=moment.dtype)
