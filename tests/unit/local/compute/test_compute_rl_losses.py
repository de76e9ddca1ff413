"""gspo and stable_reinforce: formulas against finite differences (float64), the recorded
behaviour looked up through provenance spans, and the stability store's expiry."""

from __future__ import annotations

import numpy as np
import pytest
from compute_helpers import TINY_RANDOM, directional_check, random_adapter

from tinker.local.compute.catalogue import VOCAB_SIZE
from tinker.local.compute.errors import UserInputError
from tinker.local.compute.losses import get_loss
from tinker.local.compute.stability import (
    ProvenanceSpan,
    SequenceRecord,
    StabilityStore,
    resolve_behaviour,
)
from tinker.local.compute.trainer import DatumArrays, LoraTrainer


def test_gspo_gradient_is_that_of_the_detached_sequence_ratio() -> None:
    """Each token's ratio has the sequence value exp(S) (S from detached logprobs over the
    mask) and the gradient of its own logprob: check against finite differences of the
    surrogate with S frozen, and the values against the formula."""
    rng = np.random.default_rng(0)
    n = 8
    lp = np.log(rng.uniform(0.05, 0.9, n))
    q = lp + rng.normal(0, 2e-4, n)
    adv = rng.normal(size=n)
    mask = np.array([0, 1, 1, 1, 0, 1, 1, 1], np.float32)
    inputs = {"logprobs": q, "advantages": adv, "sequence_ratio_mask": mask}
    spec = get_loss("gspo")
    config = spec.resolve_config({"clip_low_threshold": 0.9999, "clip_high_threshold": 1.0001})
    out = spec.formula(lp, inputs, config)
    s = np.mean((lp - q)[mask != 0])
    rho = np.exp(s)
    np.testing.assert_allclose(
        out.elementwise, -np.minimum(rho * adv, np.clip(rho, 0.9999, 1.0001) * adv)
    )

    def surrogate(x: np.ndarray) -> float:
        ratio = np.exp(s + x - lp)
        return float(np.sum(-np.minimum(ratio * adv, np.clip(ratio, 0.9999, 1.0001) * adv)))

    h = 1e-9
    numeric = [
        (surrogate(lp + h * np.eye(n)[i]) - surrogate(lp - h * np.eye(n)[i])) / (2 * h)
        for i in range(n)
    ]
    np.testing.assert_allclose(out.grad, numeric, rtol=1e-5, atol=1e-9)
    assert np.count_nonzero(out.grad) not in (0, n)  # some tokens clipped, some live
    assert dict(spec.config_defaults) == {
        "clip_low_threshold": pytest.approx(1 - 3e-4),
        "clip_high_threshold": pytest.approx(1 + 4e-4),
    }
    empty = spec.formula(lp, {**inputs, "sequence_ratio_mask": np.zeros(n)}, config)
    np.testing.assert_allclose(empty.elementwise, -adv)  # S = 0: every ratio is 1


def _record(prompt: list[int], tokens: list[int], behaviour: list[float]) -> SequenceRecord:
    return SequenceRecord(np.array(prompt), np.array(tokens), np.array(behaviour), 1.0, -1, 1.0)


def _rl_datum(store: StabilityStore, rng: np.random.Generator, spread: float = 0.2) -> DatumArrays:
    """prompt [p0..p3] + sampled [s0..s4]: model_input = full[:-1], targets = full[1:]."""
    prompt = rng.integers(0, VOCAB_SIZE, 4).tolist()
    sampled = rng.integers(0, VOCAB_SIZE, 5).tolist()
    behaviour = rng.normal(-5.55, spread, 5).tolist()
    store.put("seq-1", _record(prompt, sampled, behaviour))
    full = np.array(prompt + sampled)
    spans = (ProvenanceSpan("prompt", "seq-1", 1, 3), ProvenanceSpan("sampled", "seq-1", 0, 5))
    return DatumArrays(
        full[:-1],
        {"target_tokens": full[1:], "advantages": rng.normal(size=8)},
        (ProvenanceSpan("prompt", "seq-1", 0, 4), ProvenanceSpan("sampled", "seq-1", 0, 4)),
        spans,
    )


def test_stable_reinforce_uses_recorded_behaviour_and_masks_unsampled_positions() -> None:
    rng = np.random.default_rng(1)
    store = StabilityStore()
    datum = _rl_datum(store, rng, spread=1.0)
    trainer = LoraTrainer(TINY_RANDOM, rank=2, seed=0, dtype=np.float64)
    trainer.load(random_adapter(trainer, rng), None)
    # a client `logprobs` input is accepted but the recorded behaviour wins
    datum = DatumArrays(
        datum.tokens,
        {**datum.inputs, "logprobs": np.zeros(8, np.float32)},
        datum.model_input_spans,
        datum.loss_fn_input_spans,
    )
    out = trainer.forward([datum], "stable_reinforce", None, stability=store).outputs[0]
    lp = out["logprobs"].astype(np.float64)
    record = store.use("seq-1")
    ratio = np.exp(lp[3:] - record.behaviour_logprobs)
    live = (ratio >= 0.5) & (ratio <= 2.0)
    assert 0 < live.sum() < 5  # the band drops some tokens
    expected = np.where(live, -ratio * datum.inputs["advantages"][3:], 0.0)
    np.testing.assert_allclose(out["elementwise_loss"][3:], expected, rtol=1e-5)
    assert not out["elementwise_loss"][:3].any()  # prompt positions carry no loss


def test_stable_reinforce_parameter_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(5)
    store = StabilityStore()
    data = [_rl_datum(store, rng)]
    trainer = LoraTrainer(TINY_RANDOM, rank=2, seed=0, dtype=np.float64)
    config = {"clip_low_threshold": 0.0, "clip_high_threshold": 1e9}  # no token at the edge
    point = {k: v.astype(np.float64) for k, v in random_adapter(trainer, rng).items()}

    def loss_at(params: dict[str, np.ndarray]) -> float:
        trainer.load(params, None)
        return trainer.forward(data, "stable_reinforce", config, stability=store).metrics[
            "loss:sum"
        ]

    trainer.load(point, None)
    trainer.forward_backward(data, "stable_reinforce", config, stability=store)
    grads = trainer.accumulated_gradients()
    for name, (numeric, analytic) in directional_check(loss_at, point, grads, rng).items():
        assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-10), name


def test_stable_reinforce_rejects_data_without_matching_records() -> None:
    rng = np.random.default_rng(2)
    store = StabilityStore()
    datum = _rl_datum(store, rng)
    trainer = LoraTrainer(TINY_RANDOM, rank=1, seed=0)
    bare = DatumArrays(datum.tokens, datum.inputs)
    with pytest.raises(UserInputError, match="datum 0: stable_reinforce needs provenance"):
        trainer.forward([bare], "stable_reinforce", None, stability=store)
    with pytest.raises(UserInputError, match="'seq-1' has no stability record"):
        trainer.forward([datum], "stable_reinforce", None, stability=StabilityStore())
    wrong = dict(datum.inputs)
    wrong["target_tokens"] = datum.inputs["target_tokens"].copy()
    wrong["target_tokens"][5] = (wrong["target_tokens"][5] + 1) % VOCAB_SIZE
    with pytest.raises(UserInputError, match=r"target_tokens\[3:8\] differ from the sampled"):
        trainer.forward(
            [DatumArrays(datum.tokens, wrong, None, datum.loss_fn_input_spans)],
            "stable_reinforce",
            None,
            stability=store,
        )
    short = (ProvenanceSpan("sampled", "seq-1", 0, 5),)
    with pytest.raises(UserInputError, match="spans cover 5 positions, target_tokens has 8"):
        resolve_behaviour(0, datum.inputs["target_tokens"], short, store)
    with pytest.raises(UserInputError, match=r"span \[3, 8\) lies outside the 5 sampled"):
        resolve_behaviour(0, np.zeros(5, np.int64), (ProvenanceSpan("sampled", "seq-1", 3, 5),),
                          store)  # fmt: skip


def test_store_expires_a_day_after_last_use_and_bounds_its_size() -> None:
    now = [0.0]
    store = StabilityStore(max_records=2, clock=lambda: now[0])
    record = _record([1], [2], [-1.0])
    store.put("a", record)
    now[0] = 86_000.0
    assert store.use("a") is record  # a use restarts the day
    now[0] = 86_000.0 + 86_399.0
    assert store.use("a") is record
    now[0] += 86_400.0
    with pytest.raises(UserInputError, match="expire one day after their last use"):
        store.use("a")
    store.put("b", record)
    store.put("c", record)
    store.use("b")
    store.put("d", record)  # over the bound: the least recently used ("c") goes
    assert len(store) == 2
    with pytest.raises(UserInputError):
        store.use("c")
    store.use("b")
    store.use("d")
