"""Custom-loss evaluation: numpy losses with explicit grads, torch losses with autograd."""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import pytest

from tinker._custom_loss import evaluate_custom_loss, numpy_loss

HAS_TORCH = importlib.util.find_spec("torch") is not None


@numpy_loss
def _squared(data: list[Any], logprobs: list[np.ndarray]) -> tuple[float, dict[str, float], list]:
    loss = float(sum(np.sum(lp.astype(np.float64) ** 2) for lp in logprobs))
    return loss, {"n:sum": float(len(data))}, [2 * lp for lp in logprobs]


def test_numpy_loss_returns_value_metrics_and_grads() -> None:
    logprobs = [np.array([-1.0, -2.0], np.float32), np.array([-0.5], np.float32)]
    result = evaluate_custom_loss(_squared, ["d0", "d1"], logprobs)
    assert result.loss == pytest.approx(5.25)
    assert result.metrics == {"n:sum": 2.0}
    np.testing.assert_array_equal(result.grads[0], [-2.0, -4.0])
    np.testing.assert_array_equal(result.grads[1], [-1.0])
    assert all(g.dtype == np.float32 for g in result.grads)


def test_numpy_loss_gets_a_copy_of_the_logprobs() -> None:
    logprobs = [np.array([-1.0], np.float32)]

    @numpy_loss
    def mutating(_data: list[Any], lps: list[np.ndarray]) -> tuple[float, dict, list]:
        lps[0][0] = 99.0
        return 0.0, {}, [np.zeros(1)]

    evaluate_custom_loss(mutating, ["d"], logprobs)
    assert logprobs[0][0] == -1.0


@pytest.mark.parametrize(
    ("result", "error", "message"),
    [
        ((1.0, {}), TypeError, r"\(loss, metrics, grads\)"),
        ((1.0, {}, [np.zeros(2)]), ValueError, "1 gradients for 2 datums"),
        ((1.0, {}, [np.zeros(3), np.zeros(1)]), ValueError, "datum 0 has 3 elements"),
        ((1.0, {}, [np.zeros(2), np.array([np.nan])]), ValueError, "datum 1 is not finite"),
        ((1.0, [1], [np.zeros(2), np.zeros(1)]), TypeError, "metrics must be a dict"),
        (("x", {}, [np.zeros(2), np.zeros(1)]), TypeError, "loss must be a scalar"),
    ],
)
def test_bad_numpy_results(result: tuple, error: type[Exception], message: str) -> None:
    logprobs = [np.zeros(2, np.float32), np.zeros(1, np.float32)]
    with pytest.raises(error, match=message):
        evaluate_custom_loss(numpy_loss(lambda _d, _l: result), ["a", "b"], logprobs)


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
def test_torch_loss_gets_gradients_from_autograd() -> None:
    import torch

    def loss_fn(data: list[Any], lps: list[torch.Tensor]) -> tuple[torch.Tensor, dict]:
        loss = sum((lp**2).sum() for lp in lps)
        return loss, {"k:sum": 1.0}

    logprobs = [np.array([-1.0, -2.0], np.float32)]
    result = evaluate_custom_loss(loss_fn, ["d"], logprobs)
    assert result.loss == pytest.approx(5.0)
    np.testing.assert_allclose(result.grads[0], [-2.0, -4.0])


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
def test_torch_loss_that_ignores_an_input_is_an_error() -> None:
    def loss_fn(_data: list[Any], lps: list[Any]) -> tuple[Any, dict]:
        return (lps[0] ** 2).sum(), {}

    logprobs = [np.zeros(2, np.float32), np.zeros(1, np.float32)]
    with pytest.raises(ValueError, match=r"No gradient computed .* datum 1"):
        evaluate_custom_loss(loss_fn, ["a", "b"], logprobs)
