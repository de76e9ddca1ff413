"""The 0.38 sampling outputs against the trainer's logprobs (float64), prefix-cache hits
against cold runs (bit-identical), last-N scoring against full scoring, recorded stability
information, and in-flight samplers that follow published weights."""

from __future__ import annotations

import re

import numpy as np
import pytest
from compute_helpers import TINY, random_adapter
from graph_builder import GraphBuilder, ref

from tinker.local.compute.catalogue import VOCAB_SIZE
from tinker.local.compute.custom_loss import CustomLoss
from tinker.local.compute.errors import UserInputError
from tinker.local.compute.generation import LoraSampler, SampleResult
from tinker.local.compute.inflight import InflightSampler, InflightTarget
from tinker.local.compute.prefix_cache import PrefixCache
from tinker.local.compute.prompt_scoring import SENTINEL_LOGPROB, SENTINEL_TOKEN, TargetTable
from tinker.local.compute.stability import ProvenanceSpan, StabilityStore
from tinker.local.compute.trainer import DatumArrays, LoraTrainer
from tinker.local.compute.transformer import log_softmax

PROMPT = [256, *b"Once upon a time, a fox"]
SUM_LOSS = GraphBuilder(logprobs=2)
_SUM = SUM_LOSS.graph(SUM_LOSS.method("sum_1", "sum", ref("logprobs")))
LOGPROBS_ONLY = CustomLoss.compile(_SUM["name"], _SUM["inputs"], _SUM["graph"])


@pytest.fixture(scope="module")
def trainer() -> LoraTrainer:
    """A float64 trainer whose adapter is exactly representable in float32 (as snapshots)."""
    model = LoraTrainer(TINY, rank=4, seed=0, dtype=np.float64)
    adapter = random_adapter(model, np.random.default_rng(0), std=0.1)
    model.load({k: v.astype(np.float32) for k, v in adapter.items()}, None)
    return model


@pytest.fixture
def sampler(trainer: LoraTrainer) -> LoraSampler:
    return LoraSampler(trainer.snapshot(), dtype=np.float64)


def _trainer_logprobs(trainer: LoraTrainer, sequence: list[int], ids: np.ndarray) -> np.ndarray:
    """The trainer's logprobs of ids[i, j] at the position predicting sequence[i + 1]."""
    datum = DatumArrays(np.asarray(sequence[: len(ids)]), {"target_tokens": ids})
    out = trainer.forward([datum], "custom", None, custom_loss=LOGPROBS_ONLY)
    return out.outputs[0]["logprobs"].astype(np.float64)


def _exact_logprobs(trainer: LoraTrainer, sequence: list[int], ids: np.ndarray) -> np.ndarray:
    """As _trainer_logprobs but in float64 end to end (the outputs above are float32)."""
    tokens = np.asarray(sequence[: len(ids)])[None, :]
    logp = log_softmax(trainer._transformer().forward(tokens)[0])
    return np.take_along_axis(logp, ids, axis=-1)


def test_topk_sample_logprobs_are_the_trainers_top_k(
    trainer: LoraTrainer, sampler: LoraSampler
) -> None:
    result = sampler.sample(PROMPT, max_tokens=6, stop=[], seed=3, topk_sample_logprobs=5)
    seq = result.sequences[0]
    table = seq.topk_logprobs
    assert table is not None and table.token_ids.shape == (6, 5)
    full = PROMPT + seq.tokens
    positions = range(len(PROMPT) - 1, len(full) - 1)
    ids = np.zeros((len(full) - 1, 5), np.int64)
    ids[list(positions)] = table.token_ids
    expected = _exact_logprobs(trainer, full, ids)[list(positions)]
    np.testing.assert_allclose(table.logprobs, expected, atol=1e-10)
    np.testing.assert_allclose(table.logprobs, _trainer_logprobs(trainer, full, ids)[
        list(positions)], atol=1e-5)  # fmt: skip
    assert np.all(np.diff(table.logprobs, axis=1) <= 0)  # best first
    for step, token in enumerate(seq.tokens):  # at T = 1 the sampled logprob is in the table
        hits = table.token_ids[step] == token
        if hits.any():
            assert table.logprobs[step][hits][0] == pytest.approx(seq.logprobs[step], abs=1e-12)
    wide = sampler.sample(PROMPT, max_tokens=1, topk_sample_logprobs=VOCAB_SIZE + 3)
    padded = wide.sequences[0].topk_logprobs
    assert padded is not None
    assert padded.token_ids[0, -3:].tolist() == [SENTINEL_TOKEN] * 3
    assert padded.logprobs[0, -3:].tolist() == [SENTINEL_LOGPROB] * 3
    assert sorted(padded.token_ids[0, :VOCAB_SIZE].tolist()) == list(range(VOCAB_SIZE))


def test_target_prompt_logprobs_dense_and_sparse(
    trainer: LoraTrainer, sampler: LoraSampler
) -> None:
    rng = np.random.default_rng(1)
    rows = len(PROMPT) - 1
    ids = rng.integers(0, VOCAB_SIZE, (rows, 3))
    ids[:4] = -1  # rows before the first named id
    ids[7, 1] = -1
    dense = sampler.sample(PROMPT, max_tokens=1, target_prompt_logprobs=TargetTable((rows, 3), ids))
    scored = dense.target_prompt_logprobs
    assert scored is not None and not scored.is_sparse and scored.values.shape == (rows, 3)
    expected = _exact_logprobs(trainer, PROMPT, np.maximum(ids, 0))
    np.testing.assert_allclose(scored.values, np.where(ids >= 0, expected, 0.0), atol=1e-10)
    assert np.all(scored.values[:4] == 0.0) and scored.values[7, 1] == 0.0

    mask = ids >= 0
    crow = np.concatenate([[0], np.cumsum(mask.sum(axis=1))]).astype(np.int64)
    col = np.nonzero(mask)[1].astype(np.int64)
    sparse_ids = TargetTable((rows, 3), ids[mask], crow, col)
    sparse = sampler.sample(PROMPT, max_tokens=1, target_prompt_logprobs=sparse_ids)
    result = sparse.target_prompt_logprobs
    assert result is not None and result.is_sparse
    assert result.crow is crow and result.col is col
    np.testing.assert_array_equal(result.values, scored.values[mask])


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            TargetTable((3, 2), np.zeros((3, 2), np.int64)),
            "must have len(prompt) - 1 = 23 rows, got 3",
        ),
        (TargetTable((23, 1), np.full((23, 1), -1)), "must name at least one token id"),
        (TargetTable((23, 1), np.full((23, 1), VOCAB_SIZE)), f"contains {VOCAB_SIZE}"),
        (
            TargetTable((23, 2), np.array([5]), np.zeros(24, np.int64), np.array([0])),
            "crow_indices must have 24 non-decreasing entries from 0 to 1",
        ),
    ],
)
def test_target_prompt_logprobs_rules(
    sampler: LoraSampler, table: TargetTable, message: str
) -> None:
    with pytest.raises(UserInputError, match=re.escape(message)):
        sampler.sample(PROMPT, max_tokens=1, target_prompt_logprobs=table)


def test_prompt_alt_tokens_are_seeded_draws_at_the_request_temperature(
    trainer: LoraTrainer, sampler: LoraSampler
) -> None:
    first = sampler.sample(PROMPT, max_tokens=4, seed=9, prompt_alt_tokens_k=3)
    alt = first.prompt_alt_tokens
    assert alt is not None and alt.tokens.shape == alt.logprobs.shape == (len(PROMPT) - 1, 3)
    np.testing.assert_allclose(alt.logprobs, _exact_logprobs(trainer, PROMPT, alt.tokens),
                               atol=1e-10)  # fmt: skip
    again = sampler.sample(PROMPT, max_tokens=4, seed=9, prompt_alt_tokens_k=3)
    assert again.prompt_alt_tokens is not None
    np.testing.assert_array_equal(again.prompt_alt_tokens.tokens, alt.tokens)
    plain = sampler.sample(PROMPT, max_tokens=4, seed=9)
    assert plain.sequences[0].tokens == first.sequences[0].tokens  # its own random stream
    other = sampler.sample(PROMPT, max_tokens=1, seed=10, prompt_alt_tokens_k=3)
    assert other.prompt_alt_tokens is not None
    assert not np.array_equal(other.prompt_alt_tokens.tokens, alt.tokens)

    greedy = sampler.sample(PROMPT, max_tokens=1, temperature=0.0, prompt_alt_tokens_k=2)
    assert greedy.prompt_alt_tokens is not None
    every = np.tile(np.arange(VOCAB_SIZE), (len(PROMPT) - 1, 1))
    best = np.argmax(_exact_logprobs(trainer, PROMPT, every), axis=1)
    np.testing.assert_array_equal(greedy.prompt_alt_tokens.tokens, np.stack([best, best], 1))

    many = sampler.sample(PROMPT[:2], max_tokens=1, temperature=0.5, seed=1,
                          prompt_alt_tokens_k=1000)  # fmt: skip
    draws = many.prompt_alt_tokens
    assert draws is not None
    tempered = log_softmax(
        trainer._transformer().forward(np.array([PROMPT[:1]]))[0, 0].astype(np.float64) / 0.5
    )
    top = int(np.argmax(tempered))
    p = float(np.exp(tempered[top]))
    share = float(np.mean(draws.tokens[0] == top))
    assert abs(share - p) < 4 * np.sqrt(p * (1 - p) / 1000)
    np.testing.assert_allclose(draws.logprobs[0], tempered[draws.tokens[0]], atol=1e-10)


def test_last_n_scoring_is_the_tail_of_full_scoring(sampler: LoraSampler) -> None:
    full = sampler.sample(PROMPT, max_tokens=1, prompt_logprobs=True, topk_prompt_logprobs=4)
    tail = sampler.sample(
        PROMPT, max_tokens=1, prompt_logprobs=True, topk_prompt_logprobs=4,
        prompt_logprobs_last_n=5,
    )  # fmt: skip
    assert full.prompt_logprobs is not None and tail.prompt_logprobs is not None
    assert tail.prompt_logprobs[:-5] == [None] * (len(PROMPT) - 5)
    assert tail.prompt_logprobs[-5:] == full.prompt_logprobs[-5:]
    assert tail.topk_prompt_logprobs is not None and full.topk_prompt_logprobs is not None
    assert tail.topk_prompt_logprobs[-5:] == full.topk_prompt_logprobs[-5:]
    assert tail.topk_prompt_logprobs[:-5] == [None] * (len(PROMPT) - 5)
    with pytest.raises(UserInputError, match="requires prompt_logprobs"):
        sampler.sample(PROMPT, max_tokens=1, prompt_logprobs_last_n=2)
    with pytest.raises(UserInputError, match=r"must be in 1\.\.23 \(prompt length - 1\), got 24"):
        sampler.sample(PROMPT, max_tokens=1, prompt_logprobs=True, prompt_logprobs_last_n=24)


def _everything(result: SampleResult) -> tuple[object, ...]:
    return (
        [(s.tokens, s.logprobs, s.stop_reason) for s in result.sequences],
        [None if s.topk_logprobs is None else s.topk_logprobs.logprobs.tolist()
         for s in result.sequences],
        result.prompt_logprobs,
        result.topk_prompt_logprobs,
    )  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_prefix_cache_hits_are_bit_identical_to_cold_runs(
    trainer: LoraTrainer, dtype: type
) -> None:
    options = {"num_samples": 3, "max_tokens": 8, "seed": 4, "prompt_logprobs": True,
               "topk_prompt_logprobs": 3, "topk_sample_logprobs": 2, "stop": []}  # fmt: skip
    long_prompt = PROMPT + list(b" jumped over the dog and ran, and then it ran on")
    warm = LoraSampler(trainer.snapshot(), dtype=dtype)
    first = warm.sample(long_prompt, **options)
    assert first.prompt_cache_hit_tokens == 0
    repeat = warm.sample(long_prompt, **options)
    assert repeat.prompt_cache_hit_tokens == 64  # 2 blocks of 32, once for all 3 samples
    extended = long_prompt + list(b" and on and on")
    grown = warm.sample(extended, **{**options, "max_tokens": 3})
    assert grown.prompt_cache_hit_tokens == 64
    for prompt, result, opts in (
        (long_prompt, repeat, options),
        (extended, grown, {**options, "max_tokens": 3}),
    ):
        cold = LoraSampler(trainer.snapshot(), dtype=dtype).sample(prompt, **opts)
        assert cold.prompt_cache_hit_tokens == 0
        assert _everything(result) == _everything(cold)
    other_weights = LoraSampler(trainer.snapshot(), dtype=dtype, prefix_cache=warm.prefix_cache)
    assert other_weights.sample(long_prompt, max_tokens=1).prompt_cache_hit_tokens == 0


def test_prefix_cache_memory_is_bounded() -> None:
    cache = PrefixCache(max_bytes=120_000)
    sampler = LoraSampler(LoraTrainer(TINY, rank=1, seed=0).snapshot(), prefix_cache=cache)
    prompts = [[256, i, *b"a shared beginning of text, then some more"] for i in range(6)]
    for prompt in prompts:
        sampler.sample(prompt, max_tokens=1)
        assert 0 < cache.nbytes <= 120_000
    assert sampler.sample(prompts[-1], max_tokens=1).prompt_cache_hit_tokens == 32
    assert sampler.sample(prompts[0], max_tokens=1).prompt_cache_hit_tokens == 0  # evicted


def test_recorded_stability_info_is_the_behaviour_distribution(
    trainer: LoraTrainer, sampler: LoraSampler
) -> None:
    result = sampler.sample(PROMPT, num_samples=2, max_tokens=5, temperature=0.7, top_k=5,
                            seed=2, stop=[], record_stability_info=True)  # fmt: skip
    for seq in result.sequences:
        record = seq.stability
        assert record is not None and record.tokens.tolist() == seq.tokens
        assert record.prompt.tolist() == PROMPT and record.top_k == 5
        full = PROMPT + seq.tokens
        logits = trainer._transformer().forward(np.array([full[:-1]]))[0].astype(np.float64)
        for step, token in enumerate(seq.tokens):
            z = logits[len(PROMPT) - 1 + step] / 0.7
            p = np.exp(z - z.max())
            p /= p.sum()
            kept = np.sort(p)[::-1][:5].sum()
            assert record.behaviour_logprobs[step] == pytest.approx(np.log(p[token] / kept),
                                                                    abs=1e-9)  # fmt: skip
    assert sampler.sample(PROMPT, max_tokens=2).sequences[0].stability is None


def test_sampled_then_trained_with_stable_reinforce_on_policy(
    trainer: LoraTrainer, sampler: LoraSampler
) -> None:
    """On-policy at T = 1: every recorded behaviour logprob is the learner's, so r = 1."""
    result = sampler.sample(PROMPT, max_tokens=6, stop=[], seed=5, record_stability_info=True)
    seq = result.sequences[0]
    assert seq.stability is not None
    store = StabilityStore()
    store.put("s0", seq.stability)
    full = np.array(PROMPT + seq.tokens)
    spans = (ProvenanceSpan("prompt", "s0", 1, len(PROMPT) - 1),
             ProvenanceSpan("sampled", "s0", 0, len(seq.tokens)))  # fmt: skip
    advantages = np.ones(len(full) - 1)
    datum = DatumArrays(full[:-1], {"target_tokens": full[1:], "advantages": advantages},
                        None, spans)  # fmt: skip
    out = trainer.forward([datum], "stable_reinforce", None, stability=store).outputs[0]
    sampled = out["elementwise_loss"][len(PROMPT) - 1 :]
    np.testing.assert_allclose(sampled, -1.0, atol=1e-6)


def test_inflight_sampler_follows_published_weights(trainer: LoraTrainer) -> None:
    fresh = LoraTrainer(TINY, rank=4, seed=0)
    target = InflightTarget(fresh.snapshot())
    client = InflightSampler(target)
    before = client.sample(PROMPT, max_tokens=6, temperature=0.0, stop=[])
    assert client.version == 0
    published = trainer.snapshot()
    assert target.publish(published) == 1
    after = client.sample(PROMPT, max_tokens=6, temperature=0.0, stop=[])
    assert client.version == 1
    reference = LoraSampler(published).sample(PROMPT, max_tokens=6, temperature=0.0, stop=[])
    assert after.sequences[0].tokens == reference.sequences[0].tokens
    assert after.sequences[0].tokens != before.sequences[0].tokens
