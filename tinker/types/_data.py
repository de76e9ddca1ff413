"""Base of the wire types that are frozen stdlib dataclasses (tensors, datums, results).

These types are dataclasses, as in the official SDK 0.38, so `dataclasses.replace`, `fields`
and `asdict` work; they keep the pydantic-style helpers of 0.5.1 (`model_dump`, `model_copy`,
`model_validate`, `model_fields_set`) and remember which wire keys their caller set, so the
0.5.1 JSON era sends exactly those. Declare one with `@data_model` over
`@dataclasses.dataclass(frozen=True)`:

    @data_model
    @dataclasses.dataclass(frozen=True)
    class ForwardRequest(DataModel):
        _json_keys = ("forward_input", "model_id", "seq_id")
        forward_input: ForwardBackwardInput
        ...

Class attributes say how the JSON form looks: `_json_keys` (wire keys, in wire order; each
read with `getattr` and passed to the constructor by name when reading JSON), `_json_aliases`
(constructor parameter -> wire key where they differ), `_json_always` (keys sent even when
unset), `_json_optional` (keys sent only when they hold a value), `_json_tag` (a wrapping key).
Constructors accept the JSON forms of nested values (dicts), so reading JSON is one call.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import sys
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

from tinker.types._base import PydanticStyleDumps

__all__ = ["DataModel", "data_model", "fields_repr", "imported_module", "values_equal"]

_D = TypeVar("_D", bound="DataModel")
_C = TypeVar("_C", bound=type)


class DataModel(PydanticStyleDumps):
    """Common behaviour of the dataclass wire types: set keys and pydantic-style helpers."""

    _json_keys: ClassVar[tuple[str, ...]] = ()
    _json_aliases: ClassVar[Mapping[str, str]] = {}
    _json_always: ClassVar[frozenset[str]] = frozenset()
    # Keys sent only when they hold a value (not None, not the given empty value): the keys
    # 0.38 added, which 0.5.1 servers do not know.
    _json_optional: ClassVar[Mapping[str, Any]] = {}
    # The key the JSON object is wrapped in (a member of a oneof), or "".
    _json_tag: ClassVar[str] = ""
    _json_forbid_extra: ClassVar[bool] = False
    # Keys a JSON object must have besides the constructor's required parameters.
    _json_required: ClassVar[frozenset[str]] = frozenset()
    _fields_set: frozenset[str]

    @property
    def model_fields_set(self) -> frozenset[str]:
        """Wire keys the caller set (or the JSON contained)."""
        given: frozenset[str] = self.__dict__.get("_fields_set", frozenset())
        return given

    @classmethod
    def model_validate(cls: type[_D], obj: Any) -> _D:
        """Build this type from its JSON-like dict form."""
        if isinstance(obj, cls):
            return obj
        from tinker import _wire

        return _wire.structure(obj, cls)

    @classmethod
    def model_construct(cls: type[_D], **values: Any) -> _D:
        """Build from wire keys (the 0.5.1 helper; values are checked like the constructor's)."""
        return cls(**values)

    def model_copy(self: _D, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> _D:
        """A copy with some fields replaced (`dataclasses.replace`); `deep` copies the values."""
        import copy

        clone = copy.deepcopy(self) if deep else self
        if not update:
            return clone if deep else copy.copy(self)
        changed = dataclasses.replace(clone, **update)  # type: ignore[type-var]
        given = self.model_fields_set | {self._json_aliases.get(k, k) for k in update}
        object.__setattr__(changed, "_fields_set", given)
        return changed

    def __getstate__(self) -> dict[str, Any]:
        """Pickled state: the fields and set keys, without cached list views."""
        names = {f.name for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        return {k: v for k, v in self.__dict__.items() if k in names or k == "_fields_set"}

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        self.__dict__.update(state)


def data_model(cls: _C) -> _C:
    """Finish a dataclass wire type: record the wire keys each construction set, and compare
    numpy arrays by value (dataclass equality cannot)."""
    original: Callable[..., None] = cls.__init__  # type: ignore[misc]
    parameters = [
        p.name
        for p in list(inspect.signature(original).parameters.values())[1:]
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    aliases: Mapping[str, str] = cls._json_aliases  # type: ignore[attr-defined]
    always: frozenset[str] = cls._json_always  # type: ignore[attr-defined]

    @functools.wraps(original)
    def __init__(self: DataModel, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        given = {aliases.get(name, name) for name in (*parameters[: len(args)], *kwargs)}
        object.__setattr__(self, "_fields_set", frozenset(given) | always)

    cls.__init__ = __init__  # type: ignore[misc]
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    if params.repr:
        setattr(cls, "__repr__", fields_repr)  # noqa: B010  (a method, replaced)
    if params.eq:
        setattr(cls, "__eq__", _fields_equal)  # noqa: B010
    return cls


def fields_repr(self: Any) -> str:
    """A dataclass repr on one line, numpy arrays included (their own repr wraps lines)."""
    shown = ", ".join(
        f"{f.name}={_one_line(getattr(self, f.name))}" for f in dataclasses.fields(self) if f.repr
    )
    return f"{type(self).__name__}({shown})"


def _one_line(value: Any) -> str:
    text = repr(value)
    if "\n" not in text:
        return text
    return " ".join(line.strip() for line in text.splitlines())


def _fields_equal(self: Any, other: Any) -> bool:
    if other.__class__ is not self.__class__:
        return NotImplemented  # type: ignore[no-any-return]
    return all(
        values_equal(getattr(self, f.name), getattr(other, f.name))
        for f in dataclasses.fields(self)
        if f.compare
    )


def imported_module(name: str) -> Any:
    """Module `name` if some code imported it already, else None (never starts an import).
    A module another thread is still importing is waited for, not used half-built."""
    module = sys.modules.get(name)
    if module is None:
        return None
    spec = getattr(module, "__spec__", None)
    if spec is not None and getattr(spec, "_initializing", False):
        return importlib.import_module(name)  # blocks until the importing thread is done
    return module


def values_equal(a: Any, b: Any) -> bool:
    """Equality that compares numpy arrays by dtype, shape and values (NaN equal to NaN)."""
    if a is b:
        return True
    np = imported_module("numpy")
    if np is not None and (isinstance(a, np.ndarray) or isinstance(b, np.ndarray)):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        return bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(values_equal, a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(values_equal(a[k], b[k]) for k in a)
    return bool(a == b)
