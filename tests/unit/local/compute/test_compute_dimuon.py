"""Dimuon against a direct transcription of its rule, the optimizer chosen at creation, and
bit-exact save/load of its state (old Adam checkpoints still load into Adam runs)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from compute_helpers import TINY, ce_datum

from tinker.local.compute.dimuon import Dimuon, DimuonParams
from tinker.local.compute.errors import UserInputError
from tinker.local.compute.optimizer_choice import OptimizerChoice
from tinker.local.compute.optimizers import AdamParams
from tinker.local.compute.trainer import DatumArrays, LoraTrainer


def _reference_run(
    params: dict[str, np.ndarray], grad_seq: list[dict[str, np.ndarray]], hps: list[DimuonParams]
) -> dict[str, np.ndarray]:
    """Straight from the documented rule, with the polar factor from a full SVD (float64)."""
    theta = {k: v.astype(np.float64).copy() for k, v in params.items()}
    momentum = {k: np.zeros_like(v) for k, v in theta.items()}
    for grads, hp in zip(grad_seq, hps, strict=True):
        g = {k: x.astype(np.float64) for k, x in grads.items()}
        if hp.grad_clip_norm > 0:
            norm = math.sqrt(sum(float((x**2).sum()) for x in g.values()))
            g = {k: x * min(1.0, hp.grad_clip_norm / (norm + 1e-6)) for k, x in g.items()}
        for k in theta:
            momentum[k] = hp.beta1 * momentum[k] + (1 - hp.beta1) * g[k]
            u, s, vt = np.linalg.svd(momentum[k])
            rank = int((s > s[0] * max(s.shape[0], 1) * 1e-15).sum()) if s[0] > 0 else 0
            direction = u[:, :rank] @ vt[:rank]
            theta[k] = theta[k] - hp.learning_rate * direction
    return theta


def test_dimuon_matches_the_rule_step_by_step() -> None:
    rng = np.random.default_rng(0)
    params = {"a": rng.normal(size=(3, 7)), "b": rng.normal(size=(6, 3))}
    hps = [
        DimuonParams(learning_rate=1e-2),
        DimuonParams(learning_rate=5e-3, beta1=0.5),
        DimuonParams(learning_rate=2e-2, grad_clip_norm=0.5),  # clips
        DimuonParams(learning_rate=1e-2, beta1=0.0),  # pure orthogonalised gradient
    ]
    grad_seq = [{k: rng.normal(size=v.shape) for k, v in params.items()} for _ in hps]
    grad_seq[0]["a"][:] = 0.0  # a zero gradient moves nothing (LoRA's A at the first step)
    expected = _reference_run(params, grad_seq, hps)
    live = {k: v.copy() for k, v in params.items()}
    dimuon = Dimuon(live)
    first_a = live["a"].copy()
    for t, (grads, hp) in enumerate(zip(grad_seq, hps, strict=True), start=1):
        buffers = {k: g.copy() for k, g in grads.items()}
        metrics = dimuon.step(live, buffers, hp)
        if t == 1:
            np.testing.assert_array_equal(live["a"], first_a)
        assert dimuon.step_count == t and all(not b.any() for b in buffers.values())
        assert (metrics is None) == (hp.grad_clip_norm <= 0)
    for k in params:
        np.testing.assert_allclose(live[k], expected[k], rtol=1e-12, atol=1e-12)


def test_the_step_direction_has_frobenius_norm_sqrt_rank() -> None:
    rng = np.random.default_rng(1)
    live = {"b": np.zeros((8, 4))}
    Dimuon(live).step(live, {"b": rng.normal(size=(8, 4))}, DimuonParams(learning_rate=1.0))
    assert np.linalg.norm(live["b"]) == pytest.approx(2.0)  # sqrt(4)
    np.testing.assert_allclose(live["b"].T @ live["b"], np.eye(4), atol=1e-12)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (DimuonParams(learning_rate=-1.0), "learning_rate must be >= 0"),
        (DimuonParams(learning_rate=1.0, beta1=1.0), r"beta1 must be in \[0, 1\)"),
        (DimuonParams(learning_rate=float("nan")), "learning_rate must be finite"),
        (DimuonParams(learning_rate=1.0, grad_clip_norm=float("inf")), "must be finite"),
    ],
)
def test_dimuon_params_are_validated(params: DimuonParams, message: str) -> None:
    with pytest.raises(UserInputError, match=message):
        params.validate()


def _data() -> list[DatumArrays]:
    rng = np.random.default_rng(3)
    return [ce_datum(rng, 9), ce_datum(rng, 4)]


def _train(trainer: LoraTrainer, steps: range) -> None:
    for step in steps:
        trainer.forward_backward(_data(), "cross_entropy", None)
        trainer.optim_step(DimuonParams(learning_rate=1e-2 / (1 + step), grad_clip_norm=1.0))


def test_dimuon_run_resumes_bit_exactly_from_its_saved_state() -> None:
    straight = LoraTrainer(TINY, rank=4, seed=1, optimizer={"type": "dimuon", "version": 1})
    _train(straight, range(4))
    first = LoraTrainer(TINY, rank=4, seed=1, optimizer="dimuon")
    _train(first, range(2))
    adapter, state = first.adapter_tensors(), first.optimizer_tensors()
    assert state["step"].tolist() == [2] and state["dimuon.version"].tolist() == [1]
    assert not any(k.endswith("exp_avg") for k in state)
    resumed = LoraTrainer(TINY, rank=4, seed=7, optimizer="dimuon")
    resumed.load(adapter, state)
    _train(resumed, range(2, 4))
    for k, v in straight.adapter_tensors().items():
        assert np.array_equal(v, resumed.adapter_tensors()[k]), k
    for k, v in straight.optimizer_tensors().items():
        assert np.array_equal(v, resumed.optimizer_tensors()[k]), k
    assert straight.optimizer_config() == {"type": "dimuon", "version": 1}


def test_params_and_state_of_the_other_optimizer_are_rejected() -> None:
    adam_run = LoraTrainer(TINY, rank=2, seed=0)
    dimuon_run = LoraTrainer(TINY, rank=2, seed=0, optimizer="dimuon")
    assert adam_run.optimizer_config() == {"type": "adamw"}
    with pytest.raises(UserInputError, match=r"uses the AdamW optimizer .* got Dimuon"):
        adam_run.optim_step(DimuonParams(learning_rate=1e-3))
    with pytest.raises(UserInputError, match=r"uses the Dimuon optimizer .* got AdamW"):
        dimuon_run.optim_step(learning_rate=1e-3)
    with pytest.raises(UserInputError, match="optimizer state is AdamW state, but this"):
        dimuon_run.load(adam_run.adapter_tensors(), adam_run.optimizer_tensors())
    with pytest.raises(UserInputError, match="optimizer state is Dimuon state, but this"):
        adam_run.load(dimuon_run.adapter_tensors(), dimuon_run.optimizer_tensors())
    with pytest.raises(UserInputError, match="optimizer type 'sgd' is not supported"):
        OptimizerChoice.parse({"type": "sgd"})
    with pytest.raises(UserInputError, match="dimuon optimizer version 2 is not supported"):
        OptimizerChoice.parse({"type": "dimuon", "version": 2})
    adam_run.optim_step(AdamParams(learning_rate=1e-3))  # the params object form works too
