"""Shared builders for the compute-backend tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from tinker.local.compute.catalogue import VOCAB_SIZE
from tinker.local.compute.trainer import DatumArrays, LoraTrainer

TINY = "tinker-local/tiny"
#: The same network with the random initial weights (for tests of the math from a known start).
TINY_RANDOM = "tinker-local/tiny-random"


def ce_datum(rng: np.random.Generator, n: int) -> DatumArrays:
    """A cross_entropy datum with random tokens, targets and real-valued weights."""
    return DatumArrays(
        rng.integers(0, VOCAB_SIZE, n),
        {
            "target_tokens": rng.integers(0, VOCAB_SIZE, n),
            "weights": rng.normal(size=n).astype(np.float32),
        },
    )


def sequence_datum(seq: list[int]) -> DatumArrays:
    """Supervised datum for a whole sequence: shifted inputs and targets, all weights 1."""
    arr = np.asarray(seq, dtype=np.int64)
    return DatumArrays(
        arr[:-1], {"target_tokens": arr[1:], "weights": np.ones(len(arr) - 1, np.float32)}
    )


def random_adapter(
    trainer: LoraTrainer, rng: np.random.Generator, std: float = 0.05
) -> dict[str, Any]:
    """Random nonzero A and B for every adapter tensor (so every gradient is nonzero)."""
    return {k: rng.normal(0.0, std, v.shape) for k, v in trainer.adapter_tensors().items()}


def directional_check(
    loss_at: Callable[[dict[str, npt.NDArray[Any]]], float],
    point: dict[str, npt.NDArray[Any]],
    grads: dict[str, npt.NDArray[Any]],
    rng: np.random.Generator,
    h: float = 1e-6,
) -> dict[str, tuple[float, float]]:
    """Per tensor: (central difference along a random direction, <grad, direction>)."""
    results = {}
    for name in point:
        direction = rng.normal(size=point[name].shape)
        plus = {k: v.copy() for k, v in point.items()}
        minus = {k: v.copy() for k, v in point.items()}
        plus[name] = plus[name] + h * direction
        minus[name] = minus[name] - h * direction
        numeric = (loss_at(plus) - loss_at(minus)) / (2 * h)
        results[name] = (numeric, float(np.sum(grads[name] * direction)))
    return results
