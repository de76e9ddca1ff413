"""Optimizers: the choice made at model creation (AdamW or Dimuon) and per-step parameters.

`OptimizerConfig` travels in create_model, load_weights and get_info answers; `OptimParams`
in optim_step (as `adam_params` for AdamParams, `optimizer_params` for any other family). The
two open bases keep unknown keys, so a server's newer optimizer still reads and round-trips.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal, Union

import attrs

from tinker.types._base import WireModel, wire

__all__ = [
    "AdamOptimizerConfig",
    "AdamParams",
    "DimuonOptimizerConfig",
    "DimuonParams",
    "OptimParams",
    "OptimParamsBase",
    "OptimizerConfig",
    "OptimizerConfigBase",
    "is_open_model",
]


class _OpenModel(WireModel):
    """A model with a string `type` that keeps every other key it is given (readable as
    attributes), like a pydantic model with extra fields allowed. `type` is always sent: it
    tells the members of the optimizer unions apart."""

    _always_sent: ClassVar[frozenset[str]] = frozenset({"type"})

    type: str
    _extra: dict[str, Any]

    def __init__(self, *, type: str, **extra: Any) -> None:
        if not isinstance(type, str) or not type:
            raise ValueError(
                f"{self.__class__.__name__}.type: must be a non-empty str, got {type!r}"
            )
        object.__setattr__(self, "type", type)
        object.__setattr__(self, "_extra", dict(extra))
        object.__setattr__(self, "_fields_set", frozenset({"type", *extra}))

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("_"):
            extra = self._extra
            if name in extra:
                return extra[name]
        raise AttributeError(f"{self.__class__.__name__!r} object has no attribute {name!r}")

    def __repr__(self) -> str:
        items = ", ".join(f"{k}={v!r}" for k, v in {"type": self.type, **self._extra}.items())
        return f"{self.__class__.__name__}({items})"

    @property
    def model_extra(self) -> dict[str, Any]:
        """The keys besides `type`."""
        return dict(self._extra)


@attrs.frozen(kw_only=True, init=False, repr=False)
class OptimizerConfigBase(_OpenModel):
    """Base of every optimizer choice: a `type` and whatever else that optimizer takes."""

    type: str
    _extra: dict[str, Any] = attrs.field(init=False, factory=dict, repr=False)


@attrs.frozen(kw_only=True, init=False, repr=False)
class OptimParamsBase(_OpenModel):
    """Base of the per-step parameters of optimizers other than Adam."""

    type: str
    _extra: dict[str, Any] = attrs.field(init=False, factory=dict, repr=False)


@wire
@attrs.frozen(kw_only=True)
class AdamOptimizerConfig(OptimizerConfigBase):
    """AdamW (the default everywhere): decoupled weight decay, per-step `AdamParams`."""

    type: Literal["adamw"] = "adamw"


@wire
@attrs.frozen(kw_only=True)
class DimuonOptimizerConfig(OptimizerConfigBase):
    """Dimuon; its per-step parameters are `DimuonParams`."""

    type: Literal["dimuon"] = "dimuon"
    version: Literal[1] = 1


OptimizerConfig = Union[AdamOptimizerConfig, DimuonOptimizerConfig, OptimizerConfigBase]


def is_open_model(tp: Any) -> bool:
    """Whether `tp` keeps unknown keys (an open base, not one of its strict subclasses)."""
    return (
        isinstance(tp, type) and issubclass(tp, _OpenModel) and tp.__init__ is _OpenModel.__init__
    )


def _finite(cls: str, name: str, value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{cls}.{name}: must be a finite number, got {value}")


@wire
@attrs.frozen(kw_only=True)
class AdamParams(WireModel):
    """Adam(W) settings of one optimizer step; weight decay is decoupled (AdamW) and
    `grad_clip_norm` caps the global gradient norm (0 = no clipping)."""

    learning_rate: float = 0.0001
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-12
    weight_decay: float = 0.0
    grad_clip_norm: float = 0.0


@wire
@attrs.frozen(kw_only=True)
class DimuonParams(OptimParamsBase):
    """Dimuon settings of one optimizer step: `learning_rate` (required, >= 0), momentum
    `beta1` in [0, 1), `grad_clip_norm` (<= 0 disables); NaN and infinity are refused."""

    type: Literal["dimuon"] = "dimuon"
    learning_rate: float
    grad_clip_norm: float = 0.0
    beta1: float = 0.9

    def _validate(self) -> None:
        for name in ("learning_rate", "grad_clip_norm", "beta1"):
            _finite("DimuonParams", name, getattr(self, name))
        if self.learning_rate < 0:
            raise ValueError(f"DimuonParams.learning_rate: must be >= 0, got {self.learning_rate}")
        if not 0 <= self.beta1 < 1:
            raise ValueError(f"DimuonParams.beta1: must be in [0, 1), got {self.beta1}")


OptimParams = Union[AdamParams, DimuonParams, OptimParamsBase]
