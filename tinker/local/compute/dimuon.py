"""Dimuon: momentum whose update direction is orthogonalised per LoRA matrix (Muon-style).

The service documents Dimuon's hyperparameters but not its formula; this is the rule
implemented here. Per adapter matrix P (lora_A is (r, in), lora_B is (out, r)) with
accumulated gradient G, one step is:

1. If grad_clip_norm > 0, every G is scaled by min(1, c / (n + 1e-6)), n the global L2 norm
   over all matrices (as Adam's clipping); values <= 0 disable clipping.
2. t += 1; M = beta1 M + (1 - beta1) G (an EMA of gradients, M = 0 at the start).
3. O = polar(M) = U V^T from the thin SVD M = U S V^T, keeping only singular values above
   s_max * max(rows, cols) * eps(float64) (so a zero or rank-deficient M moves only along its
   own directions). O has every kept singular value 1: for a LoRA factor of full rank r its
   Frobenius norm is sqrt(r), the "direction with Frobenius norm sqrt(rank)" of the service's
   learning-rate description.
4. P -= learning_rate * O; then G = 0.

Why: Muon's insight is that an orthogonalised update changes every direction of a matrix by
the same amount, so badly scaled gradients (LoRA's B starts at zero, A's gradient is tiny
until B grows) still make progress without Adam's per-element second moments. The service
computes the matrix sign with a fixed number of Newton-Schulz iterations; at this package's
sizes (r <= a few dozen) the exact polar factor from an SVD is cheap and makes the rule a pure
function of the momentum, which is what the tests check.

State tensors: `<name>.momentum` per parameter, `step` (int64 [1]) and the marker
`dimuon.version` (int64 [1], value 1) that tells Dimuon state from Adam state on load.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, MutableMapping
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from tinker.local.compute.errors import UserInputError
from tinker.local.compute.optimizers import clip_gradients, read_step, step_tensor

Array = npt.NDArray[Any]

VERSION_KEY = "dimuon.version"
VERSION = 1
MOMENTUM = "momentum"


@attrs.frozen
class DimuonParams:
    """One Dimuon step's hyperparameters (fields and defaults of the SDK's DimuonParams)."""

    learning_rate: float
    grad_clip_norm: float = 0.0
    beta1: float = 0.9

    def validate(self) -> None:
        """Raise UserInputError for the values the SDK's DimuonParams rejects."""
        for name in ("learning_rate", "grad_clip_norm", "beta1"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UserInputError(f"dimuon params.{name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise UserInputError(f"dimuon params.{name} must be finite, got {value}")
        if self.learning_rate < 0:
            raise UserInputError(
                f"dimuon params.learning_rate must be >= 0, got {self.learning_rate}"
            )
        if not 0.0 <= self.beta1 < 1.0:
            raise UserInputError(f"dimuon params.beta1 must be in [0, 1), got {self.beta1}")


def polar(matrix: Array) -> Array:
    """U V^T over the singular values above the numerical-rank threshold (float64)."""
    u, s, vt = np.linalg.svd(np.asarray(matrix, dtype=np.float64), full_matrices=False)
    if s.size == 0 or s[0] == 0.0:
        return np.zeros(matrix.shape, dtype=np.float64)
    keep = s > s[0] * max(matrix.shape) * np.finfo(np.float64).eps
    result: Array = u[:, keep] @ vt[keep]
    return result


class Dimuon:
    """Dimuon state: one momentum matrix per parameter and one step counter."""

    def __init__(self, params: Mapping[str, Array]) -> None:
        for name, p in params.items():
            if p.ndim != 2:
                raise ValueError(f"Dimuon updates matrices; {name} has shape {p.shape}")
        self.step_count = 0
        self.momentum = {name: np.zeros_like(p) for name, p in params.items()}

    def step(
        self,
        params: MutableMapping[str, Array],
        grads: MutableMapping[str, Array],
        hp: DimuonParams,
    ) -> dict[str, float] | None:
        """Update `params` in place from `grads` (module docstring), then zero `grads`.

        Returns {"grad_norm:mean": norm before clipping} when clipping is on, else None.
        """
        hp.validate()
        metrics = clip_gradients(grads, hp.grad_clip_norm)
        self.step_count += 1
        for name, p in params.items():
            g, m = grads[name], self.momentum[name]
            cast = p.dtype.type
            m *= cast(hp.beta1)
            m += cast(1.0 - hp.beta1) * g
            p -= (hp.learning_rate * polar(m)).astype(p.dtype)
            g.fill(0)
        return metrics

    def state_tensors(self) -> dict[str, Array]:
        """Momentum (float32 copies), step counter and the format marker."""
        tensors = {"step": step_tensor(self.step_count), VERSION_KEY: step_tensor(VERSION)}
        for name, m in self.momentum.items():
            tensors[f"{name}.{MOMENTUM}"] = m.astype(np.float32, copy=True)
        return tensors

    def load_state(self, state: Mapping[str, Array]) -> None:
        """Restore from state_tensors() output (validated by the caller's shape check)."""
        self.step_count = read_step(state)
        for name, m in self.momentum.items():
            self.momentum[name] = np.array(state[f"{name}.{MOMENTUM}"], dtype=m.dtype)
