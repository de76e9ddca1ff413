"""Field checks compiled from type annotations.

Every wire model validates the fields a caller sets against their annotations, once, when the
object is built (also when built from JSON). A check returns the value, normalised to plain
JSON-ready Python (numpy scalars become int/float, tuples become lists, base64 text becomes
bytes, ISO 8601 text becomes a datetime), or raises `Invalid` describing what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import collections.abc
import datetime as dt
import enum
import operator
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "Check",
    "Invalid",
    "check_float",
    "check_int",
    "compile_check",
    "describe",
    "is_model_class",
    "parse_datetime",
]

Check = Callable[[Any], Any]

_NONE_TYPE = type(None)
_SEQUENCE_ORIGINS = (list, collections.abc.Sequence, collections.abc.MutableSequence)
_MAPPING_ORIGINS = (dict, collections.abc.Mapping, collections.abc.MutableMapping)


class Invalid(Exception):
    """A value does not match its field's type; `path` locates it inside the field."""

    def __init__(self, expected: str, value: object, *, path: str = "", kind: type = TypeError):
        super().__init__(expected)
        self.expected = expected
        self.value = value
        self.path = path
        self.kind = kind

    def at(self, step: str) -> Invalid:
        """The same problem, one level further out (e.g. inside `[3]`)."""
        self.path = step + self.path
        return self

    def message(self, where: str) -> str:
        """The error text for the field named `where` (e.g. "SamplingParams.stop")."""
        return f"{where}{self.path}: expected {self.expected}, got {_show(self.value)}"


def _show(value: object) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def describe(tp: Any) -> str:
    """A short human name for a type annotation, used in error messages."""
    if tp is Any:
        return "any value"
    if tp is _NONE_TYPE or tp is None:
        return "None"
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join(describe(a) for a in typing.get_args(tp))
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{args}]"
    return getattr(tp, "__name__", str(tp))


_FRACTION = re.compile(r"(T\d\d:\d\d:\d\d)[.,](\d+)")


def parse_datetime(value: str) -> dt.datetime:
    """Parse ISO 8601 text; a trailing `Z` means UTC and any number of fraction digits works.

    (Python 3.10's `fromisoformat` takes neither, so both are normalised first.)
    """
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    text = _FRACTION.sub(lambda m: f"{m.group(1)}.{m.group(2)[:6].ljust(6, '0')}", text, count=1)
    return dt.datetime.fromisoformat(text)


def compile_check(tp: Any, model_check: Callable[[Any, Any], Any]) -> Check:
    """Build the check for annotation `tp`.

    `model_check(cls, value)` handles nested wire models (it may accept a dict and build the
    model from it); it is passed in so this module knows nothing about the models.
    """
    if tp is Any or tp is object:
        return _identity
    if tp is _NONE_TYPE or tp is None:
        return _check_none
    simple = _SIMPLE.get(tp)
    if simple is not None:
        return simple
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        return _literal_check(args)
    if origin in (typing.Union, types.UnionType):
        return _union_check(tp, model_check)
    if origin in _SEQUENCE_ORIGINS:
        return _list_check(args[0] if args else Any, model_check)
    if origin in _MAPPING_ORIGINS:
        value_type = args[1] if len(args) == 2 else Any
        return _dict_check(compile_check(value_type, model_check))
    if origin is tuple:
        return _tuple_check([compile_check(a, model_check) for a in args])
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum_check(tp)
    if is_model_class(tp):
        cls = tp
        return lambda value: model_check(cls, value)
    raise TypeError(f"no field check for annotation {tp!r}")


def is_model_class(tp: Any) -> bool:
    """Whether `tp` is a wire model class (attrs) or a dataclass wire type."""
    return isinstance(tp, type) and (
        hasattr(tp, "__attrs_attrs__") or hasattr(tp, "__dataclass_fields__")
    )


def _identity(value: Any) -> Any:
    return value


def _check_none(value: Any) -> None:
    if value is not None:
        raise Invalid("None", value)


def _check_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise Invalid("str", value)


def _check_bool(value: Any) -> bool:
    if value is True or value is False:
        return bool(value)
    if type(value).__name__ == "bool_":  # numpy.bool_
        return bool(value)
    raise Invalid("bool", value)


def check_int(value: Any) -> int:
    """An int; numpy integers and integral floats (8.0, as pydantic allows) are converted."""
    if type(value) is int:
        return value
    if isinstance(value, bool):
        raise Invalid("int", value)
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise Invalid("int", value)
    try:
        return operator.index(value)  # numpy integer scalars and other exact integers
    except TypeError:
        raise Invalid("int", value) from None


def check_float(value: Any) -> float:
    """A float (an int is kept as it is); numpy scalars are converted."""
    if type(value) is float or type(value) is int:
        return typing.cast(float, value)
    if isinstance(value, (bool, str, bytes)):
        raise Invalid("float", value)
    try:
        return float(value)  # numpy floating and integer scalars
    except (TypeError, ValueError):
        raise Invalid("float", value) from None


def _check_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise Invalid("bytes or standard base64 text", value, kind=ValueError) from None
    raise Invalid("bytes", value)


def _check_datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return parse_datetime(value)
        except ValueError:
            raise Invalid("an ISO 8601 datetime", value, kind=ValueError) from None
    raise Invalid("datetime", value)


_SIMPLE: dict[Any, Check] = {
    str: _check_str,
    bool: _check_bool,
    int: check_int,
    float: check_float,
    bytes: _check_bytes,
    dt.datetime: _check_datetime,
}

# Element types whose lists are checked in one C-level pass when they are already clean.
_FAST_ELEMENT_TYPES: dict[Any, frozenset[type]] = {
    int: frozenset({int}),
    float: frozenset({int, float}),
    str: frozenset({str}),
}


def _literal_check(allowed: tuple[Any, ...]) -> Check:
    expected = "one of " + ", ".join(repr(a) for a in allowed)

    def check(value: Any) -> Any:
        for option in allowed:
            if value == option and type(value) is type(option):
                return option
            if isinstance(value, enum.Enum) and value.value == option:
                return option
        raise Invalid(expected, value, kind=ValueError)

    return check


def _enum_check(enum_cls: type[enum.Enum]) -> Check:
    def check(value: Any) -> Any:
        try:
            return enum_cls(value)
        except ValueError:
            options = ", ".join(repr(m.value) for m in enum_cls)
            raise Invalid(f"one of {options}", value, kind=ValueError) from None

    return check


def _union_check(union: Any, model_check: Callable[[Any, Any], Any]) -> Check:
    options = typing.get_args(union)
    allows_none = _NONE_TYPE in options
    others = [o for o in options if o is not _NONE_TYPE]
    checks = [compile_check(o, model_check) for o in others]
    models = [o for o in others if is_model_class(o)]
    # A dict for a union of several models is decoded by the wire rules (e.g. chunk shapes).
    decode_union = typing.Union[tuple(models)] if len(models) > 1 else None
    expected = describe(union)

    def check(value: Any) -> Any:
        if value is None:
            if allows_none:
                return None
            raise Invalid(expected, value)
        if decode_union is not None and isinstance(value, Mapping):
            return model_check(decode_union, value)
        failures: list[Invalid] = []
        for option_check in checks:
            try:
                return option_check(value)
            except Invalid as exc:
                failures.append(exc)
        if len(failures) == 1:
            raise failures[0]
        # Report the alternative that got furthest into the value (the longest path).
        deepest = max(failures, key=lambda exc: len(exc.path))
        if deepest.path:
            raise deepest
        raise Invalid(expected, value)

    return check


def _as_list(value: Any, expected: str) -> list[Any]:
    """A new list with the items of `value` (so a caller's later changes do not leak in)."""
    if type(value) is list:
        return value.copy()
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise Invalid(expected, value)
    tolist = getattr(value, "tolist", None)  # numpy arrays: one C-level conversion
    if tolist is not None and getattr(value, "ndim", 1) == 1:
        return tolist()  # type: ignore[no-any-return]
    if isinstance(value, (tuple, collections.abc.Sequence)):
        return list(value)
    raise Invalid(expected, value)


def _list_check(element_type: Any, model_check: Callable[[Any, Any], Any]) -> Check:
    element_check = compile_check(element_type, model_check)
    fast_types = _FAST_ELEMENT_TYPES.get(element_type)
    model_cls = element_type if is_model_class(element_type) else None
    expected = f"list of {describe(element_type)}"

    def check(value: Any) -> list[Any]:
        items = _as_list(value, expected)
        if fast_types is not None and set(map(type, items)) <= fast_types:
            return items
        if model_cls is not None and all(type(item) is model_cls for item in items):
            return items
        for index, item in enumerate(items):
            try:
                items[index] = element_check(item)
            except Invalid as exc:
                raise exc.at(f"[{index}]") from None
        return items

    return check


def _dict_check(value_check: Check) -> Check:
    def check(value: Any) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise Invalid("a dict", value)
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise Invalid("str keys", key)
            try:
                out[key] = value_check(item)
            except Invalid as exc:
                raise exc.at(f"[{key!r}]") from None
        return out

    return check


def _tuple_check(item_checks: list[Check]) -> Check:
    expected = f"a pair of {len(item_checks)} items" if len(item_checks) == 2 else "a tuple"

    def check(value: Any) -> tuple[Any, ...]:
        if not isinstance(value, (tuple, list)) or len(value) != len(item_checks):
            raise Invalid(expected, value)
        out = []
        for index, (item_check, item) in enumerate(zip(item_checks, value, strict=True)):
            try:
                out.append(item_check(item))
            except Invalid as exc:
                raise exc.at(f"[{index}]") from None
        return tuple(out)

    return check
