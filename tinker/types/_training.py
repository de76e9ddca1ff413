"""Training requests and results: create_model, forward(_backward), optim_step, weights I/O."""

from __future__ import annotations

from typing import Any, Literal

import attrs

from tinker.types._base import WireModel, wire
from tinker.types._inputs import Datum, LossFnOutput
from tinker.types._losses import LossFnType

__all__ = [
    "AdamParams",
    "CreateModelRequest",
    "CreateModelResponse",
    "ForwardBackwardInput",
    "ForwardBackwardOutput",
    "ForwardBackwardRequest",
    "ForwardRequest",
    "GetInfoRequest",
    "GetInfoResponse",
    "LoadWeightsRequest",
    "LoadWeightsResponse",
    "LoraConfig",
    "ModelData",
    "OptimStepRequest",
    "OptimStepResponse",
    "SaveWeightsForSamplerRequest",
    "SaveWeightsForSamplerResponse",
    "SaveWeightsForSamplerResponseInternal",
    "SaveWeightsRequest",
    "SaveWeightsResponse",
    "UnloadModelRequest",
    "UnloadModelResponse",
]


@wire
@attrs.frozen(kw_only=True)
class LoraConfig(WireModel):
    """LoRA adapter settings of a new training run."""

    rank: int
    seed: int | None = None
    train_unembed: bool = True
    train_mlp: bool = True
    train_attn: bool = True

    def _validate(self) -> None:
        if self.rank <= 0:
            raise ValueError(f"LoraConfig.rank: must be positive, got {self.rank}")
        if not (self.train_unembed or self.train_mlp or self.train_attn):
            raise ValueError(
                "LoraConfig: at least one of train_unembed, train_mlp, train_attn must be true"
            )


@wire
@attrs.frozen(kw_only=True)
class CreateModelRequest(WireModel):
    """Body of POST /api/v1/create_model."""

    session_id: str
    model_seq_id: int
    base_model: str
    user_metadata: dict[str, Any] | None = None
    lora_config: LoraConfig | None = None
    type: Literal["create_model"] = "create_model"


@wire
@attrs.define(kw_only=True)
class CreateModelResponse(WireModel):
    """Result of the create_model future: the new training run's id."""

    model_id: str
    type: Literal["create_model"] = "create_model"


@wire
@attrs.frozen(kw_only=True)
class GetInfoRequest(WireModel):
    """Body of POST /api/v1/get_info."""

    model_id: str
    type: Literal["get_info"] = "get_info"


@wire
@attrs.define(kw_only=True)
class ModelData(WireModel):
    """Architecture facts of a training run's base model."""

    arch: str | None = None
    model_name: str | None = None
    tokenizer_id: str | None = None


@wire
@attrs.define(kw_only=True)
class GetInfoResponse(WireModel):
    """Answer of get_info."""

    type: Literal["get_info"] | None = None
    model_data: ModelData
    model_id: str
    is_lora: bool | None = None
    lora_rank: int | None = None
    model_name: str | None = None


@wire
@attrs.frozen(kw_only=True)
class ForwardBackwardInput(WireModel):
    """A batch and the loss to compute on it."""

    data: list[Datum]
    loss_fn: LossFnType
    loss_fn_config: dict[str, float] | None = None


@wire
@attrs.frozen(kw_only=True)
class ForwardRequest(WireModel):
    """Body of POST /api/v1/forward (loss and outputs, no gradient)."""

    forward_input: ForwardBackwardInput
    model_id: str
    seq_id: int | None = None


@wire
@attrs.frozen(kw_only=True)
class ForwardBackwardRequest(WireModel):
    """Body of POST /api/v1/forward_backward (loss, outputs and accumulated gradients)."""

    forward_backward_input: ForwardBackwardInput
    model_id: str
    seq_id: int | None = None


@wire
@attrs.define(kw_only=True)
class ForwardBackwardOutput(WireModel):
    """Result of forward/forward_backward: one output dict per datum, plus metrics."""

    loss_fn_output_type: str
    loss_fn_outputs: list[LossFnOutput]
    metrics: dict[str, float]


@wire
@attrs.frozen(kw_only=True)
class AdamParams(WireModel):
    """Adam(W) settings of one optimizer step; only the fields set are sent."""

    learning_rate: float = 0.0001
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-12
    weight_decay: float = 0.0
    grad_clip_norm: float = 0.0


@wire
@attrs.frozen(kw_only=True)
class OptimStepRequest(WireModel):
    """Body of POST /api/v1/optim_step."""

    adam_params: AdamParams
    model_id: str
    seq_id: int | None = None
    type: Literal["optim_step"] = "optim_step"


@wire
@attrs.define(kw_only=True)
class OptimStepResponse(WireModel):
    """Result of optim_step (metrics are optional)."""

    metrics: dict[str, float] | None = None


@wire
@attrs.frozen(kw_only=True)
class SaveWeightsRequest(WireModel):
    """Body of POST /api/v1/save_weights; `path` is the checkpoint name."""

    model_id: str
    path: str | None = None
    seq_id: int | None = None
    ttl_seconds: int | None = None
    type: Literal["save_weights"] = "save_weights"


@wire
@attrs.define(kw_only=True)
class SaveWeightsResponse(WireModel):
    """Result of save_weights: the checkpoint's tinker:// path."""

    path: str
    type: Literal["save_weights"] | None = None


@wire
@attrs.frozen(kw_only=True)
class LoadWeightsRequest(WireModel):
    """Body of POST /api/v1/load_weights; `path` is a full tinker:// path.

    Two forms: onto an existing model (`model_id`, `seq_id`), or creating the model
    `<session_id>:train:<model_seq_id>` from the checkpoint (`session_id`, `model_seq_id`;
    `base_model`, `user_metadata` and, without the optimizer state, `optimizer_config` may
    be given).
    """

    model_id: str | None = None
    path: str
    optimizer: bool = False
    seq_id: int | None = None
    session_id: str | None = None
    model_seq_id: int | None = None
    base_model: str | None = None
    user_metadata: dict[str, Any] | None = None
    optimizer_config: dict[str, Any] | None = None
    weights_access_token: str | None = None
    type: Literal["load_weights"] = "load_weights"

    def _validate(self) -> None:
        onto = self.model_id is not None
        if onto and (self.session_id is not None or self.model_seq_id is not None):
            raise ValueError(
                "LoadWeightsRequest takes model_id or session_id/model_seq_id, not both"
            )
        if not onto and (self.session_id is None or self.model_seq_id is None):
            raise ValueError(
                "LoadWeightsRequest needs model_id (load onto a model) or session_id and "
                "model_seq_id (create the model from the checkpoint)"
            )


@wire
@attrs.define(kw_only=True)
class LoadWeightsResponse(WireModel):
    """Result of load_weights (`model_id`: the model a create-via-load made)."""

    path: str | None = None
    model_id: str | None = None
    type: Literal["load_weights"] | None = None


@wire
@attrs.frozen(kw_only=True)
class SaveWeightsForSamplerRequest(WireModel):
    """Body of POST /api/v1/save_weights_for_sampler (named, or ephemeral with a seq id)."""

    model_id: str
    path: str | None = None
    sampling_session_seq_id: int | None = None
    seq_id: int | None = None
    ttl_seconds: int | None = None
    type: Literal["save_weights_for_sampler"] = "save_weights_for_sampler"


@wire
@attrs.define(kw_only=True)
class SaveWeightsForSamplerResponseInternal(WireModel):
    """Result of save_weights_for_sampler as it travels: a path or a sampling session."""

    path: str | None = None
    sampling_session_id: str | None = None
    type: Literal["save_weights_for_sampler"] | None = None


@wire
@attrs.define(kw_only=True)
class SaveWeightsForSamplerResponse(WireModel):
    """What `save_weights_for_sampler` returns to users: the sampler checkpoint's path."""

    path: str
    type: Literal["save_weights_for_sampler"] | None = None


@wire
@attrs.frozen(kw_only=True)
class UnloadModelRequest(WireModel):
    """Body of POST /api/v1/unload_model."""

    model_id: str
    type: Literal["unload_model"] = "unload_model"


@wire
@attrs.define(kw_only=True)
class UnloadModelResponse(WireModel):
    """Result of unload_model."""

    model_id: str
    type: Literal["unload_model"] | None = None
