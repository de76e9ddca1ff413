"""Regularizers beside a custom loss: the combined gradient against finite differences, the
metrics with their exact values, evaluation in parallel, the backward's weights on the wire,
and bad input refused in the caller's thread before anything is sent."""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
import pytest
from support.fake_service import FakeService

from tinker import types
from tinker._custom_loss import evaluate_objective
from tinker.lib.custom_loss import Regularizer, numpy_loss

LOGPROBS = [np.array([-0.5, -1.25, -2.0], np.float32), np.array([-0.75], np.float32)]


@numpy_loss
def linear_loss(_data: list[Any], logprobs: list[np.ndarray]) -> Any:
    """L = -sum(lp): the negative log likelihood."""
    return (
        -float(sum(lp.astype(np.float64).sum() for lp in logprobs)),
        {"n:sum": 2.0},
        [-np.ones_like(lp) for lp in logprobs],
    )


@numpy_loss
def l2(_data: list[Any], logprobs: list[np.ndarray]) -> Any:
    """R = sum(lp^2)."""
    value = float(sum(np.sum(lp.astype(np.float64) ** 2) for lp in logprobs))
    return value, {"tokens:sum": 4.0}, [2 * lp for lp in logprobs]


@numpy_loss
def mass(_data: list[Any], logprobs: list[np.ndarray]) -> Any:
    """R = sum(exp(lp)): the probability mass of the targets."""
    value = float(sum(np.sum(np.exp(lp.astype(np.float64))) for lp in logprobs))
    return value, {}, [np.exp(lp) for lp in logprobs]


REGULARIZERS = [Regularizer("l2", l2, 0.5), Regularizer("mass", mass, weight=2.0)]


def _total(logprobs: list[np.ndarray]) -> float:
    return evaluate_objective(linear_loss, REGULARIZERS, ["a", "b"], logprobs).loss


def test_the_gradient_is_that_of_the_loss_plus_the_weighted_regularizers() -> None:
    result = evaluate_objective(linear_loss, REGULARIZERS, ["a", "b"], LOGPROBS)
    step = 2.0**-10  # exact in float32 next to these logprobs; truncation error ~1e-7
    for datum, lp in enumerate(LOGPROBS):
        for token in range(lp.size):
            up = [x.copy() for x in LOGPROBS]
            down = [x.copy() for x in LOGPROBS]
            up[datum][token] += step
            down[datum][token] -= step
            numeric = (_total(up) - _total(down)) / (2 * step)
            assert result.grads[datum][token] == pytest.approx(numeric, rel=1e-5, abs=1e-6)
    flat = np.concatenate(LOGPROBS).astype(np.float64)
    expected = -1.0 + 0.5 * 2 * flat + 2.0 * np.exp(flat)
    np.testing.assert_allclose(np.concatenate(result.grads), expected, rtol=1e-6)


def test_each_regularizer_reports_its_value_contribution_and_gradient_norm() -> None:
    result = evaluate_objective(linear_loss, REGULARIZERS, ["a", "b"], LOGPROBS)
    flat = np.concatenate(LOGPROBS).astype(np.float64)
    base = -flat.sum()
    l2_value = float(np.sum(flat**2))
    mass_value = float(np.sum(np.exp(flat)))
    assert result.loss == pytest.approx(base + 0.5 * l2_value + 2.0 * mass_value, rel=1e-12)
    assert result.metrics == pytest.approx(
        {
            "n:sum": 2.0,
            "base_loss:sum": base,
            "regularizer/l2:value": l2_value,
            "regularizer/l2:contribution": 0.5 * l2_value,
            "regularizer/l2:grad_norm": math.sqrt(float(np.sum((2 * flat) ** 2))),
            "regularizer/l2/tokens:sum": 4.0,
            "regularizer/mass:value": mass_value,
            "regularizer/mass:contribution": 2.0 * mass_value,
            "regularizer/mass:grad_norm": math.sqrt(float(np.sum(np.exp(flat) ** 2))),
        },
        rel=1e-6,
    )


def test_without_regularizers_the_loss_is_unchanged() -> None:
    result = evaluate_objective(linear_loss, [], ["a", "b"], LOGPROBS)
    assert result.metrics == {"n:sum": 2.0}
    assert result.loss == pytest.approx(4.5)


def test_the_loss_and_the_regularizers_run_at_the_same_time() -> None:
    together = threading.Barrier(3, timeout=10)  # broken unless all three wait at once

    def meeting(value: float) -> Any:
        @numpy_loss
        def fn(_data: list[Any], logprobs: list[np.ndarray]) -> Any:
            together.wait()
            return value, {}, [np.zeros_like(lp) for lp in logprobs]

        return fn

    regularizers = [Regularizer("a", meeting(1.0), 1.0), Regularizer("b", meeting(2.0), 3.0)]
    result = evaluate_objective(meeting(0.5), regularizers, ["a", "b"], LOGPROBS)
    assert result.loss == 0.5 + 1.0 + 6.0


def test_a_failing_regularizer_raises_in_the_callers_thread_with_its_name() -> None:
    @numpy_loss
    def short(_data: list[Any], logprobs: list[np.ndarray]) -> Any:
        return 1.0, {}, [np.zeros(1)]

    with pytest.raises(ValueError, match="regularizer 'short' returned 1 gradients for 2"):
        evaluate_objective(linear_loss, [Regularizer("short", short)], ["a", "b"], LOGPROBS)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: Regularizer("x", 3), TypeError, "fn must be callable, got int"),
        (lambda: Regularizer("x", l2, -0.5), ValueError, "weight must be finite and >= 0"),
        (lambda: Regularizer("x", l2, math.nan), ValueError, "weight must be finite and >= 0"),
        (lambda: Regularizer("x", l2, math.inf), ValueError, "weight must be finite and >= 0"),
        (lambda: Regularizer("x", l2, "1"), TypeError, "weight must be a number, got str"),
        (lambda: Regularizer("", l2), ValueError, "non-empty str without ':' or '/'"),
        (lambda: Regularizer("a:b", l2), ValueError, "non-empty str without ':' or '/'"),
    ],
)
def test_bad_regularizers_are_refused_when_made(make: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        make()


def _forward_logprobs(body: dict[str, Any]) -> dict[str, Any]:
    data = body["forward_input"]["data"]
    return {
        "loss_fn_output_type": "CrossEntropyLossReturn",
        "loss_fn_outputs": [
            {"logprobs": {"data": LOGPROBS[i].tolist(), "dtype": "float32"}}
            for i in range(len(data))
        ],
        "metrics": {"loss:sum": 0.0},
    }


def _backward(body: dict[str, Any]) -> dict[str, Any]:
    data = body["forward_backward_input"]["data"]
    return {
        "loss_fn_output_type": "CrossEntropyLossReturn",
        "loss_fn_outputs": [{"logprobs": {"data": [0.0], "dtype": "float32"}} for _ in data],
        "metrics": {"loss:sum": 7.0},
    }


def _batch() -> list[types.Datum]:
    return [
        types.Datum(
            model_input=types.ModelInput.from_ints(list(range(lp.size))),
            loss_fn_inputs={"target_tokens": list(range(1, lp.size + 1))},
        )
        for lp in LOGPROBS
    ]


def test_the_backward_weights_are_minus_the_total_gradient(fake: FakeService, trainer: Any) -> None:
    fake.future("/api/v1/forward", _forward_logprobs)
    fake.future("/api/v1/forward_backward", _backward)
    result = trainer.forward_backward_custom(
        _batch(), linear_loss, regularizers=REGULARIZERS
    ).result(timeout=10)
    (backward,) = fake.bodies("/api/v1/forward_backward")
    sent = [
        d["loss_fn_inputs"]["weights"]["data"] for d in backward["forward_backward_input"]["data"]
    ]
    expected = evaluate_objective(linear_loss, REGULARIZERS, ["a", "b"], LOGPROBS).grads
    assert sent == [(-grad).tolist() for grad in expected]
    assert result.metrics["surrogate_loss:sum"] == 7.0
    assert result.metrics["loss:sum"] == pytest.approx(_total(LOGPROBS), rel=1e-12)
    assert result.metrics["regularizer/mass:contribution"] == pytest.approx(
        2.0 * float(np.sum(np.exp(np.concatenate(LOGPROBS).astype(np.float64))))
    )


@pytest.mark.parametrize(
    ("regularizers", "error", "message"),
    [
        (
            [Regularizer("l2", l2), Regularizer("l2", mass)],
            ValueError,
            "'l2' is given more than once",
        ),
        ([l2], TypeError, r"regularizers\[0\] must be a Regularizer"),
        (Regularizer("l2", l2), TypeError, "regularizers must be a list of Regularizer"),
    ],
)
def test_bad_regularizer_lists_raise_before_anything_is_sent(
    fake: FakeService, trainer: Any, regularizers: Any, error: type, message: str
) -> None:
    before = len(fake.requests)
    with pytest.raises(error, match=message):
        trainer.forward_backward_custom(_batch(), linear_loss, regularizers=regularizers)
    assert len(fake.requests) == before
