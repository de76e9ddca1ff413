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
    fourth_order: bool = False,
) -> dict[str, tuple[float, float]]:
    """Per tensor: (central difference along a random direction, <grad, direction>).

    `fourth_order` uses the five-point stencil: its truncation error is O(h^4), so a larger
    `h` keeps it small while dividing the loss's rounding noise by a larger step."""
    results = {}
    for name in point:
        direction = rng.normal(size=point[name].shape)

        def at(step: float, name: str = name, direction: Any = direction) -> float:
            moved = {k: v.copy() for k, v in point.items()}
            moved[name] = moved[name] + step * direction
            return loss_at(moved)

        if fourth_order:
            numeric = (at(-2 * h) - 8 * at(-h) + 8 * at(h) - at(2 * h)) / (12 * h)
        else:
            numeric = (at(h) - at(-h)) / (2 * h)
        results[name] = (numeric, float(np.sum(grads[name] * direction)))
    return results
