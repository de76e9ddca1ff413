"""The seam between the halves: what the server's engine needs from compute, and its numpy
implementation.

The protocols (Backend, Trainer, Sampler and their results) and DEFAULT_MAX_TOKENS (what a
sample without max_tokens generates, which the server's sample limits count) are all the
server knows of compute; `NumpyBackend` implements them over the trainer, generation and
catalogue modules. The server's tests plug in a small fake that follows the same contract.

Objects the server only passes back (datums, snapshots, compiled custom losses, stability
stores, in-flight targets, target tables, optimizer params) are opaque to it: it gets them from
a Backend factory and hands them to a Trainer or Sampler of the same backend.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import attrs
import numpy as np

from tinker.local.compute import prompt_scoring as scoring
from tinker.local.compute.catalogue import LOCAL_MODELS, TOKENIZER_DIR, get_model_config
from tinker.local.compute.custom_loss import CustomLoss
from tinker.local.compute.errors import UserInputError
from tinker.local.compute.export import WrittenFiles, export_peft_adapter, link_or_copy
from tinker.local.compute.generation import DEFAULT_MAX_TOKENS as DEFAULT_MAX_TOKENS
from tinker.local.compute.generation import LoraSampler, SamplerWeights
from tinker.local.compute.inflight import InflightSampler, InflightTarget
from tinker.local.compute.optimizer_choice import OptimizerChoice, OptimizerParams, state_kind
from tinker.local.compute.prefix_cache import PrefixCache
from tinker.local.compute.prompt_scoring import TargetTable
from tinker.local.compute.stability import ProvenanceSpan, StabilityStore
from tinker.local.compute.trainer import DatumArrays, LoraTrainer

#: A provenance span as the server passes it: (kind "prompt" | "sampled", sequence_id,
#: offset, length).
SpanSpec = tuple[str, str, int, int]

ARCH = "tinker-local-decoder"


@attrs.frozen
class ModelInfo:
    """Catalogue entry for one base model."""

    name: str
    arch: str
    tokenizer_id: str
    max_context_length: int | None = None  # prompt plus sampled tokens, when bounded


class LossOutput(Protocol):
    """Result of forward / forward_backward for a batch of datums."""

    @property
    def loss_fn_output_type(self) -> str: ...
    @property
    def outputs(self) -> Sequence[Mapping[str, np.ndarray]]: ...
    @property
    def metrics(self) -> Mapping[str, float]: ...


class Trainer(Protocol):
    """A LoRA training state: gradients, optimizer and adapter tensors of one training run."""

    @property
    def rank(self) -> int: ...

    def forward(
        self,
        data: Sequence[Any],
        loss_fn: str,
        loss_fn_config: Mapping[str, Any] | None,
        *,
        custom_loss: Any = ...,
        stability: Any = ...,
    ) -> LossOutput:
        """Loss at the current weights. `custom_loss`: Backend.compile_custom_loss's result
        for loss_fn "custom"; `stability`: the session's Backend.new_stability_store() for
        stable_reinforce."""
        ...

    def forward_backward(
        self,
        data: Sequence[Any],
        loss_fn: str,
        loss_fn_config: Mapping[str, Any] | None,
        *,
        custom_loss: Any = ...,
        stability: Any = ...,
    ) -> LossOutput:
        """As forward, accumulating gradients."""
        ...

    def optim_step(self, params: Any = ..., **adam: float) -> dict[str, float] | None:
        """One step with Backend.optim_params(...) (or Adam keyword arguments)."""
        ...

    def adapter_tensors(self) -> dict[str, np.ndarray]: ...
    def optimizer_tensors(self) -> dict[str, np.ndarray]: ...
    def load(
        self, adapter: Mapping[str, np.ndarray], optimizer: Mapping[str, np.ndarray] | None
    ) -> None: ...
    def adapter_config(self) -> dict[str, Any]: ...
    def optimizer_config(self) -> dict[str, Any]:
        """{"type": "adamw"} or {"type": "dimuon", "version": 1}."""
        ...

    def snapshot(self) -> Any: ...


class TopkLogprobs(Protocol):
    """A top-k table: (n, k) token ids and logprobs; empty cells token 0 / -99999.0."""

    @property
    def token_ids(self) -> np.ndarray: ...
    @property
    def logprobs(self) -> np.ndarray: ...


class SampledSequence(Protocol):
    """One generated continuation."""

    @property
    def tokens(self) -> Sequence[int]: ...
    @property
    def logprobs(self) -> Sequence[float]: ...
    @property
    def stop_reason(self) -> str: ...
    @property
    def topk_logprobs(self) -> TopkLogprobs | None:
        """Top-k at each generated position (topk_sample_logprobs > 0)."""
        ...

    @property
    def stability(self) -> Any:
        """The record to put in the session's stability store under this sequence's id
        (record_stability_info), else None."""
        ...


class TargetLogprobs(Protocol):
    """target_prompt_logprobs' answer: `values` dense (rows, K) or, with `crow`/`col`, the
    listed cells of a CSR table; 0.0 in placeholder cells."""

    @property
    def shape(self) -> tuple[int, int]: ...
    @property
    def values(self) -> np.ndarray: ...
    @property
    def crow(self) -> np.ndarray | None: ...
    @property
    def col(self) -> np.ndarray | None: ...


class AltTokens(Protocol):
    """prompt_alt_tokens: (len(prompt) - 1, k) token ids and their logprobs."""

    @property
    def tokens(self) -> np.ndarray: ...
    @property
    def logprobs(self) -> np.ndarray: ...


class SampleOutput(Protocol):
    """All continuations of one prompt plus what was asked about the prompt."""

    @property
    def sequences(self) -> Sequence[SampledSequence]: ...
    @property
    def prompt_logprobs(self) -> Sequence[float | None] | None: ...
    @property
    def topk_prompt_logprobs(self) -> Sequence[Sequence[tuple[int, float]] | None] | None: ...
    @property
    def prompt_cache_hit_tokens(self) -> int: ...
    @property
    def target_prompt_logprobs(self) -> TargetLogprobs | None: ...
    @property
    def prompt_alt_tokens(self) -> AltTokens | None: ...


class Sampler(Protocol):
    """Generates tokens; `sample` may be called from several threads."""

    def sample(
        self,
        prompt: Sequence[int],
        *,
        num_samples: int = ...,
        max_tokens: int | None = ...,
        temperature: float = ...,
        top_k: int = ...,
        top_p: float = ...,
        stop: str | Sequence[str] | Sequence[int] | None = ...,
        seed: int | None = ...,
        prompt_logprobs: bool = ...,
        topk_prompt_logprobs: int = ...,
        topk_sample_logprobs: int = ...,
        target_prompt_logprobs: Any = ...,
        prompt_alt_tokens_k: int = ...,
        prompt_logprobs_last_n: int | None = ...,
        record_stability_info: bool = ...,
    ) -> SampleOutput:
        """`target_prompt_logprobs` comes from Backend.target_table."""
        ...


class StabilityRecords(Protocol):
    """A session's stable_reinforce records (sequence_id -> what the sampler recorded)."""

    def put(self, sequence_id: str, record: Any) -> None: ...


class InflightWeights(Protocol):
    """The weights every in-flight sampler of one training run reads."""

    def publish(self, snapshot: Any) -> int:
        """Make a Trainer.snapshot() current; returns the new version."""
        ...


class FileListing(Protocol):
    """Files written (relative name -> bytes) and their total size."""

    @property
    def files(self) -> dict[str, int]: ...
    @property
    def size_bytes(self) -> int: ...


class Backend(Protocol):
    """Model catalogue and factories for trainers, samplers and what they are passed."""

    @property
    def user_errors(self) -> tuple[type[BaseException], ...]:
        """Exception classes that mean bad client input (failed futures of category "user")."""
        ...

    def model_names(self) -> list[str]: ...

    def model_info(self, name: str) -> ModelInfo:
        """Catalogue entry; raises one of `user_errors` (listing the known names) if unknown."""
        ...

    def make_datum(
        self,
        tokens: np.ndarray,
        inputs: Mapping[str, np.ndarray],
        *,
        model_input_spans: Sequence[SpanSpec] | None = ...,
        loss_fn_input_spans: Sequence[SpanSpec] | None = ...,
    ) -> Any: ...

    def target_table(
        self,
        shape: tuple[int, int],
        values: np.ndarray,
        crow: np.ndarray | None = ...,
        col: np.ndarray | None = ...,
    ) -> Any:
        """A sample request's target_prompt_logprobs (dense values, or CSR with crow/col)."""
        ...

    def check_sample(
        self,
        base_model: str,
        prompt_length: int,
        *,
        prompt_logprobs: bool,
        topk_prompt_logprobs: int,
        topk_sample_logprobs: int,
        target_prompt_logprobs: Any,
        prompt_alt_tokens_k: int,
        prompt_logprobs_last_n: int | None,
    ) -> None:
        """The sampler's checks of a request's options, run before it is queued (a user error
        naming the rule); `target_prompt_logprobs` comes from target_table."""
        ...

    def check_optimizer_config(self, config: Mapping[str, Any] | None) -> dict[str, Any]:
        """The normalised optimizer_config (None: AdamW); user error if unsupported."""
        ...

    def optim_params(self, optimizer_config: Mapping[str, Any], fields: Mapping[str, Any]) -> Any:
        """Per-step params for a run of `optimizer_config` from the request's adam_params or
        optimizer_params; user error on a family mismatch or bad fields."""
        ...

    def state_optimizer_config(self, optimizer_tensors: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """The optimizer_config a checkpoint's optimizer state belongs to."""
        ...

    def new_trainer(
        self,
        base_model: str,
        *,
        rank: int,
        seed: int | None,
        train_mlp: bool,
        train_attn: bool,
        train_unembed: bool,
        optimizer: Mapping[str, Any] | None = ...,
    ) -> Trainer: ...

    def compile_custom_loss(
        self, name: str, inputs: Sequence[Mapping[str, Any]], graph: Mapping[str, Any]
    ) -> Any:
        """A create_custom_loss graph, checked (user error naming the node if it cannot run)."""
        ...

    def new_stability_store(self) -> StabilityRecords: ...
    def base_sampler(self, base_model: str) -> Sampler: ...
    def snapshot_sampler(self, snapshot: Any) -> Sampler: ...
    def checkpoint_sampler(
        self, base_model: str, adapter: Mapping[str, np.ndarray], adapter_config: Mapping[str, Any]
    ) -> Sampler: ...
    def inflight_target(self, snapshot: Any) -> InflightWeights: ...
    def inflight_sampler(self, target: Any) -> Sampler: ...

    def export_external(
        self,
        directory: pathlib.Path,
        base_model: str,
        adapter: Mapping[str, np.ndarray],
        adapter_config: Mapping[str, Any],
    ) -> FileListing:
        """save_weights_external's files in `directory` (which must not exist yet)."""
        ...

    def copy_checkpoint(self, source: pathlib.Path, destination: pathlib.Path) -> FileListing:
        """copy_weights: the files of `source` at `destination`, sharing bytes if possible."""
        ...


#: Bytes of prompt prefixes (keys, values, logits) kept for all samplers of one backend.
PREFIX_CACHE_BYTES = 256 << 20


class NumpyBackend:
    """Backend protocol over the numpy model of this package.

    Its samplers share one prefix cache, bounded in bytes; each sampler has its own namespace
    in it (a fresh KV namespace per sampling session).
    """

    def __init__(self, prefix_cache_bytes: int = PREFIX_CACHE_BYTES) -> None:
        self._prefix_cache = PrefixCache(prefix_cache_bytes)

    @property
    def user_errors(self) -> tuple[type[BaseException], ...]:
        """UserInputError: everything compute rejects about a request."""
        return (UserInputError,)

    def model_names(self) -> list[str]:
        """The catalogue's models, sorted."""
        return sorted(LOCAL_MODELS)

    def model_info(self, name: str) -> ModelInfo:
        """Every local model shares the architecture name and the packaged tokenizer."""
        config = get_model_config(name)
        return ModelInfo(config.name, ARCH, str(TOKENIZER_DIR), config.max_seq_len)

    def make_datum(
        self,
        tokens: np.ndarray,
        inputs: Mapping[str, np.ndarray],
        *,
        model_input_spans: Sequence[SpanSpec] | None = None,
        loss_fn_input_spans: Sequence[SpanSpec] | None = None,
    ) -> DatumArrays:
        """The trainer's datum: tokens, loss inputs as arrays, provenance spans if given."""
        return DatumArrays(
            tokens=tokens,
            inputs=dict(inputs),
            model_input_spans=_spans(model_input_spans),
            loss_fn_input_spans=_spans(loss_fn_input_spans),
        )

    def target_table(
        self,
        shape: tuple[int, int],
        values: np.ndarray,
        crow: np.ndarray | None = None,
        col: np.ndarray | None = None,
    ) -> TargetTable:
        """target_prompt_logprobs ids (checked against the prompt when sampling)."""
        if (crow is None) != (col is None):
            raise UserInputError("a sparse target_prompt_logprobs needs both crow and col indices")
        if len(shape) != 2:
            raise UserInputError(f"target_prompt_logprobs must be 2-D, got shape {list(shape)}")
        return TargetTable((int(shape[0]), int(shape[1])), values, crow, col)

    def check_sample(
        self,
        base_model: str,
        prompt_length: int,
        *,
        prompt_logprobs: bool,
        topk_prompt_logprobs: int,
        topk_sample_logprobs: int,
        target_prompt_logprobs: TargetTable | None,
        prompt_alt_tokens_k: int,
        prompt_logprobs_last_n: int | None,
    ) -> None:
        """The widths, prompt_logprobs_last_n and target table rules of LoraSampler.sample."""
        for name, width in (
            ("topk_prompt_logprobs", topk_prompt_logprobs),
            ("topk_sample_logprobs", topk_sample_logprobs),
            ("prompt_alt_tokens_k", prompt_alt_tokens_k),
        ):
            scoring.check_width(name, width)
        scoring.first_scored(prompt_length, prompt_logprobs_last_n, prompt_logprobs)
        if target_prompt_logprobs is not None:
            vocab = get_model_config(base_model).vocab_size
            scoring.check_targets(target_prompt_logprobs, prompt_length, vocab)

    def check_optimizer_config(self, config: Mapping[str, Any] | None) -> dict[str, Any]:
        """AdamW for None; {"type": "dimuon", "version": 1} for Dimuon."""
        return OptimizerChoice.parse(config).config()

    def optim_params(
        self, optimizer_config: Mapping[str, Any], fields: Mapping[str, Any]
    ) -> OptimizerParams:
        """AdamParams or DimuonParams, validated."""
        return OptimizerChoice.parse(optimizer_config).params_from(fields)

    def state_optimizer_config(self, optimizer_tensors: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """Dimuon state carries a marker; anything else is (possibly older) Adam state."""
        return OptimizerChoice(state_kind(optimizer_tensors)).config()

    def new_trainer(
        self,
        base_model: str,
        *,
        rank: int,
        seed: int | None,
        train_mlp: bool,
        train_attn: bool,
        train_unembed: bool,
        optimizer: Mapping[str, Any] | None = None,
    ) -> LoraTrainer:
        """A fresh LoRA training state on the base model."""
        return LoraTrainer(
            base_model,
            rank=rank,
            seed=seed,
            train_mlp=train_mlp,
            train_attn=train_attn,
            train_unembed=train_unembed,
            optimizer=optimizer,
        )

    def compile_custom_loss(
        self, name: str, inputs: Sequence[Mapping[str, Any]], graph: Mapping[str, Any]
    ) -> CustomLoss:
        """The checked graph (custom_loss.py)."""
        return CustomLoss.compile(name, inputs, graph)

    def new_stability_store(self) -> StabilityStore:
        """An empty store (one per session; records expire a day after their last use)."""
        return StabilityStore()

    def base_sampler(self, base_model: str) -> LoraSampler:
        """A sampler on the base weights alone."""
        return LoraSampler(SamplerWeights.base(base_model), prefix_cache=self._prefix_cache)

    def snapshot_sampler(self, snapshot: Any) -> LoraSampler:
        """A sampler on a trainer's snapshot (what LoraTrainer.snapshot returned)."""
        return LoraSampler(_snapshot(snapshot), prefix_cache=self._prefix_cache)

    def checkpoint_sampler(
        self, base_model: str, adapter: Mapping[str, np.ndarray], adapter_config: Mapping[str, Any]
    ) -> LoraSampler:
        """A sampler on checkpoint tensors and their adapter_config."""
        weights = SamplerWeights.from_checkpoint(base_model, adapter, adapter_config)
        return LoraSampler(weights, prefix_cache=self._prefix_cache)

    def inflight_target(self, snapshot: Any) -> InflightTarget:
        """A training run's in-flight slot, holding `snapshot` until the next publish."""
        return InflightTarget(_snapshot(snapshot))

    def inflight_sampler(self, target: Any) -> InflightSampler:
        """A sampler that reads `target` at every request."""
        if not isinstance(target, InflightTarget):
            raise TypeError(f"expected InflightTarget, got {type(target).__name__}")
        return InflightSampler(target, prefix_cache=self._prefix_cache)

    def export_external(
        self,
        directory: pathlib.Path,
        base_model: str,
        adapter: Mapping[str, np.ndarray],
        adapter_config: Mapping[str, Any],
    ) -> WrittenFiles:
        """A PEFT-style adapter directory (export.py)."""
        return export_peft_adapter(directory, base_model, adapter, adapter_config)

    def copy_checkpoint(self, source: pathlib.Path, destination: pathlib.Path) -> WrittenFiles:
        """Hard links where possible, else byte copies (export.py)."""
        return link_or_copy(source, destination)


def _spans(specs: Sequence[SpanSpec] | None) -> tuple[ProvenanceSpan, ...] | None:
    if specs is None:
        return None
    return tuple(
        ProvenanceSpan(kind, sid, int(offset), int(length)) for kind, sid, offset, length in specs
    )


def _snapshot(snapshot: Any) -> SamplerWeights:
    if not isinstance(snapshot, SamplerWeights):
        raise TypeError(f"expected SamplerWeights, got {type(snapshot).__name__}")
    return snapshot
