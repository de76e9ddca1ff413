"""Exact LoRA gradients: every loss and every adapter against central finite differences (on
the random-weight twin, whose well-conditioned start keeps the differences accurate)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from compute_helpers import TINY, TINY_RANDOM, ce_datum, directional_check, random_adapter

from tinker.local.compute.trainer import DatumArrays, LoraTrainer

LOSS_CONFIGS: list[tuple[str, dict[str, float] | None]] = [
    ("cross_entropy", None),
    ("importance_sampling", None),
    ("ppo", None),
    ("ppo", {"clip_low_threshold": 0.9, "clip_high_threshold": 1.1}),
    ("dro", {"beta": 0.3}),
]


def _rl_data(trainer: LoraTrainer, rng: np.random.Generator) -> list[DatumArrays]:
    """RL datums whose ratios r = exp(lp - q) sit clearly inside and outside the clip bands."""
    data = []
    for n in (6, 3, 1):
        base = ce_datum(rng, n)
        data.append(base)
    lps = trainer.forward(data, "cross_entropy", None).outputs
    ratios = np.array([0.5, 0.85, 1.0, 1.15, 1.5, 3.0, 5.0])
    rl = []
    for d, out in zip(data, lps, strict=True):
        n = len(d.tokens)
        r = rng.choice(ratios, n)
        q = out["logprobs"].astype(np.float64) - np.log(r)
        adv = rng.choice(np.array([-1.5, -0.5, 0.7, 2.0]), n)
        rl.append(
            DatumArrays(
                d.tokens,
                {
                    "target_tokens": d.inputs["target_tokens"],
                    "logprobs": q.astype(np.float32),
                    "advantages": adv.astype(np.float32),
                },
            )
        )
    return rl


@pytest.mark.parametrize(("loss_fn", "config"), LOSS_CONFIGS)
def test_every_adapter_gradient_matches_finite_differences(
    loss_fn: str, config: dict[str, float] | None
) -> None:
    rng = np.random.default_rng(7)
    trainer = LoraTrainer(TINY_RANDOM, rank=2, seed=3, dtype=np.float64)
    point = random_adapter(trainer, rng)
    trainer.load(point, None)
    if loss_fn == "cross_entropy":
        data = [ce_datum(rng, n) for n in (6, 3, 1)]
    else:
        data = _rl_data(trainer, rng)
    trainer.forward_backward(data, loss_fn, config)
    grads = trainer.accumulated_gradients()

    def loss_at(params: dict[str, npt.NDArray[Any]]) -> float:
        trainer.load(params, None)
        return trainer.forward(data, loss_fn, config).metrics["loss:sum"]

    results = directional_check(loss_at, point, grads, rng)
    assert len(results) == 2 * (2 * 7 + 1)  # A and B of q,k,v,o,gate,up,down per layer + head
    for name, (numeric, analytic) in results.items():
        assert analytic != 0.0, name
        assert numeric == pytest.approx(analytic, rel=1e-6, abs=1e-7), name


@pytest.mark.parametrize("config", [None, {"clip_low_threshold": 0.8, "clip_high_threshold": 1.2}])
def test_cispo_gradient_is_the_detached_ratio_surrogate(config: dict[str, float] | None) -> None:
    """CISPO's gradient is -clip(r)*A per token: the CE gradient with weights clip(r)*A."""
    rng = np.random.default_rng(9)
    trainer = LoraTrainer(TINY_RANDOM, rank=2, seed=3, dtype=np.float64)
    point = random_adapter(trainer, rng)
    trainer.load(point, None)
    data = _rl_data(trainer, rng)
    trainer.forward_backward(data, "cispo", config)
    cispo = trainer.accumulated_gradients()

    low, high = (
        (config or {}).get("clip_low_threshold", 0.0),
        (config or {}).get("clip_high_threshold", 4.0),
    )
    outputs = trainer.forward(data, "cispo", config).outputs
    surrogate = []
    for d, out in zip(data, outputs, strict=True):
        lp = out["logprobs"]
        ratio = np.exp(lp.astype(np.float64) - d.inputs["logprobs"])
        coefficient = np.clip(ratio, low, high) * d.inputs["advantages"]
        surrogate.append(
            DatumArrays(
                d.tokens, {"target_tokens": d.inputs["target_tokens"], "weights": coefficient}
            )
        )
    trainer.load(point, None)
    trainer.forward_backward(surrogate, "cross_entropy", None)
    for name, grad in trainer.accumulated_gradients().items():
        np.testing.assert_allclose(cispo[name], grad, rtol=1e-5, atol=1e-6)


def test_gradient_with_subset_of_adapters_matches_finite_differences() -> None:
    rng = np.random.default_rng(11)
    trainer = LoraTrainer(
        TINY_RANDOM, rank=3, seed=0, train_mlp=False, train_unembed=False, dtype=np.float64
    )
    point = random_adapter(trainer, rng)
    trainer.load(point, None)
    data = [ce_datum(rng, 5), ce_datum(rng, 2)]
    trainer.forward_backward(data, "cross_entropy", None)
    grads = trainer.accumulated_gradients()

    def loss_at(params: dict[str, npt.NDArray[Any]]) -> float:
        trainer.load(params, None)
        return trainer.forward(data, "cross_entropy", None).metrics["loss:sum"]

    results = directional_check(loss_at, point, grads, rng)
    assert all(".self_attn." in name for name in results)
    for name, (numeric, analytic) in results.items():
        assert numeric == pytest.approx(analytic, rel=1e-6, abs=1e-7), name


def test_gradients_accumulate_across_calls_and_forward_leaves_them() -> None:
    rng = np.random.default_rng(5)
    data = [ce_datum(rng, n) for n in (5, 9, 2)]
    whole = LoraTrainer(TINY, rank=4, seed=1, dtype=np.float64)
    point = random_adapter(whole, rng)
    whole.load(point, None)
    whole.forward_backward(data, "cross_entropy", None)

    chunked = LoraTrainer(TINY, rank=4, seed=1, dtype=np.float64)
    chunked.load(point, None)
    chunked.forward_backward(data[:1], "cross_entropy", None)
    chunked.forward(data, "cross_entropy", None)
    chunked.forward_backward(data[1:], "cross_entropy", None)

    expected = whole.accumulated_gradients()
    for name, grad in chunked.accumulated_gradients().items():
        np.testing.assert_allclose(grad, expected[name], rtol=1e-10, atol=1e-14)


def test_forward_does_not_create_gradients() -> None:
    rng = np.random.default_rng(2)
    trainer = LoraTrainer(TINY, rank=2, seed=0)
    trainer.forward([ce_datum(rng, 4)], "cross_entropy", None)
    assert all(not g.any() for g in trainer.accumulated_gradients().values())


def test_padding_does_not_change_a_datums_outputs() -> None:
    rng = np.random.default_rng(4)
    trainer = LoraTrainer(TINY, rank=2, seed=0, dtype=np.float64)
    trainer.load(random_adapter(trainer, rng), None)
    short, long = ce_datum(rng, 3), ce_datum(rng, 20)
    alone = trainer.forward([short], "cross_entropy", None).outputs[0]
    batched = trainer.forward([long, short], "cross_entropy", None).outputs[1]
    np.testing.assert_allclose(batched["logprobs"], alone["logprobs"], rtol=1e-6)


def test_grouped_batches_equal_one_datum_at_a_time() -> None:
    """Long and short datums (several padded groups) give the per-datum results."""
    rng = np.random.default_rng(8)
    data = [ce_datum(rng, n) for n in (200, 30, 31, 150, 5, 200, 199, 200, 180, 2)]
    together = LoraTrainer(TINY, rank=2, seed=0, dtype=np.float64)
    point = random_adapter(together, rng)
    together.load(point, None)
    result = together.forward_backward(data, "cross_entropy", None)
    alone = LoraTrainer(TINY, rank=2, seed=0, dtype=np.float64)
    alone.load(point, None)
    total = 0.0
    for datum, out in zip(data, result.outputs, strict=True):
        single = alone.forward_backward([datum], "cross_entropy", None)
        np.testing.assert_allclose(out["logprobs"], single.outputs[0]["logprobs"], rtol=1e-6)
        total += single.metrics["loss:sum"]
    assert result.metrics["loss:sum"] == pytest.approx(total, rel=1e-10)
    expected = alone.accumulated_gradients()
    for name, grad in together.accumulated_gradients().items():
        np.testing.assert_allclose(grad, expected[name], rtol=1e-9, atol=1e-12)
