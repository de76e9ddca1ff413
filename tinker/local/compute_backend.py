"""The real backend: the numpy LoRA trainer, sampler and model catalogue of tinker.local.

A thin adapter from the engine's Backend protocol to trainer.py, sampler.py and models.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from tinker.local.backend import ModelInfo
from tinker.local.errors import UserInputError
from tinker.local.models import LOCAL_MODELS, TOKENIZER_DIR, get_model_config
from tinker.local.sampler import Sampler, SamplerWeights
from tinker.local.trainer import DatumArrays, LoraTrainer

ARCH = "tinker-local-decoder"


class ComputeBackend:
    """Backend protocol over the numpy model of this package."""

    @property
    def user_errors(self) -> tuple[type[BaseException], ...]:
        return (UserInputError,)

    def model_names(self) -> list[str]:
        return sorted(LOCAL_MODELS)

    def model_info(self, name: str) -> ModelInfo:
        config = get_model_config(name)
        return ModelInfo(config.name, str(getattr(config, "arch", ARCH)), str(TOKENIZER_DIR))

    def make_datum(self, tokens: np.ndarray, inputs: Mapping[str, np.ndarray]) -> DatumArrays:
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
        return LoraTrainer(
            base_model,
            rank=rank,
            seed=seed,
            train_mlp=train_mlp,
            train_attn=train_attn,
            train_unembed=train_unembed,
        )

    def base_sampler(self, base_model: str) -> Sampler:
        return Sampler(SamplerWeights.base(base_model))

    def snapshot_sampler(self, snapshot: Any) -> Sampler:
        if not isinstance(snapshot, SamplerWeights):
            raise TypeError(f"expected SamplerWeights, got {type(snapshot).__name__}")
        return Sampler(snapshot)

    def checkpoint_sampler(
        self, base_model: str, adapter: Mapping[str, np.ndarray], adapter_config: Mapping[str, Any]
    ) -> Sampler:
        return Sampler(SamplerWeights.from_checkpoint(base_model, adapter, adapter_config))
