"""Sampling from a frozen snapshot of base + LoRA weights with a KV cache.

One prefill over the prompt fills the cache, then all num_samples continuations decode
together, one token per step, each row leaving the batch when it stops. The sampling
parameters are the service's: temperature (0 is greedy), top_k (-1 or 0: no limit), top_p
(nucleus, in (0, 1]), stop, seed (the same seed gives the same tokens), prompt_logprobs and
topk_prompt_logprobs (log p(x_i | x_<i) at the untempered distribution; position 0 has none).

Choices where the service's behaviour is not documented:
* max_tokens=None generates up to DEFAULT_MAX_TOKENS tokens; every request is also capped by
  the context (prompt + generated <= max_seq_len), which ends it with stop_reason "length".
* stop=None stops at EOS; a non-empty list of strings or of token ids stops at those and at
  EOS too; stop=[] disables every stop. The stopping token is included in the output.
* Sampled-token logprobs are log_softmax(z / T) at the chosen token (not renormalised for
  top_k/top_p); with temperature 0 (greedy) they are the untempered log_softmax(z).

The 0.38 request fields are computed by prompt_scoring (topk_sample_logprobs,
target_prompt_logprobs, prompt_alt_tokens_k, prompt_logprobs_last_n); the prompt is prefilled
through a prefix cache (prefix_cache) whose hits are reported as prompt_cache_hit_tokens; with
record_stability_info every sequence carries the SequenceRecord that stable_reinforce needs.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from tinker.local.compute import prompt_scoring as scoring
from tinker.local.compute.blas import limit_blas_threads
from tinker.local.compute.catalogue import get_model_config, linear_shapes, token_bytes
from tinker.local.compute.errors import UserInputError
from tinker.local.compute.lora import (
    LORA_ALPHA,
    check_adapter_tensors,
    lora_pairs,
    merge_lora,
    parse_peft_name,
    peft_name,
)
from tinker.local.compute.prefix_cache import PrefixCache, prefill
from tinker.local.compute.prompt_scoring import PromptAltTokens, TargetTable, TopkTable
from tinker.local.compute.stability import SequenceRecord
from tinker.local.compute.transformer import (
    KVCache,
    Transformer,
    base_weights,
    log_softmax,
    seeded_rng,
)

Array = npt.NDArray[Any]

#: Tokens generated when the request's max_tokens is None.
DEFAULT_MAX_TOKENS = 256


@attrs.frozen
class SamplerWeights:
    """Immutable weights to sample from: a base model and optionally a LoRA adapter."""

    base_model: str
    adapter: Mapping[str, Array] | None
    rank: int
    lora_alpha: float

    @classmethod
    def base(cls, base_model: str) -> SamplerWeights:
        """The base model alone (no adapter)."""
        get_model_config(base_model)
        return cls(base_model, None, 0, LORA_ALPHA)

    @classmethod
    def from_checkpoint(
        cls, base_model: str, adapter: Mapping[str, Array], adapter_config: Mapping[str, Any]
    ) -> SamplerWeights:
        """Weights saved by a checkpoint: tensors plus adapter_config.json (r, lora_alpha)."""
        rank = adapter_config.get("r")
        alpha = adapter_config.get("lora_alpha", LORA_ALPHA)
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise UserInputError(f"adapter_config 'r' must be a positive integer, got {rank!r}")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
            raise UserInputError(f"adapter_config 'lora_alpha' must be a number, got {alpha!r}")
        return cls.create(base_model, adapter, rank, float(alpha))

    @classmethod
    def create(
        cls, base_model: str, adapter: Mapping[str, Array], rank: int, lora_alpha: float
    ) -> SamplerWeights:
        """Validated, read-only float32 copies of the adapter tensors."""
        config = get_model_config(base_model)
        shapes = linear_shapes(config)
        modules = []
        for name in adapter:
            module, _kind = parse_peft_name(name)
            if module not in shapes:
                raise UserInputError(f"adapter tensor {name!r} names no layer of {base_model}")
            if module not in modules:
                modules.append(module)
        expected: dict[str, tuple[int, ...]] = {}
        for module in modules:
            out_dim, in_dim = shapes[module]
            expected[peft_name(module, "A")] = (rank, in_dim)
            expected[peft_name(module, "B")] = (out_dim, rank)
        check_adapter_tensors(adapter, expected, what="adapter")
        frozen: dict[str, Array] = {}
        for name in expected:
            array = np.array(adapter[name], dtype=np.float32)
            array.flags.writeable = False
            frozen[name] = array
        return cls(base_model, MappingProxyType(frozen), rank, lora_alpha)


#: Distinguishes the prefix-cache entries of samplers that share one cache.
_WEIGHTS_KEYS = itertools.count()


@attrs.frozen
class SampledOutput:
    """One generated continuation; `topk_logprobs` when topk_sample_logprobs > 0 and
    `stability` when record_stability_info was asked for."""

    tokens: list[int]
    logprobs: list[float]
    stop_reason: str
    topk_logprobs: TopkTable | None = None
    stability: SequenceRecord | None = None


@attrs.frozen
class SampleResult:
    """num_samples continuations, prompt logprobs when asked for (None where not scored),
    and the 0.38 extras (prompt_scoring)."""

    sequences: list[SampledOutput]
    prompt_logprobs: list[float | None] | None
    topk_prompt_logprobs: list[list[tuple[int, float]] | None] | None
    prompt_cache_hit_tokens: int = 0
    target_prompt_logprobs: TargetTable | None = None
    prompt_alt_tokens: PromptAltTokens | None = None


@attrs.frozen
class Choice:
    """One decoding step: chosen tokens, their logprobs (as reported), their behaviour
    logprobs (of the distribution actually sampled from) and the reported distribution."""

    tokens: Array
    logprobs: Array
    behaviour: Array
    logp: Array


@attrs.frozen
class StopRule:
    """Token ids and byte strings that end a sequence."""

    token_ids: frozenset[int]
    strings: tuple[bytes, ...]

    def hit(self, token: int, text: bytes) -> bool:
        """Whether `token`, just appended to the generated `text`, ends the sequence."""
        if token in self.token_ids:
            return True
        tail = len(token_bytes(token))
        return any(s in text[-(len(s) + tail - 1) :] for s in self.strings)


def parse_stop(
    stop: str | Sequence[str] | Sequence[int] | None, vocab_size: int, eos: int
) -> StopRule:
    """Normalise the `stop` parameter (see the module docstring for the EOS rules)."""
    if stop is None:
        return StopRule(frozenset({eos}), ())
    items: list[Any] = [stop] if isinstance(stop, str) else list(stop)
    if not items:
        return StopRule(frozenset(), ())
    if all(isinstance(s, str) for s in items):
        if any(s == "" for s in items):
            raise UserInputError("stop strings must not be empty")
        return StopRule(frozenset({eos}), tuple(s.encode() for s in items))
    if all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in items):
        bad = [s for s in items if not 0 <= s < vocab_size]
        if bad:
            raise UserInputError(
                f"stop token id {bad[0]} is outside the vocabulary (0..{vocab_size - 1})"
            )
        return StopRule(frozenset({eos, *(int(s) for s in items)}), ())
    raise UserInputError("stop must be a string, a list of strings or a list of token ids")


@attrs.frozen
class SamplingOptions:
    """Validated per-request sampling parameters."""

    temperature: float
    top_k: int
    top_p: float

    @classmethod
    def checked(cls, temperature: float, top_k: int, top_p: float) -> SamplingOptions:
        """Raise UserInputError for values outside the documented ranges."""
        if not np.isfinite(temperature) or temperature < 0:
            raise UserInputError(f"temperature must be a finite number >= 0, got {temperature}")
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < -1:
            raise UserInputError(
                f"top_k must be a positive integer, or -1 or 0 for no limit, got {top_k!r}"
            )
        if not 0.0 < top_p <= 1.0:
            raise UserInputError(f"top_p must be in (0, 1], got {top_p}")
        return cls(float(temperature), int(top_k), float(top_p))

    def choose(self, logits: Array, rng: np.random.Generator) -> Choice:
        """Pick one token per row of logits (n, V)."""
        rows = np.arange(logits.shape[0])
        z = logits.astype(np.float64)
        if self.temperature == 0.0:
            tokens = np.argmax(z, axis=-1)
            logp = log_softmax(z)
            return Choice(tokens, logp[rows, tokens], np.zeros(len(rows)), logp)
        logp = log_softmax(z / self.temperature)
        order = np.argsort(-logp, axis=-1, kind="stable")
        probs = np.exp(np.take_along_axis(logp, order, axis=-1))
        keep = probs.shape[-1] if self.top_k <= 0 else min(self.top_k, probs.shape[-1])
        cumulative = np.cumsum(probs[:, :keep], axis=-1)
        draws = rng.random(len(rows))
        tokens = np.empty(len(rows), dtype=np.int64)
        kept_mass = np.empty(len(rows), dtype=np.float64)
        for row in rows:
            cum = cumulative[row]
            count = keep
            if self.top_p < 1.0:
                count = min(keep, int(np.searchsorted(cum / cum[-1], self.top_p)) + 1)
            pick = int(np.searchsorted(cum[:count], draws[row] * cum[count - 1], side="right"))
            tokens[row] = order[row, min(pick, count - 1)]
            kept_mass[row] = cum[count - 1]
        picked = logp[rows, tokens]
        return Choice(tokens, picked, picked - np.log(kept_mass), logp)


class LoraSampler:
    """Generates continuations from one SamplerWeights; sample() is safe to call from threads.

    `prefix_cache` defaults to a cache of this sampler's own (a fresh KV namespace per
    sampling session); samplers sharing one cache need distinct `weights_key`s unless their
    weights are equal. `dtype` float64 gives reference-precision sampling for tests.
    """

    def __init__(
        self,
        weights: SamplerWeights,
        *,
        dtype: npt.DTypeLike = np.float32,
        prefix_cache: PrefixCache | None = None,
        weights_key: Hashable | None = None,
    ) -> None:
        limit_blas_threads()
        self.weights = weights
        self.config = get_model_config(weights.base_model)
        self.dtype = np.dtype(dtype)
        self.prefix_cache = prefix_cache if prefix_cache is not None else PrefixCache()
        self.weights_key = weights_key if weights_key is not None else next(_WEIGHTS_KEYS)
        base = base_weights(self.config, self.dtype)
        merged: Mapping[str, Array] = base
        if weights.adapter:
            modules = list(dict.fromkeys(parse_peft_name(n)[0] for n in weights.adapter))
            pairs = lora_pairs(weights.adapter, modules)
            merged = merge_lora(base, pairs, weights.lora_alpha / weights.rank)
        self._network = Transformer(self.config, merged)

    def sample(
        self,
        prompt: Sequence[int],
        *,
        num_samples: int = 1,
        max_tokens: int | None = None,
        temperature: float = 1.0,
        top_k: int = -1,
        top_p: float = 1.0,
        stop: str | Sequence[str] | Sequence[int] | None = None,
        seed: int | None = None,
        prompt_logprobs: bool = False,
        topk_prompt_logprobs: int = 0,
        topk_sample_logprobs: int = 0,
        target_prompt_logprobs: TargetTable | None = None,
        prompt_alt_tokens_k: int = 0,
        prompt_logprobs_last_n: int | None = None,
        record_stability_info: bool = False,
    ) -> SampleResult:
        """num_samples continuations of `prompt` (batched together after one prefill)."""
        cfg = self.config
        tokens = self._check_prompt(prompt)
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise UserInputError(f"num_samples must be a positive integer, got {num_samples!r}")
        if max_tokens is None:
            max_tokens = DEFAULT_MAX_TOKENS
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 0:
            raise UserInputError(f"max_tokens must be a non-negative integer, got {max_tokens!r}")
        top_prompt = scoring.check_width("topk_prompt_logprobs", topk_prompt_logprobs)
        top_sample = scoring.check_width("topk_sample_logprobs", topk_sample_logprobs)
        alt_k = scoring.check_width("prompt_alt_tokens_k", prompt_alt_tokens_k)
        first = scoring.first_scored(len(tokens), prompt_logprobs_last_n, prompt_logprobs)
        targets = target_prompt_logprobs
        if targets is not None:
            scoring.check_targets(targets, len(tokens), cfg.vocab_size)
        options = SamplingOptions.checked(temperature, top_k, top_p)
        rule = parse_stop(stop, cfg.vocab_size, cfg.eos_token_id)
        rng = seeded_rng(seed, "seed")
        budget = min(max_tokens, cfg.max_seq_len - len(tokens))

        capacity = len(tokens) + max(budget - 1, 0)
        filled = prefill(self._network, tokens, capacity, self.prefix_cache, self.weights_key)
        logp = log_softmax(filled.logits.astype(np.float64))
        record = (tokens, options) if record_stability_info else None
        sequences = self._generate(
            filled.kv, filled.logits[-1], num_samples, budget, options, rule, rng, top_sample,
            record,
        )  # fmt: skip
        alt = None
        if alt_k:
            alt = scoring.draw_alt_tokens(filled.logits, alt_k, options.temperature, _alt_rng(seed))
        return SampleResult(
            sequences,
            scoring.prompt_logprobs(tokens, logp, first) if prompt_logprobs else None,
            scoring.topk_prompt_logprobs(logp, top_prompt, first) if top_prompt else None,
            filled.hit_tokens,
            None if targets is None else scoring.score_targets(targets, logp),
            alt,
        )

    def _check_prompt(self, prompt: Sequence[int]) -> Array:
        cfg = self.config
        try:
            tokens = np.asarray(prompt, dtype=np.int64)
        except (TypeError, ValueError, OverflowError):
            raise UserInputError("prompt must be a sequence of integer token ids") from None
        if tokens.ndim != 1 or not 1 <= tokens.shape[0] <= cfg.max_seq_len:
            raise UserInputError(f"prompt must have 1..{cfg.max_seq_len} tokens for {cfg.name}")
        bad = np.flatnonzero((tokens < 0) | (tokens >= cfg.vocab_size))
        if bad.size:
            raise UserInputError(
                f"prompt token {tokens[bad[0]]} at position {bad[0]} is outside the vocabulary "
                f"(0..{cfg.vocab_size - 1})"
            )
        return tokens

    def _generate(
        self,
        cache: KVCache,
        first_logits: Array,
        num_samples: int,
        budget: int,
        options: SamplingOptions,
        rule: StopRule,
        rng: np.random.Generator,
        top_sample: int,
        record: tuple[Array, SamplingOptions] | None,
    ) -> list[SampledOutput]:
        """Decode all samples in one batch, dropping rows from the batch as they stop."""
        out_tokens: list[list[int]] = [[] for _ in range(num_samples)]
        out_logprobs: list[list[float]] = [[] for _ in range(num_samples)]
        behaviour: list[list[float]] = [[] for _ in range(num_samples)]
        topk: list[list[TopkTable]] = [[] for _ in range(num_samples)]
        texts = [b""] * num_samples
        stopped = [False] * num_samples
        active = list(range(num_samples))
        cache.select(np.zeros(num_samples, dtype=np.int64))
        logits = np.repeat(first_logits[None, :], num_samples, axis=0)
        for step in range(budget):
            choice = options.choose(logits, rng)
            step_topk = scoring.topk_table(choice.logp, top_sample) if top_sample else None
            still: list[int] = []
            for row, sample in enumerate(active):
                token = int(choice.tokens[row])
                out_tokens[sample].append(token)
                out_logprobs[sample].append(float(choice.logprobs[row]))
                behaviour[sample].append(float(choice.behaviour[row]))
                if step_topk is not None:
                    topk[sample].append(
                        TopkTable(step_topk.token_ids[row], step_topk.logprobs[row])
                    )
                if rule.strings:
                    texts[sample] += token_bytes(token)
                if rule.hit(token, texts[sample]):
                    stopped[sample] = True
                else:
                    still.append(row)
            if not still or step == budget - 1:
                break
            chosen = choice.tokens
            if len(still) < len(active):
                cache.select(np.asarray(still))
                chosen = chosen[still]
                active = [active[row] for row in still]
            logits = self._network.forward(chosen[:, None], cache=cache)[:, -1]
        return [
            SampledOutput(
                out_tokens[s],
                out_logprobs[s],
                "stop" if stopped[s] else "length",
                _stack_rows(topk[s], top_sample) if top_sample else None,
                None if record is None else _record(record, out_tokens[s], behaviour[s]),
            )
            for s in range(num_samples)
        ]


def _stack_rows(rows: list[TopkTable], k: int) -> TopkTable:
    """Per-position top-k rows of one sequence as one (n, k) table."""
    if not rows:
        return TopkTable(np.zeros((0, k), np.int64), np.zeros((0, k), np.float64))
    return TopkTable(np.stack([r.token_ids for r in rows]), np.stack([r.logprobs for r in rows]))


def _record(
    request: tuple[Array, SamplingOptions], tokens: list[int], behaviour: list[float]
) -> SequenceRecord:
    prompt, options = request
    return SequenceRecord(
        prompt,
        np.asarray(tokens, dtype=np.int64),
        np.asarray(behaviour, dtype=np.float64),
        options.temperature,
        options.top_k,
        options.top_p,
    )


def _alt_rng(seed: int | None) -> np.random.Generator:
    """A stream for alternative-token draws, independent of the sampling stream of `seed`."""
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
