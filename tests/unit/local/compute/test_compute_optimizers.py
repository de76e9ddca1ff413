"""Adam(W) against a literal transcription of the update rule, and optim_step behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tinker.local.compute.errors import UserInputError
from tinker.local.compute.optimizers import Adam, AdamParams


def _reference_run(
    params: dict[str, np.ndarray], grad_seq: list[dict[str, np.ndarray]], hps: list[AdamParams]
) -> dict[str, np.ndarray]:
    """Element by element, straight from the formula (float64)."""
    theta = {k: v.astype(np.float64).ravel().tolist() for k, v in params.items()}
    m = {k: [0.0] * len(v) for k, v in theta.items()}
    v2 = {k: [0.0] * len(v) for k, v in theta.items()}
    for t, (grads, hp) in enumerate(zip(grad_seq, hps, strict=True), start=1):
        g = {k: x.astype(np.float64).ravel().tolist() for k, x in grads.items()}
        if hp.grad_clip_norm > 0:
            norm = math.sqrt(sum(x * x for vals in g.values() for x in vals))
            factor = min(1.0, hp.grad_clip_norm / (norm + 1e-6))
            g = {k: [x * factor for x in vals] for k, vals in g.items()}
        for k in theta:
            for i in range(len(theta[k])):
                theta[k][i] *= 1 - hp.learning_rate * hp.weight_decay
                m[k][i] = hp.beta1 * m[k][i] + (1 - hp.beta1) * g[k][i]
                v2[k][i] = hp.beta2 * v2[k][i] + (1 - hp.beta2) * g[k][i] ** 2
                m_hat_step = hp.learning_rate / (1 - hp.beta1**t)
                denom = math.sqrt(v2[k][i]) / math.sqrt(1 - hp.beta2**t) + hp.eps
                theta[k][i] -= m_hat_step * m[k][i] / denom
    return {k: np.array(vals).reshape(params[k].shape) for k, vals in theta.items()}


def test_adam_matches_the_formula_step_by_step() -> None:
    rng = np.random.default_rng(0)
    params = {"a": rng.normal(size=(3, 4)), "b": rng.normal(size=(5,))}
    hps = [
        AdamParams(learning_rate=1e-2),
        AdamParams(learning_rate=5e-3, beta1=0.8, beta2=0.99, eps=1e-8, weight_decay=0.1),
        AdamParams(learning_rate=2e-2, grad_clip_norm=0.5),  # clips (norm ~ 4)
        AdamParams(learning_rate=1e-3, grad_clip_norm=100.0),  # does not clip
        AdamParams(learning_rate=1e-2, weight_decay=0.5),
    ]
    grad_seq = [{k: rng.normal(size=v.shape) for k, v in params.items()} for _ in hps]
    expected = _reference_run(params, grad_seq, hps)

    live = {k: v.copy() for k, v in params.items()}
    adam = Adam(live)
    for t, (grads, hp) in enumerate(zip(grad_seq, hps, strict=True), start=1):
        buffers = {k: g.copy() for k, g in grads.items()}
        metrics = adam.step(live, buffers, hp)
        assert adam.step_count == t
        assert all(not b.any() for b in buffers.values())  # zeroed after the step
        if hp.grad_clip_norm > 0:
            norm = math.sqrt(sum(float(np.sum(g**2)) for g in grads.values()))
            assert metrics == {"grad_norm:mean": pytest.approx(norm)}
        else:
            assert metrics is None
    for k in params:
        np.testing.assert_allclose(live[k], expected[k], rtol=1e-12, atol=1e-15)


def test_first_step_moves_each_parameter_by_about_lr() -> None:
    params = {"w": np.zeros(4, np.float32)}
    grads = {"w": np.array([3.0, -0.001, 1e-6, 0.0], np.float32)}
    Adam(params).step(params, grads, AdamParams(learning_rate=0.01))
    np.testing.assert_allclose(params["w"], [-0.01, 0.01, -0.01, 0.0], rtol=1e-4)


def test_step_with_zero_gradient_still_advances() -> None:
    params = {"w": np.zeros(2)}
    adam = Adam(params)
    adam.step(params, {"w": np.array([1.0, -1.0])}, AdamParams(learning_rate=0.1))
    after_first = params["w"].copy()
    adam.step(params, {"w": np.zeros(2)}, AdamParams(learning_rate=0.1))
    assert adam.step_count == 2
    assert np.all(np.abs(params["w"]) > np.abs(after_first))  # momentum keeps moving it


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("learning_rate", -1.0),
        ("learning_rate", float("nan")),
        ("beta1", 1.0),
        ("beta2", -0.1),
        ("eps", -1e-8),
        ("weight_decay", -0.1),
        ("grad_clip_norm", float("inf")),
    ],
)
def test_invalid_hyperparameters_are_rejected(field: str, value: float) -> None:
    params = {"w": np.zeros(2)}
    grads = {"w": np.ones(2)}
    with pytest.raises(UserInputError, match=f"adam_params.{field} must be"):
        Adam(params).step(params, grads, AdamParams(**{field: value}))
    assert grads["w"].tolist() == [1.0, 1.0]
