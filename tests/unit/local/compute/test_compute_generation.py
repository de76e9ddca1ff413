"""Sampling: consistency with forward, KV cache, decoding options, stops, seeds, threads."""

from __future__ import annotations

import concurrent.futures

import numpy as np
import pytest
from compute_helpers import TINY, TINY_RANDOM, random_adapter, sequence_datum

from tinker.local.compute import generation
from tinker.local.compute.catalogue import EOS_TOKEN_ID, VOCAB_SIZE, token_bytes
from tinker.local.compute.errors import UnknownModelError, UserInputError
from tinker.local.compute.generation import DEFAULT_MAX_TOKENS, LoraSampler, SamplerWeights
from tinker.local.compute.trainer import LoraTrainer
from tinker.local.compute.transformer import log_softmax

PROMPT = [256, *b"Hello"]


@pytest.fixture(scope="module")
def trained() -> LoraTrainer:
    """A trainer with a random (nonzero) adapter, so the sampler sees real LoRA deltas (on the
    random twin: large random deltas on the pretrained weights push float32 rounding past the
    tolerances of the exactness checks below)."""
    trainer = LoraTrainer(TINY_RANDOM, rank=4, seed=0)
    trainer.load(random_adapter(trainer, np.random.default_rng(0), std=0.2), None)
    return trainer


@pytest.fixture(scope="module")
def sampler(trained: LoraTrainer) -> LoraSampler:
    return LoraSampler(trained.snapshot())


def test_prompt_logprobs_equal_forward_logprobs(trained: LoraTrainer, sampler: LoraSampler) -> None:
    seq = [256, *b"The cat sat on the mat."]
    result = sampler.sample(seq, max_tokens=1, prompt_logprobs=True)
    assert result.prompt_logprobs is not None and result.prompt_logprobs[0] is None
    forward = trained.forward([sequence_datum(seq)], "cross_entropy", None).outputs[0]["logprobs"]
    np.testing.assert_allclose(result.prompt_logprobs[1:], forward, rtol=1e-5, atol=1e-5)


def test_generated_logprobs_match_a_full_forward(
    trained: LoraTrainer, sampler: LoraSampler
) -> None:
    """The KV-cached decode gives the same distribution as recomputing the whole sequence."""
    result = sampler.sample(PROMPT, max_tokens=12, temperature=0.0, stop=[])
    generated = result.sequences[0].tokens
    assert len(generated) == 12 and result.sequences[0].stop_reason == "length"
    seq = PROMPT + generated
    forward = trained.forward([sequence_datum(seq)], "cross_entropy", None).outputs[0]["logprobs"]
    np.testing.assert_allclose(result.sequences[0].logprobs, forward[len(PROMPT) - 1 :], atol=5e-5)


def test_snapshot_is_frozen(trained: LoraTrainer) -> None:
    trainer = LoraTrainer(TINY, rank=2, seed=0)
    before = trainer.snapshot()
    trainer.forward_backward([sequence_datum(PROMPT)], "cross_entropy", None)
    trainer.optim_step(learning_rate=0.1)
    assert any(
        not np.array_equal(v, trainer.adapter_tensors()[k]) for k, v in before.adapter.items()
    )
    with pytest.raises(ValueError, match="read-only"):
        next(iter(before.adapter.values()))[0, 0] = 1.0


def test_fresh_adapter_samples_like_the_base_model() -> None:
    fresh = LoraSampler(LoraTrainer(TINY, rank=2, seed=0).snapshot())
    base = LoraSampler(SamplerWeights.base(TINY))
    a = fresh.sample(PROMPT, max_tokens=5, prompt_logprobs=True, seed=3)
    b = base.sample(PROMPT, max_tokens=5, prompt_logprobs=True, seed=3)
    assert a == b


def test_top_k_one_is_greedy(sampler: LoraSampler) -> None:
    greedy = sampler.sample(PROMPT, max_tokens=10, temperature=0.0, stop=[])
    top1 = sampler.sample(PROMPT, max_tokens=10, temperature=1.0, top_k=1, seed=5, stop=[])
    assert top1.sequences[0].tokens == greedy.sequences[0].tokens
    np.testing.assert_allclose(top1.sequences[0].logprobs, greedy.sequences[0].logprobs, atol=1e-6)


def test_seed_determinism(sampler: LoraSampler) -> None:
    kwargs = {"max_tokens": 20, "temperature": 1.5, "num_samples": 3, "stop": []}
    first = sampler.sample(PROMPT, seed=11, **kwargs)
    assert first == sampler.sample(PROMPT, seed=11, **kwargs)
    assert first != sampler.sample(PROMPT, seed=12, **kwargs)
    assert len({tuple(s.tokens) for s in first.sequences}) == 3
    unseeded = [sampler.sample(PROMPT, seed=None, **kwargs) for _ in range(2)]
    assert unseeded[0] != unseeded[1]


def test_sampled_logprobs_are_tempered(trained: LoraTrainer, sampler: LoraSampler) -> None:
    out = sampler.sample(PROMPT, max_tokens=1, temperature=0.5, seed=0, stop=[]).sequences[0]
    logits = sampler._network.forward(np.array([PROMPT]))[0, -1].astype(np.float64)
    expected = log_softmax(logits / 0.5)[out.tokens[0]]
    assert out.logprobs[0] == pytest.approx(expected, abs=1e-5)


def test_top_p_and_top_k_restrict_the_support(sampler: LoraSampler) -> None:
    logits = sampler._network.forward(np.array([PROMPT]))[0, -1]
    ranked = list(np.argsort(-logits))
    top3 = sampler.sample(PROMPT, max_tokens=1, top_k=3, num_samples=40, seed=1, temperature=3.0)
    assert {s.tokens[0] for s in top3.sequences} <= set(ranked[:3])
    nucleus = sampler.sample(
        PROMPT, max_tokens=1, top_p=1e-6, num_samples=10, seed=1, temperature=3.0
    )
    assert {s.tokens[0] for s in nucleus.sequences} == {ranked[0]}
    wide = sampler.sample(PROMPT, max_tokens=1, num_samples=40, seed=1, temperature=3.0)
    assert len({s.tokens[0] for s in wide.sequences}) > 3
    unlimited = sampler.sample(
        PROMPT, max_tokens=1, num_samples=40, seed=1, temperature=3.0, top_k=0
    )
    assert unlimited == wide


def test_stop_token_is_included(sampler: LoraSampler) -> None:
    free = sampler.sample(PROMPT, max_tokens=30, temperature=0.0, stop=[]).sequences[0].tokens
    stop_id = free[4]
    first = free.index(stop_id)
    out = sampler.sample(PROMPT, max_tokens=30, temperature=0.0, stop=[stop_id]).sequences[0]
    assert out.tokens == free[: first + 1]
    assert out.stop_reason == "stop" and len(out.logprobs) == len(out.tokens)


CONTINUATION = b" world, hello there!"


@pytest.fixture(scope="module")
def taught() -> LoraSampler:
    """Trained to continue PROMPT with CONTINUATION, then EOS, then b"cd"."""
    trainer = LoraTrainer(TINY, rank=8, seed=0)
    datum = sequence_datum([*PROMPT, *CONTINUATION, EOS_TOKEN_ID, *b"cd"])
    for _ in range(100):
        trainer.forward_backward([datum], "cross_entropy", None)
        trainer.optim_step(learning_rate=1e-2)
    return LoraSampler(trainer.snapshot())


def test_stop_string_completed_by_last_token(taught: LoraSampler) -> None:
    default = taught.sample(PROMPT, max_tokens=40, temperature=0.0).sequences[0]
    assert default.tokens == [*CONTINUATION, EOS_TOKEN_ID] and default.stop_reason == "stop"
    for stop, expected in [
        (["ll"], b" world, hell"),
        ("o t", b" world, hello t"),
        (["zz", ", "], b" world, "),
        (["re!"], b" world, hello there!"),
    ]:
        out = taught.sample(PROMPT, max_tokens=40, temperature=0.0, stop=stop).sequences[0]
        assert bytes(out.tokens) == expected, stop
        assert out.stop_reason == "stop" and len(out.logprobs) == len(out.tokens)


def test_eos_stops_by_default_and_empty_stop_list_disables_it(taught: LoraSampler) -> None:
    default = taught.sample(PROMPT, max_tokens=40, temperature=0.0).sequences[0]
    with_strings = taught.sample(PROMPT, max_tokens=40, temperature=0.0, stop="zz").sequences[0]
    assert with_strings.tokens == default.tokens
    with_ids = taught.sample(PROMPT, max_tokens=40, temperature=0.0, stop=[7]).sequences[0]
    assert with_ids.tokens == default.tokens
    disabled = taught.sample(PROMPT, max_tokens=24, temperature=0.0, stop=[]).sequences[0]
    assert disabled.tokens[:23] == [*CONTINUATION, EOS_TOKEN_ID, *b"cd"]
    assert disabled.stop_reason == "length" and len(disabled.tokens) == 24
    short = taught.sample(PROMPT, max_tokens=5, temperature=0.0).sequences[0]
    assert bytes(short.tokens) == CONTINUATION[:5] and short.stop_reason == "length"


def test_max_tokens_and_context_limit(sampler: LoraSampler) -> None:
    assert len(sampler.sample(PROMPT, max_tokens=7, stop=[], seed=0).sequences[0].tokens) == 7
    empty = sampler.sample(PROMPT, max_tokens=0).sequences[0]
    assert empty.tokens == [] and empty.stop_reason == "length"
    # tiny's context (256) caps the default of DEFAULT_MAX_TOKENS (256) here
    default = sampler.sample(PROMPT, stop=[], seed=0, temperature=0.0).sequences[0]
    assert DEFAULT_MAX_TOKENS == 256 and len(default.tokens) == 256 - len(PROMPT)
    near_full = [1] * 250
    capped = sampler.sample(near_full, max_tokens=100, stop=[], seed=0).sequences[0]
    assert len(capped.tokens) == 6 and capped.stop_reason == "length"
    full = sampler.sample([1] * 256, max_tokens=5, prompt_logprobs=True)
    assert full.sequences[0].tokens == [] and len(full.prompt_logprobs or []) == 256


def test_max_tokens_none_uses_the_default(
    sampler: LoraSampler, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(generation, "DEFAULT_MAX_TOKENS", 9)
    out = sampler.sample(PROMPT, max_tokens=None, stop=[], seed=0).sequences[0]
    assert len(out.tokens) == 9 and out.stop_reason == "length"


def test_num_samples_and_mixed_stop_reasons(sampler: LoraSampler) -> None:
    result = sampler.sample(
        PROMPT, num_samples=16, max_tokens=8, temperature=2.0, seed=4, stop=["e", "a"]
    )
    assert len(result.sequences) == 16
    reasons = {s.stop_reason for s in result.sequences}
    assert reasons == {"stop", "length"}
    for seq in result.sequences:
        before = b"".join(token_bytes(t) for t in seq.tokens[:-1])  # specials as their text
        assert b"e" not in before and b"a" not in before and EOS_TOKEN_ID not in seq.tokens[:-1]
        if seq.stop_reason == "stop":
            last = token_bytes(seq.tokens[-1])
            assert seq.tokens[-1] == EOS_TOKEN_ID or b"e" in last or b"a" in last
        else:
            assert len(seq.tokens) == 8
    assert result.prompt_logprobs is None and result.topk_prompt_logprobs is None


def test_topk_prompt_logprobs(sampler: LoraSampler) -> None:
    result = sampler.sample(PROMPT, max_tokens=1, prompt_logprobs=True, topk_prompt_logprobs=4)
    topk = result.topk_prompt_logprobs
    assert topk is not None and len(topk) == len(PROMPT) and topk[0] is None
    assert result.prompt_logprobs is not None
    for position, entry in enumerate(topk[1:], start=1):
        assert entry is not None and len(entry) == 4
        values = [lp for _, lp in entry]
        assert values == sorted(values, reverse=True)
        actual = result.prompt_logprobs[position]
        assert actual is not None and (actual <= values[0] + 1e-6)
        if PROMPT[position] in [t for t, _ in entry]:
            assert dict(entry)[PROMPT[position]] == pytest.approx(actual, abs=1e-6)
    alone = sampler.sample(PROMPT, max_tokens=1, topk_prompt_logprobs=2)
    assert alone.prompt_logprobs is None and alone.topk_prompt_logprobs is not None


def test_sample_is_thread_safe(sampler: LoraSampler) -> None:
    kwargs = {"max_tokens": 15, "temperature": 1.0, "num_samples": 2, "stop": []}
    expected = [sampler.sample(PROMPT, seed=s, **kwargs) for s in range(8)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda s: sampler.sample(PROMPT, seed=s, **kwargs), range(8)))
    assert got == expected


@pytest.mark.parametrize(
    ("prompt", "kwargs", "message"),
    [
        ([], {}, "prompt must have 1..256 tokens"),
        ([1] * 257, {}, "prompt must have 1..256 tokens"),
        ([1, VOCAB_SIZE], {}, f"prompt token {VOCAB_SIZE} at position 1"),
        ([1], {"num_samples": 0}, "num_samples must be a positive integer"),
        ([1], {"max_tokens": -1}, "max_tokens must be a non-negative integer"),
        ([1], {"temperature": -0.5}, "temperature must be"),
        ([1], {"top_k": -2}, "top_k must be a positive integer, or -1 or 0 for no limit, got -2"),
        ([1], {"top_p": 0.0}, "top_p must be in (0, 1]"),
        ([1], {"stop": [""]}, "stop strings must not be empty"),
        ([1], {"stop": [1, "a"]}, "stop must be a string"),
        ([1], {"stop": [VOCAB_SIZE]}, f"stop token id {VOCAB_SIZE} is outside"),
        ([1], {"topk_prompt_logprobs": -1}, "topk_prompt_logprobs must be >= 0"),
        ([1], {"seed": -5}, "seed must be a non-negative integer or None, got -5"),
    ],
)
def test_bad_sampling_requests(
    sampler: LoraSampler, prompt: list[int], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(UserInputError) as info:
        sampler.sample(prompt, **kwargs)  # type: ignore[arg-type]
    assert message in str(info.value)


def test_sampler_weights_validation(trained: LoraTrainer) -> None:
    adapter = trained.adapter_tensors()
    config = trained.adapter_config()
    weights = SamplerWeights.from_checkpoint(trained.config.name, adapter, config)
    assert weights.rank == 4 and weights.lora_alpha == 32.0
    assert LoraSampler(weights).sample(PROMPT, max_tokens=3, seed=1) == LoraSampler(
        trained.snapshot()
    ).sample(PROMPT, max_tokens=3, seed=1)
    with pytest.raises(UserInputError, match="'r' must be a positive integer"):
        SamplerWeights.from_checkpoint(TINY, adapter, {})
    with pytest.raises(UserInputError, match="expected \\[2, 64\\]"):
        SamplerWeights.from_checkpoint(TINY, adapter, {**config, "r": 2})
    with pytest.raises(UserInputError, match="names no layer"):
        SamplerWeights.from_checkpoint(
            TINY,
            {
                **adapter,
                "base_model.model.model.layers.9.mlp.up_proj.lora_A.weight": np.zeros((4, 64)),
            },
            config,
        )
    with pytest.raises(UserInputError, match="is not a LoRA tensor name"):
        SamplerWeights.from_checkpoint(TINY, {"weight": np.zeros(1)}, config)
    with pytest.raises(UnknownModelError):
        SamplerWeights.base("nope")
