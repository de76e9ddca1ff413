"""Training requests and results: create_model, forward(_backward), optim_step, weights I/O."""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs

from tinker.types._base import WireModel, _finish_init, wire
from tinker.types._data import DataModel, data_model
from tinker.types._inputs import Datum, LossFnOutput
from tinker.types._losses import LOSS_FN_TYPES, LossFnType
from tinker.types._optimizers import (
    AdamOptimizerConfig,
    AdamParams,
    OptimizerConfig,
    OptimParams,
    OptimParamsBase,
)
from tinker.types._paths import ParsedCheckpointTinkerPath
from tinker.types._tensors import TensorData

SamplingClientKind = Literal["snapshot", "inflight"]
CONSOLE_URL = "https://tinker.thinkingmachines.ai"

__all__ = [
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
    "SamplingClientKind",
    "SaveWeightsExternalRequest",
    "SaveWeightsExternalResponse",
    "SaveWeightsExternalResponseInternal",
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
    optimizer_config: OptimizerConfig = attrs.Factory(AdamOptimizerConfig)
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
    optimizer_config: OptimizerConfig = attrs.Factory(AdamOptimizerConfig)
    is_lora: bool | None = None
    lora_rank: int | None = None
    model_name: str | None = None


@data_model
@dataclasses.dataclass(frozen=True)
class ForwardBackwardInput(DataModel):
    """A batch and the loss to compute on it (config values are numbers or strings)."""

    _json_keys = ("data", "loss_fn", "loss_fn_config")

    data: list[Datum]
    loss_fn: LossFnType
    loss_fn_config: Mapping[str, float | str] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.data, (str, bytes)) or not isinstance(self.data, Sequence):
            raise TypeError(
                f"ForwardBackwardInput.data: expected a list of Datum, got {self.data!r}"
            )
        data = [_datum(index, item) for index, item in enumerate(self.data)]
        object.__setattr__(self, "data", data)
        if not isinstance(self.loss_fn, str):
            raise TypeError(f"ForwardBackwardInput.loss_fn: expected a str, got {self.loss_fn!r}")
        if self.loss_fn not in LOSS_FN_TYPES:
            raise ValueError(
                f"ForwardBackwardInput.loss_fn: expected one of {', '.join(LOSS_FN_TYPES)}, "
                f"got {self.loss_fn!r}"
            )
        config = self.loss_fn_config
        if config is not None:
            if not isinstance(config, Mapping):
                raise TypeError(
                    f"ForwardBackwardInput.loss_fn_config: expected a dict, got {config!r}"
                )
            for key, value in config.items():
                if not isinstance(key, str) or not isinstance(value, (int, float, str)):
                    raise TypeError(
                        f"ForwardBackwardInput.loss_fn_config[{key!r}]: expected a number or a "
                        f"str, got {value!r}"
                    )


def _datum(index: int, value: Any) -> Datum:
    if isinstance(value, Datum):
        return value
    if isinstance(value, Mapping):
        return Datum.model_validate(value)
    raise TypeError(f"ForwardBackwardInput.data[{index}]: expected a Datum, got {value!r}")


def _nested(cls: type[Any], owner: str, value: Any) -> Any:
    if isinstance(value, Mapping):
        return cls.model_validate(value)
    if not isinstance(value, cls):
        raise TypeError(f"{owner}: expected a {cls.__name__}, got {value!r}")
    return value


@data_model
@dataclasses.dataclass(frozen=True)
class ForwardRequest(DataModel):
    """Body of POST /api/v1/forward (loss and outputs, no gradient)."""

    _json_keys = ("forward_input", "model_id", "seq_id")

    forward_input: ForwardBackwardInput
    model_id: str
    seq_id: int | None = None

    def __post_init__(self) -> None:
        value = _nested(ForwardBackwardInput, "ForwardRequest.forward_input", self.forward_input)
        object.__setattr__(self, "forward_input", value)


@data_model
@dataclasses.dataclass(frozen=True)
class ForwardBackwardRequest(DataModel):
    """Body of POST /api/v1/forward_backward (loss, outputs and accumulated gradients)."""

    _json_keys = ("forward_backward_input", "model_id", "seq_id")

    forward_backward_input: ForwardBackwardInput
    model_id: str
    seq_id: int | None = None

    def __post_init__(self) -> None:
        value = _nested(
            ForwardBackwardInput,
            "ForwardBackwardRequest.forward_backward_input",
            self.forward_backward_input,
        )
        object.__setattr__(self, "forward_backward_input", value)


@data_model
@dataclasses.dataclass(frozen=True)
class ForwardBackwardOutput(DataModel):
    """Result of forward/forward_backward: one output dict per datum, plus metrics."""

    _json_keys = ("loss_fn_output_type", "loss_fn_outputs", "metrics")

    loss_fn_output_type: str
    loss_fn_outputs: list[LossFnOutput]
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        outputs = []
        for index, output in enumerate(self.loss_fn_outputs):
            if not isinstance(output, Mapping):
                raise TypeError(f"ForwardBackwardOutput.loss_fn_outputs[{index}]: expected a dict")
            outputs.append(
                {
                    name: value
                    if isinstance(value, TensorData)
                    else TensorData.model_validate(value)
                    for name, value in output.items()
                }
            )
        object.__setattr__(self, "loss_fn_outputs", outputs)
        object.__setattr__(self, "metrics", dict(self.metrics))


@attrs.frozen(kw_only=True, init=False)
class OptimStepRequest(WireModel):
    """Body of POST /api/v1/optim_step; `optim_params` travels as `adam_params` (AdamParams)
    or `optimizer_params` (any other family). The constructor takes either name too."""

    optim_params: OptimParams
    model_id: str
    seq_id: int | None = None
    type: Literal["optim_step"] = "optim_step"

    def __init__(
        self,
        *,
        model_id: str,
        optim_params: OptimParams | None = None,
        adam_params: AdamParams | None = None,
        optimizer_params: OptimParams | None = None,
        **rest: Any,
    ) -> None:
        given = [p for p in (optim_params, adam_params, optimizer_params) if p is not None]
        if len(given) != 1:
            raise ValueError(
                "OptimStepRequest takes exactly one of optim_params, adam_params and "
                f"optimizer_params, got {len(given)}"
            )
        values = {"optim_params": given[0], "model_id": model_id, **rest}
        self.__attrs_init__(**values)
        _finish_init(self, values)

    def _validate(self) -> None:
        if not isinstance(self.optim_params, (AdamParams, OptimParamsBase)):
            raise TypeError(
                "OptimStepRequest.optim_params: expected AdamParams or another optimizer's "
                f"params, got {self.optim_params!r}"
            )

    @classmethod
    def _wire_in(cls, data: Mapping[str, Any]) -> Mapping[str, Any]:
        fields = dict(data)
        if "adam_params" in fields:
            adam = fields.pop("adam_params")
            fields["optim_params"] = adam if adam is None else AdamParams.model_validate(adam)
        if "optimizer_params" in fields:
            fields["optim_params"] = fields.pop("optimizer_params")
        return fields

    def _wire_out(self, out: dict[str, Any], modern: bool) -> dict[str, Any]:
        params = {self.params_key: out.pop("optim_params")}
        return {**out, **params} if modern else {**params, **out}

    @property
    def adam_params(self) -> AdamParams | None:
        """The params when they are AdamParams (the 0.5.1 field), else None."""
        return self.optim_params if isinstance(self.optim_params, AdamParams) else None

    @property
    def params_key(self) -> str:
        """The wire key of the params: adam_params or optimizer_params."""
        return "adam_params" if isinstance(self.optim_params, AdamParams) else "optimizer_params"


@wire
@attrs.define(kw_only=True)
class OptimStepResponse(WireModel):
    """Result of optim_step (metrics are optional)."""

    metrics: dict[str, float] | None = None


def _console_checkpoint_url(tinker_path: str) -> str:
    parsed = ParsedCheckpointTinkerPath.from_tinker_path(tinker_path)
    run = urllib.parse.quote(parsed.training_run_id, safe="")
    checkpoint = urllib.parse.quote(parsed.checkpoint_id, safe="")
    return f"{CONSOLE_URL}/checkpoints/{run}/{checkpoint}"


@wire
@attrs.frozen(kw_only=True)
class SaveWeightsRequest(WireModel):
    """Body of POST /api/v1/save_weights; `path` is the checkpoint name. `overwrite` replaces
    a same-named checkpoint (and its whole user_metadata)."""

    model_id: str
    path: str | None = None
    seq_id: int | None = None
    ttl_seconds: int | None = None
    overwrite: bool = False
    user_metadata: dict[str, str] | None = None
    type: Literal["save_weights"] = "save_weights"


@wire
@attrs.define(kw_only=True)
class SaveWeightsResponse(WireModel):
    """Result of save_weights: the checkpoint's tinker:// path."""

    path: str
    type: Literal["save_weights"] | None = None

    def get_console_url(self) -> str:
        """The checkpoint's page in the Tinker console."""
        return _console_checkpoint_url(self.path)


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
    optimizer_config: OptimizerConfig | None = None
    weights_access_token: str | None = None
    type: Literal["load_weights"] = "load_weights"

    # The 0.38 SDK's key order (the 0.5.1 one is the field order).
    _MODERN_ORDER = (
        "model_id",
        "seq_id",
        "session_id",
        "model_seq_id",
        "base_model",
        "user_metadata",
        "path",
        "optimizer",
        "optimizer_config",
        "weights_access_token",
        "type",
    )

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

    def _wire_out(self, out: dict[str, Any], modern: bool) -> dict[str, Any]:
        if not modern:
            return out
        return {key: out[key] for key in self._MODERN_ORDER if key in out}


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
    """Body of POST /api/v1/save_weights_for_sampler (named, or ephemeral with a seq id;
    `kind` "inflight" publishes to the model's shared, updating sampler target)."""

    model_id: str
    path: str | None = None
    sampling_session_seq_id: int | None = None
    kind: SamplingClientKind = "snapshot"
    seq_id: int | None = None
    ttl_seconds: int | None = None
    user_metadata: dict[str, str] | None = None
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

    def get_console_url(self) -> str:
        """The checkpoint's page in the Tinker console."""
        return _console_checkpoint_url(self.path)

    def get_playground_url(self) -> str:
        """The console playground, sampling from this checkpoint."""
        quoted = urllib.parse.quote(self.path, safe="")
        return f"{CONSOLE_URL}/playground?mode=checkpoint&checkpoint={quoted}"


@wire
@attrs.frozen(kw_only=True)
class SaveWeightsExternalRequest(WireModel):
    """Body of POST /api/v1/save_weights_external: export in an external (Hugging Face)
    format to tinker://<model_id>/external_weights/<path>, age-encrypted to the recipients."""

    model_id: str
    path: str
    seq_id: int | None = None
    ttl_seconds: int | None = None
    age_encryption_recipients: list[str] | None = None
    type: Literal["save_weights_external"] = "save_weights_external"

    def _validate(self) -> None:
        recipients = self.age_encryption_recipients
        if recipients is not None and len(recipients) > 10:
            raise ValueError(
                "SaveWeightsExternalRequest.age_encryption_recipients: at most 10, "
                f"got {len(recipients)}"
            )


@wire
@attrs.define(kw_only=True)
class SaveWeightsExternalResponseInternal(WireModel):
    """Result of save_weights_external as it travels (with the export's size)."""

    path: str | None = None
    size_bytes: int | None = None
    type: Literal["save_weights_external"] | None = None


@wire
@attrs.define(kw_only=True)
class SaveWeightsExternalResponse(WireModel):
    """What `save_weights_external` returns: the external checkpoint's tinker:// path."""

    path: str
    type: Literal["save_weights_external"] | None = None


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
