"""Base of every wire model: attrs classes that remember which fields were set.

A request carries only the fields its caller passed to the constructor (an explicit None
included), like the official SDK's exclude-unset dumps; fields left at their default stay off
the wire and the server applies its own defaults. Models built from JSON remember the keys the
JSON had. Attribute access always gives the value (the default when unset).

Declare a model with two decorators, `@wire` over `@attrs.frozen(kw_only=True)` (requests and
data) or `@attrs.define(kw_only=True)` (responses):

    @wire
    @attrs.frozen(kw_only=True)
    class AdamParams(WireModel):
        learning_rate: float = 0.0001
"""

from __future__ import annotations

import copy
import functools
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal, TypeVar

import attrs

from tinker.types._checks import Check, Invalid, compile_check

__all__ = ["WireModel", "fields_set", "wire"]

_M = TypeVar("_M", bound="WireModel")
_C = TypeVar("_C", bound=type)

# Per model class: field name -> check, built on first use (annotations may name later classes).
_CHECKS: dict[type, dict[str, Check]] = {}


class PydanticStyleDumps:
    """`model_dump` and `model_dump_json` as pydantic spells them, for both kinds of models."""

    __slots__ = ()

    def model_dump(
        self,
        *,
        mode: Literal["python", "json"] = "python",
        exclude_unset: bool = False,
        exclude_none: bool = False,
    ) -> dict[str, Any]:
        """This value as a dict of its wire keys, like pydantic's `model_dump` (nested models
        become dicts)."""
        from tinker import _wire

        dumped = _wire.dump_model(
            self, mode=mode, exclude_unset=exclude_unset, exclude_none=exclude_none
        )
        return typing.cast(dict[str, Any], dumped)

    def model_dump_json(self, *, exclude_unset: bool = False, exclude_none: bool = False) -> str:
        """This value as compact JSON text."""
        from tinker import _wire

        data = self.model_dump(mode="json", exclude_unset=exclude_unset, exclude_none=exclude_none)
        return _wire.dumps(data).decode("utf-8")


@attrs.define(kw_only=True)
class WireModel(PydanticStyleDumps):
    """Common behaviour of the wire models: set-field tracking and pydantic-style helpers."""

    _fields_set: frozenset[str] = attrs.field(
        init=False, factory=frozenset, eq=False, repr=False, hash=False
    )

    # Fields that are always sent even when left at their default (e.g. telemetry `event`).
    _always_sent: ClassVar[frozenset[str]] = frozenset()

    def _validate(self) -> None:
        """Cross-field checks of a model; runs after the per-field checks."""

    @classmethod
    def _wire_in(cls, data: Mapping[str, Any]) -> Mapping[str, Any]:
        """A JSON object as this model's fields (a model whose wire keys are not its field
        names renames them here)."""
        return data

    def _wire_out(self, out: dict[str, Any], modern: bool) -> dict[str, Any]:
        """This model's JSON object as the codec built it, rewritten where the key names or
        order differ by protocol era (`modern`: the 0.38 JSON form)."""
        return out

    @property
    def model_fields_set(self) -> frozenset[str]:
        """Names of the fields the caller set (or the JSON contained)."""
        return self._fields_set

    @classmethod
    def model_validate(cls: type[_M], obj: Any) -> _M:
        """Build this model from a JSON-like dict (unknown keys are ignored)."""
        if isinstance(obj, cls):
            return obj
        from tinker import _wire

        return _wire.structure(obj, cls)

    @classmethod
    def model_construct(
        cls: type[_M], _fields_set: frozenset[str] | None = None, **values: Any
    ) -> _M:
        """Build without any checks (trusted values); unset fields take their defaults."""
        obj = cls.__new__(cls)
        for field in attrs.fields(cls):
            if not field.init:
                continue
            if field.name in values:
                value = values[field.name]
            elif isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
                value = field.default.factory()
            elif field.default is attrs.NOTHING:
                raise TypeError(f"{cls.__name__}.model_construct() missing field {field.name!r}")
            else:
                value = field.default
            object.__setattr__(obj, field.name, value)
        given = frozenset(values) if _fields_set is None else frozenset(_fields_set)
        object.__setattr__(obj, "_fields_set", given | cls._always_sent)
        return obj

    def model_copy(self: _M, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> _M:
        """A copy with some fields replaced; replaced fields count as set."""
        clone = copy.deepcopy(self) if deep else copy.copy(self)
        if update:
            cls = type(self)
            checks = _checks_for(cls)
            fields = attrs.fields_dict(cls)
            for name, value in update.items():
                if name not in checks:
                    raise TypeError(f"{cls.__name__} has no field {name!r}")
                converter = fields[name].converter
                converted = converter(value) if callable(converter) else value
                object.__setattr__(clone, name, _run_check(cls, name, checks[name], converted))
            object.__setattr__(clone, "_fields_set", clone._fields_set | frozenset(update))
            clone._validate()
        return clone


def fields_set(obj: WireModel) -> frozenset[str]:
    """Names of the fields of `obj` that go on the wire (set explicitly or read from JSON)."""
    return obj._fields_set


def wire(cls: _C) -> _C:
    """Finish a wire model class: check set fields on construction and record their names."""
    generated_init: Callable[..., None] = cls.__dict__["__init__"]
    generated_setattr: Callable[..., None] = cls.__dict__.get("__setattr__", object.__setattr__)
    field_names = frozenset(a.name for a in attrs.fields(cls) if a.init)

    @functools.wraps(generated_init)
    def __init__(self: WireModel, **kwargs: Any) -> None:
        generated_init(self, **kwargs)
        _finish_init(self, kwargs)

    def __setattr__(self: WireModel, name: str, value: Any) -> None:
        generated_setattr(self, name, value)  # raises on frozen models
        if name in field_names:
            object.__setattr__(self, "_fields_set", self._fields_set | {name})

    cls.__init__ = __init__  # type: ignore[misc]
    cls.__setattr__ = __setattr__  # type: ignore[assignment]
    return cls


def _finish_init(obj: WireModel, given: Mapping[str, Any]) -> None:
    cls = type(obj)
    checks = _checks_for(cls)
    for name in given:
        value = getattr(obj, name)
        checked = _run_check(cls, name, checks[name], value)
        if checked is not value:
            object.__setattr__(obj, name, checked)
    object.__setattr__(obj, "_fields_set", frozenset(given) | cls._always_sent)
    obj._validate()


def _run_check(cls: type, name: str, check: Check, value: Any) -> Any:
    try:
        return check(value)
    except Invalid as exc:
        raise exc.kind(exc.message(f"{cls.__name__}.{name}")) from None


def _checks_for(cls: type) -> dict[str, Check]:
    checks = _CHECKS.get(cls)
    if checks is None:
        hints = typing.get_type_hints(cls)
        checks = {
            a.name: a.metadata.get("check") or compile_check(hints[a.name], _check_model)
            for a in attrs.fields(cls)
            if a.init
        }
        _CHECKS[cls] = checks
    return checks


def _check_model(model: Any, value: Any) -> Any:
    """Check a nested model value; a dict is decoded into the model (or union of models)."""
    if isinstance(model, type) and isinstance(value, model):
        return value
    if isinstance(value, Mapping):
        from tinker import _wire

        return _wire.structure_as(value, model)
    raise Invalid(getattr(model, "__name__", "a model"), value)
