"""Which optimizer a training run uses: AdamW (the default) or Dimuon, fixed at model creation.

Parses the wire's optimizer_config ({"type": "adamw"} or {"type": "dimuon", "version": 1}),
builds the optimizer state, checks that each optim_step's parameters belong to that family,
and tells the two families' checkpointed state tensors apart (Adam state has no marker, so
every checkpoint written before Dimuon existed loads as Adam state).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any, Protocol

import attrs
import numpy as np
import numpy.typing as npt

from tinker.local.compute.dimuon import MOMENTUM, VERSION, VERSION_KEY, Dimuon, DimuonParams
from tinker.local.compute.errors import UserInputError
from tinker.local.compute.optimizers import ADAM_MOMENTS, STEP_KEY, Adam, AdamParams

Array = npt.NDArray[Any]

ADAMW = "adamw"
DIMUON = "dimuon"
OptimizerParams = AdamParams | DimuonParams
_NAMES = {ADAMW: "AdamW", DIMUON: "Dimuon"}
_PARAMS = {ADAMW: AdamParams, DIMUON: DimuonParams}


class OptimizerState(Protocol):
    """What the trainer needs of an optimizer (Adam and Dimuon both provide it)."""

    step_count: int

    def step(
        self, params: MutableMapping[str, Array], grads: MutableMapping[str, Array], hp: Any
    ) -> dict[str, float] | None: ...
    def state_tensors(self) -> dict[str, Array]: ...
    def load_state(self, state: Mapping[str, Array]) -> None: ...


@attrs.frozen
class OptimizerChoice:
    """One optimizer family ("adamw" or "dimuon")."""

    kind: str = ADAMW

    @classmethod
    def parse(cls, config: Mapping[str, Any] | str | None) -> OptimizerChoice:
        """From an optimizer_config object (or its type string); None means AdamW."""
        if config is None:
            return cls(ADAMW)
        if isinstance(config, str):
            config = {"type": config}
        kind = config.get("type")
        if kind not in _NAMES:
            raise UserInputError(
                f"optimizer type {kind!r} is not supported; supported: {', '.join(_NAMES)}"
            )
        extra = sorted(set(config) - {"type", "version"})
        if extra or (kind == ADAMW and "version" in config):
            raise UserInputError(f"optimizer_config for {kind!r} has unknown keys {extra}")
        if kind == DIMUON and config.get("version", VERSION) != VERSION:
            raise UserInputError(
                f"dimuon optimizer version {config.get('version')!r} is not supported "
                f"(supported: {VERSION})"
            )
        return cls(kind)

    @property
    def display_name(self) -> str:
        """AdamW or Dimuon."""
        return _NAMES[self.kind]

    def config(self) -> dict[str, Any]:
        """The optimizer_config object for GetInfoResponse / WeightsInfoResponse."""
        return {"type": DIMUON, "version": VERSION} if self.kind == DIMUON else {"type": ADAMW}

    def params_from(self, fields: Mapping[str, Any]) -> OptimizerParams:
        """This family's per-step parameters from wire fields (adam_params or
        optimizer_params); unknown fields, a wrong `type` and bad values are user errors."""
        cls = _PARAMS[self.kind]
        given = dict(fields)
        kind = given.pop("type", self.kind)
        if kind != self.kind:
            raise UserInputError(
                f"optimizer params of type {kind!r} do not match this run's optimizer "
                f"{self.display_name} ({self.kind!r})"
            )
        known = set(attrs.fields_dict(cls))
        unknown = sorted(set(given) - known)
        if unknown:
            raise UserInputError(
                f"{cls.__name__} has no field(s) {unknown} (fields: {', '.join(sorted(known))})"
            )
        for key, value in given.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UserInputError(f"{cls.__name__}.{key} must be a number, got {value!r}")
        if self.kind == DIMUON and "learning_rate" not in given:
            raise UserInputError("DimuonParams.learning_rate is required")
        params: OptimizerParams = cls(**{k: float(v) for k, v in given.items()})
        params.validate()
        return params

    def new_state(self, params: Mapping[str, Array]) -> OptimizerState:
        """Fresh optimizer state for these parameters."""
        return Dimuon(params) if self.kind == DIMUON else Adam(params)

    def check_params(self, params: object) -> None:
        """UserInputError unless `params` is this family's per-step parameter type."""
        expected = _PARAMS[self.kind]
        if isinstance(params, expected):
            return
        given = next((k for k, t in _PARAMS.items() if isinstance(params, t)), None)
        if given is None:
            raise UserInputError(
                f"optim_step expects {expected.__name__}, got {type(params).__name__}"
            )
        raise UserInputError(
            f"this training run uses the {self.display_name} optimizer (chosen at creation); "
            f"optim_step got {_NAMES[given]} parameters ({expected.__name__} expected)"
        )

    def state_shapes(self, param_shapes: Mapping[str, tuple[int, ...]]) -> dict[str, Any]:
        """Expected state tensor shapes, the step counter and marker excluded."""
        moments = (MOMENTUM,) if self.kind == DIMUON else ADAM_MOMENTS
        return {f"{n}.{m}": s for n, s in param_shapes.items() for m in moments}

    def check_state_kind(self, state: Mapping[str, Array]) -> None:
        """UserInputError when checkpointed state belongs to the other family (or carries a
        Dimuon marker of an unknown version)."""
        found = state_kind(state.keys())
        if found == DIMUON:
            marker = np.asarray(state[VERSION_KEY])
            if (
                marker.size != 1
                or not np.issubdtype(marker.dtype, np.integer)
                or int(marker.ravel()[0]) != VERSION
            ):
                raise UserInputError(f"optimizer state has an unsupported {VERSION_KEY!r}")
        if found != self.kind:
            raise UserInputError(
                f"the checkpoint's optimizer state is {_NAMES[found]} state, but this training "
                f"run uses {self.display_name}; load the weights without the optimizer state"
            )

    @staticmethod
    def bookkeeping_keys() -> frozenset[str]:
        """State keys that are not per-parameter tensors."""
        return frozenset({STEP_KEY, VERSION_KEY})


def state_kind(keys: Iterable[str]) -> str:
    """ "dimuon" for state tensors carrying the Dimuon marker, else "adamw" (older format)."""
    return DIMUON if VERSION_KEY in set(keys) else ADAMW
