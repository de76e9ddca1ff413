"""The seam between the halves: what the server's engine needs from compute, and its numpy
implementation.

The protocols (Backend, Trainer, Sampler and their results) and DEFAULT_MAX_TOKENS (what a
sample without max_tokens generates, which the server's sample limits count) are all the
server knows of compute; `NumpyBackend` implements them over the trainer, generation and
catalogue modules. The server's tests plug in a small fake that follows the same contract.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import attrs
import numpy as np

from tinker.local.compute.catalogue import LOCAL_MODELS, TOKENIZER_DIR, get_model_config
from tinker.local.compute.errors import UserInputError
from tinker.local.compute.generation import DEFAULT_MAX_TOKENS as DEFAULT_MAX_TOKENS
from tinker.local.compute.generation import LoraSampler, SamplerWeights
from tinker.local.compute.trainer import DatumArrays, LoraTrainer

ARCH = "tinker-local-decoder"


@attrs.frozen
class ModelInfo:
    """Catalogue entry for one base model."""

    name: str
    arch: str
    tokenizer_id: str


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
        self, data: Sequence[Any], loss_fn: str, loss_fn_config: Mapping[str, float] | None
    ) -> LossOutput: ...

    def forward_backward(
        self, data: Sequence[Any], loss_fn: str, loss_fn_config: Mapping[str, float] | None
    ) -> LossOutput: ...

    def optim_step(
        self,
        *,
        learning_rate: float = ...,
        beta1: float = ...,
        beta2: float = ...,
        eps: float = ...,
        weight_decay: float = ...,
        grad_clip_norm: float = ...,
    ) -> dict[str, float] | None: ...

    def adapter_tensors(self) -> dict[str, np.ndarray]: ...
    def optimizer_tensors(self) -> dict[str, np.ndarray]: ...
    def load(
        self, adapter: Mapping[str, np.ndarray], optimizer: Mapping[str, np.ndarray] | None
    ) -> None: ...
    def adapter_config(self) -> dict[str, Any]: ...
    def snapshot(self) -> Any: ...


class SampledSequence(Protocol):
    """One generated continuation."""

    @property
    def tokens(self) -> Sequence[int]: ...
    @property
    def logprobs(self) -> Sequence[float]: ...
    @property
    def stop_reason(self) -> str: ...


class SampleOutput(Protocol):
    """All continuations of one prompt plus optional prompt logprobs."""

    @property
    def sequences(self) -> Sequence[SampledSequence]: ...
    @property
    def prompt_logprobs(self) -> Sequence[float | None] | None: ...
    @property
    def topk_prompt_logprobs(self) -> Sequence[Sequence[tuple[int, float]] | None] | None: ...


class Sampler(Protocol):
    """Generates tokens from fixed weights; `sample` may be called from several threads."""

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
    ) -> SampleOutput: ...


class Backend(Protocol):
    """Model catalogue and factories for trainers and samplers."""

    @property
    def user_errors(self) -> tuple[type[BaseException], ...]:
        """Exception classes that mean bad client input (failed futures of category "user")."""
        ...

    def model_names(self) -> list[str]: ...

    def model_info(self, name: str) -> ModelInfo:
        """Catalogue entry; raises one of `user_errors` (listing the known names) if unknown."""
        ...

    def make_datum(self, tokens: np.ndarray, inputs: Mapping[str, np.ndarray]) -> Any: ...

    def new_trainer(
        self,
        base_model: str,
        *,
        rank: int,
        seed: int | None,
        train_mlp: bool,
        train_attn: bool,
        train_unembed: bool,
    ) -> Trainer: ...

    def base_sampler(self, base_model: str) -> Sampler: ...
    def snapshot_sampler(self, snapshot: Any) -> Sampler: ...
    def checkpoint_sampler(
        self, base_model: str, adapter: Mapping[str, np.ndarray], adapter_config: Mapping[str, Any]
    ) -> Sampler: ...


class NumpyBackend:
    """Backend protocol over the numpy model of this package."""

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
        return ModelInfo(config.name, ARCH, str(TOKENIZER_DIR))

    def make_datum(self, tokens: np.ndarray, inputs: Mapping[str, np.ndarray]) -> DatumArrays:
        """The trainer's datum: tokens and loss inputs as arrays."""
        return DatumArrays(tokens=tokens, inputs=dict(inputs))

    def new_trainer(
        self,
        base_model: str,
        *,
        rank: int,
        seed: int | None,
        train_mlp: bool,
        train_attn: bool,
        train_unembed: bool,
    ) -> LoraTrainer:
        """A fresh LoRA training state on the base model."""
        return LoraTrainer(
            base_model,
            rank=rank,
            seed=seed,
            train_mlp=train_mlp,
            train_attn=train_attn,
            train_unembed=train_unembed,
        )

    def base_sampler(self, base_model: str) -> LoraSampler:
        """A sampler on the base weights alone."""
        return LoraSampler(SamplerWeights.base(base_model))

    def snapshot_sampler(self, snapshot: Any) -> LoraSampler:
        """A sampler on a trainer's snapshot (what LoraTrainer.snapshot returned)."""
        if not isinstance(snapshot, SamplerWeights):
            raise TypeError(f"expected SamplerWeights, got {type(snapshot).__name__}")
        return LoraSampler(snapshot)

    def checkpoint_sampler(
        self, base_model: str, adapter: Mapping[str, np.ndarray], adapter_config: Mapping[str, Any]
    ) -> LoraSampler:
        """A sampler on checkpoint tensors and their adapter_config."""
        return LoraSampler(SamplerWeights.from_checkpoint(base_model, adapter, adapter_config))
