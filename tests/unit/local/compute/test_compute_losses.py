"""Loss formulas, outputs and metrics, and rejection of malformed requests."""

from __future__ import annotations

import numpy as np
import pytest
from compute_helpers import TINY, TINY_RANDOM, ce_datum

from tinker.local.compute.catalogue import VOCAB_SIZE
from tinker.local.compute.errors import UserInputError
from tinker.local.compute.losses import LOSSES, get_loss
from tinker.local.compute.trainer import DatumArrays, LoraTrainer


@pytest.fixture(scope="module")
def trainer() -> LoraTrainer:
    return LoraTrainer(TINY, rank=2, seed=0)


def _rl_inputs(n: int, q: list[float], adv: list[float]) -> dict[str, np.ndarray]:
    return {
        "target_tokens": np.arange(n, dtype=np.int64),
        "logprobs": np.asarray(q, dtype=np.float32),
        "advantages": np.asarray(adv, dtype=np.float32),
    }


def test_cross_entropy_outputs_and_metrics(trainer: LoraTrainer) -> None:
    rng = np.random.default_rng(0)
    data = [ce_datum(rng, 5), ce_datum(rng, 3)]
    result = trainer.forward(data, "cross_entropy", None)
    assert result.loss_fn_output_type == "CrossEntropyLossReturn"
    assert all(key.count(":") == 1 for key in result.metrics)
    assert set(result.metrics) == {"loss:sum", "clock_cycle:unique"}
    total = 0.0
    for datum, out in zip(data, result.outputs, strict=True):
        assert set(out) == {"logprobs", "elementwise_loss"}
        assert out["logprobs"].dtype == np.float32 and out["logprobs"].shape == datum.tokens.shape
        assert np.all(out["logprobs"] < 0)
        expected = -datum.inputs["weights"] * out["logprobs"]
        np.testing.assert_allclose(out["elementwise_loss"], expected, rtol=1e-6)
        total += float(out["elementwise_loss"].sum())
    assert result.metrics["loss:sum"] == pytest.approx(total, rel=1e-5)


def test_untrained_logprobs_are_near_uniform() -> None:
    trainer = LoraTrainer(TINY_RANDOM, rank=2, seed=0)
    data = [ce_datum(np.random.default_rng(1), 16)]
    lp = trainer.forward(data, "cross_entropy", None).outputs[0]["logprobs"]
    np.testing.assert_allclose(lp, -np.log(VOCAB_SIZE), atol=0.5)


def test_rl_loss_values_follow_the_formulas() -> None:
    lp = np.log(np.array([0.5, 0.5, 0.5, 0.5]))
    q = lp - np.log([0.5, 1.0, 1.5, 2.0])  # ratios 0.5, 1, 1.5, 2
    adv = np.array([1.0, -1.0, 1.0, -1.0])
    inputs = _rl_inputs(4, list(q), list(adv))
    ratio = np.array([0.5, 1.0, 1.5, 2.0])

    def run(name: str, config: dict[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
        spec = get_loss(name)
        out = spec.formula(lp, inputs, spec.resolve_config(config))
        return out.elementwise, out.grad

    value, grad = run("importance_sampling")
    np.testing.assert_allclose(value, -ratio * adv, rtol=1e-6)
    np.testing.assert_allclose(grad, -adv * ratio, rtol=1e-6)

    value, grad = run("ppo")  # band [0.8, 1.2]
    np.testing.assert_allclose(value, [-0.5, 1.0, -1.2, 2.0], rtol=1e-6)
    # A>0 & r<=hi: live; A<0 & r>=lo: live; A>0 & r>hi: clipped; A<0 & r>=lo: live
    np.testing.assert_allclose(grad, [-0.5, 1.0, 0.0, 2.0], rtol=1e-6)
    _, grad = run("ppo", {"clip_low_threshold": 0.9, "clip_high_threshold": 1.1})
    np.testing.assert_allclose(grad, [-0.5, 1.0, 0.0, 2.0], rtol=1e-6)

    value, grad = run("cispo")  # default (0, 4): nothing clipped here
    np.testing.assert_allclose(grad, -ratio * adv, rtol=1e-6)
    np.testing.assert_allclose(value, -ratio * lp * adv, rtol=1e-6)
    _, grad = run("cispo", {"clip_low_threshold": 0.8, "clip_high_threshold": 1.2})
    np.testing.assert_allclose(grad, -np.clip(ratio, 0.8, 1.2) * adv, rtol=1e-6)

    value, grad = run("dro", {"beta": 0.5})
    gap = lp - q.astype(np.float32)
    np.testing.assert_allclose(value, -(lp * adv - 0.25 * gap**2), rtol=1e-5)
    np.testing.assert_allclose(grad, -adv + 0.5 * gap, rtol=1e-5)
    _, default_grad = run("dro")
    np.testing.assert_allclose(default_grad, -adv + 0.05 * gap, rtol=1e-5)


def test_rl_losses_report_type_and_logprobs(trainer: LoraTrainer) -> None:
    datum = DatumArrays(np.array([1, 2, 3]), _rl_inputs(3, [-5.0, -5.0, 0.0], [1.0, 0.5, 0.0]))
    for name, kind in [
        ("importance_sampling", "ImportanceSamplingLossReturn"),
        ("ppo", "PPOLossReturn"),
        ("cispo", "CISPOLossReturn"),
        ("dro", "DROLossReturn"),
    ]:
        result = trainer.forward([datum], name, None)
        assert result.loss_fn_output_type == kind
        assert set(result.outputs[0]) == {"logprobs", "elementwise_loss"}
        assert result.metrics["loss:sum"] == pytest.approx(
            float(result.outputs[0]["elementwise_loss"].sum()), rel=1e-5
        )


def test_rl_losses_accept_unused_weights(trainer: LoraTrainer) -> None:
    inputs = _rl_inputs(2, [-5.0, -5.0], [1.0, 1.0])
    plain = trainer.forward([DatumArrays(np.array([1, 2]), inputs)], "ppo", None)
    with_weights = {**inputs, "weights": np.zeros(2, np.float32)}
    weighted = trainer.forward([DatumArrays(np.array([1, 2]), with_weights)], "ppo", None)
    assert weighted.metrics["loss:sum"] == plain.metrics["loss:sum"]


def _ce(tokens: list[int], **inputs: object) -> DatumArrays:
    n = len(tokens)
    base: dict[str, object] = {
        "target_tokens": np.zeros(n, np.int64),
        "weights": np.ones(n, np.float32),
    }
    base.update(inputs)
    return DatumArrays(np.asarray(tokens, dtype=np.int64), base)


@pytest.mark.parametrize(
    ("data", "loss_fn", "config", "message"),
    [
        ([_ce([1, 2])], "mse", None, "unsupported loss_fn 'mse'; supported: cross_entropy"),
        ([_ce([1, 2])], "cross_entropy", {"beta": 1.0}, "key 'beta' is not accepted"),
        ([_ce([1, 2])], "ppo", {"clip_hi": 1.0}, "accepted keys: clip_high_threshold"),
        ([_ce([1, 2])], "ppo", None, "datum 0: loss_fn_inputs is missing 'logprobs'"),
        (
            [_ce([1]), _ce([1, 2], mask=np.ones(2))],
            "cross_entropy",
            None,
            "datum 1: loss_fn_inputs key(s) ['mask']",
        ),
        (
            [_ce([1, 2], weights=np.ones(3, np.float32))],
            "cross_entropy",
            None,
            "datum 0: loss_fn_inputs['weights'] has shape [3], expected [2]",
        ),
        (
            [_ce([1, 2], target_tokens=np.array([0, VOCAB_SIZE]))],
            "cross_entropy",
            None,
            f"target_tokens[1] = {VOCAB_SIZE} is outside",
        ),
        ([_ce([1, -3])], "cross_entropy", None, "datum 0: model_input token -3 at position 1"),
        ([_ce([])], "cross_entropy", None, "datum 0: model_input has 0 tokens"),
        (
            [_ce([0] * 257)],
            "cross_entropy",
            None,
            "model_input has 257 tokens; tinker-local/tiny accepts 1..256",
        ),
        ([], "cross_entropy", None, "at least one datum"),
        ([_ce([1, 2], weights=np.array([1.0, np.nan], np.float32))], "cross_entropy", None, "NaN"),
        ([_ce([1, 2])], "ppo", {"clip_low_threshold": 1.5}, "must not exceed"),
        ([_ce([1, 2])], "dro", {"beta": "x"}, "must be a number"),
    ],
)
def test_bad_requests_raise_user_input_error(
    trainer: LoraTrainer,
    data: list[DatumArrays],
    loss_fn: str,
    config: dict[str, float] | None,
    message: str,
) -> None:
    with pytest.raises(UserInputError) as info:
        trainer.forward_backward(data, loss_fn, config)
    assert message in str(info.value)
    assert not any(g.any() for g in trainer.accumulated_gradients().values())


def test_missing_required_input_is_named() -> None:
    trainer = LoraTrainer(TINY, rank=1, seed=0)
    datum = DatumArrays(np.array([1, 2]), {"target_tokens": np.array([1, 2])})
    with pytest.raises(UserInputError, match="datum 0: loss_fn_inputs is missing 'weights'"):
        trainer.forward([datum], "cross_entropy", None)


def test_loss_table_is_complete() -> None:
    assert list(LOSSES) == ["cross_entropy", "importance_sampling", "ppo", "cispo", "dro"]
    assert dict(get_loss("ppo").config_defaults) == {
        "clip_low_threshold": 0.8,
        "clip_high_threshold": 1.2,
    }
    assert dict(get_loss("cispo").config_defaults) == {
        "clip_low_threshold": 0.0,
        "clip_high_threshold": 4.0,
    }
    assert dict(get_loss("dro").config_defaults) == {"beta": 0.05}
