"""The wire format: wire models <-> JSON-ready values <-> compact UTF-8 JSON bytes.

One cattrs converter per body shape (built on first use, so importing this module stays light)
maps models to dicts with the exact wire names. Two protocol eras, chosen by the `era` the
transport passes from the negotiated protocol:

* "0.5.1" (the default): a request carries only the fields its caller set, an explicit None
  included (see `tinker.types._base`);
* "0.38": every field is sent with its default (`type` literals too), None values are left
  out, and keys whose name or order changed in 0.38 follow it (e.g. optim_step's
  `adam_params` / `optimizer_params` last). Plain dicts (hand-built bodies) keep their nulls.

Responses ignore unknown keys, except TensorData, which rejects them. Unions of models are
read by their discriminator (`type`, `state`, `event`); chunks also without it. Bytes travel as
standard base64; datetimes as ISO 8601 (a trailing Z is accepted and written for UTC).
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import datetime as dt
import enum
import json
import math
import threading
import types
import typing
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Union

import attrs

from tinker.types import (
    DataModel,
    DmelChunk,
    EncodedTextChunk,
    FutureCompletion,
    FutureFailed,
    FutureFinished,
    ImageAssetPointerChunk,
    ImageChunk,
    ModelInputChunk,
    TelemetryEvent,
    WireModel,
)
from tinker.types._base import fields_set
from tinker.types._checks import is_model_class
from tinker.types._optimizers import is_open_model

if TYPE_CHECKING:
    import cattrs

__all__ = [
    "Era",
    "WireFormatError",
    "dump_model",
    "dumps",
    "is_model_value",
    "loads",
    "structure",
    "structure_as",
    "unstructure",
]

T = TypeVar("T")
Era = Literal["0.5.1", "0.38"]
ERAS: tuple[Era, ...] = ("0.5.1", "0.38")
Model = Union[WireModel, DataModel]

_CHUNK_TYPES: dict[str, type[WireModel]] = {
    "encoded_text": EncodedTextChunk,
    "image": ImageChunk,
    "image_asset_pointer": ImageAssetPointerChunk,
    "dmel": DmelChunk,
}
_OWN_UNION_HOOKS = (ModelInputChunk, TelemetryEvent, FutureCompletion)
# Keys that tell a union's members apart, tried in this order.
_DISCRIMINATORS = ("type", "state", "event")
_COMPLETION_STATES: dict[str, type[WireModel]] = {
    "finished": FutureFinished,
    "failed": FutureFailed,
}
_EVENT_TYPES: dict[str, type[WireModel]] = {
    typing.cast(str, attrs.fields_dict(cls)["event"].default): cls
    for cls in typing.get_args(TelemetryEvent)
}


class WireFormatError(ValueError):
    """JSON that does not fit the expected model; `errors` lists each problem with its path."""

    def __init__(self, message: str, errors: list[str] | None = None):
        super().__init__(message)
        self.errors = errors or [message]


# --- public functions -----------------------------------------------------------------------


def unstructure(obj: Any, *, era: Era = "0.5.1") -> Any:
    """A JSON-ready value for `obj`: models become dicts as the protocol `era` sends them."""
    return _era_converter(era).unstructure(obj)


def dump_model(
    obj: Any, *, mode: str = "python", exclude_unset: bool = False, exclude_none: bool = False
) -> Any:
    """`obj` as plain values, like pydantic's model_dump (mode "python" or "json")."""
    if mode not in ("python", "json"):
        raise ValueError(f"mode must be 'python' or 'json', got {mode!r}")
    conv = _converter(
        json_mode=mode == "json", exclude_unset=exclude_unset, exclude_none=exclude_none
    )
    # A copy, so changing the dump never changes the model (the wire path shares lists).
    return copy.deepcopy(conv.unstructure(obj))


def structure(data: Any, cls: type[T]) -> T:
    """Build a `cls` from JSON-ready data; WireFormatError says what does not fit."""
    return typing.cast(T, structure_as(data, cls))


def structure_as(data: Any, tp: Any) -> Any:
    """Like `structure`, for any annotation (e.g. the ModelInputChunk union)."""
    import cattrs

    name = getattr(tp, "__name__", None) or str(tp)
    if isinstance(tp, type) and issubclass(tp, WireModel) and not isinstance(data, Mapping):
        raise WireFormatError(f"{name}: expected a JSON object, got {type(data).__name__}")
    try:
        return _era_converter("0.5.1").structure(data, tp)
    except cattrs.BaseValidationError as exc:
        errors = cattrs.transform_error(exc, path=name, format_exception=_format_exception)
        raise WireFormatError(f"invalid {name}: " + "; ".join(errors), errors) from exc
    except (TypeError, ValueError, KeyError) as exc:
        raise WireFormatError(f"invalid {name}: {_exception_text(exc)}") from exc


def dumps(obj: Any, *, era: Era = "0.5.1") -> bytes:
    """Compact UTF-8 JSON of `obj` (a model, or JSON-ready data that may hold models), as the
    protocol `era` sends it; NaN/Infinity are refused."""
    data = _era_converter(era).unstructure(obj) if is_model_value(obj) else obj
    try:
        return _encoder(era).encode(data).encode("utf-8")
    except ValueError as exc:
        where = _find_non_finite(data, "$")
        if where is None:
            raise
        raise ValueError(
            f"cannot send {where[0]} = {where[1]!r}: NaN and Infinity are not valid JSON"
        ) from exc


def loads(data: bytes | bytearray | str) -> Any:
    """Parse JSON text or UTF-8 bytes."""
    return json.loads(data)


# --- JSON encoding ---------------------------------------------------------------------------


def _iso(value: dt.datetime) -> str:
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def is_model_value(value: Any) -> bool:
    """Whether `value` is a wire model (an attrs model or a dataclass one)."""
    return isinstance(value, (WireModel, DataModel))


def _json_default(era: Era) -> Callable[[Any], Any]:
    """Encode what json does not know: models (in `era`'s form), numpy values, datetimes,
    bytes."""

    def default(value: Any) -> Any:
        if is_model_value(value):
            return unstructure(value, era=era)
        return _json_leaf(value)

    return default


def _json_leaf(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return _iso(value)
    if isinstance(value, (bytes, bytearray)):
        return _b64(bytes(value))
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars (C-level conversion)
    if tolist is not None and type(value).__module__ == "numpy":
        return tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_ENCODERS = {
    era: json.JSONEncoder(
        separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_default(era)
    )
    for era in ERAS
}


def _encoder(era: Era) -> json.JSONEncoder:
    encoder = _ENCODERS.get(era)
    if encoder is None:
        raise ValueError(f"era must be one of {ERAS}, got {era!r}")
    return encoder


def _find_non_finite(value: Any, path: str) -> tuple[str, float] | None:
    """Path and value of the first NaN/Infinity inside JSON-ready data."""
    if isinstance(value, float) or type(value).__module__ == "numpy":
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        return None if math.isfinite(number) else (path, number)
    if is_model_value(value):
        return _find_non_finite(unstructure(value), path)
    if isinstance(value, Mapping):
        items: Any = ((f"{path}.{key}", item) for key, item in value.items())
    elif isinstance(value, (list, tuple)):
        items = ((f"{path}[{index}]", item) for index, item in enumerate(value))
    else:
        return None
    for item_path, item in items:
        found = _find_non_finite(item, item_path)
        if found is not None:
            return found
    return None


def _exception_text(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return str(exc)


def _format_exception(exc: BaseException, tp: Any) -> str:
    if isinstance(exc, KeyError):
        return "required field missing"
    return _exception_text(exc) or type(exc).__name__


# --- the converters --------------------------------------------------------------------------

_CONVERTERS: dict[tuple[bool, bool, bool, bool], cattrs.Converter] = {}
_LOCK = threading.Lock()


def _era_converter(era: Era) -> cattrs.Converter:
    """The JSON converter of a protocol era (0.5.1: set fields; 0.38: defaults, no nulls)."""
    if era == "0.5.1":
        return _converter(json_mode=True, exclude_unset=True, exclude_none=False)
    if era == "0.38":
        return _converter(json_mode=True, exclude_unset=False, exclude_none=True, modern=True)
    raise ValueError(f"era must be one of {ERAS}, got {era!r}")


def _converter(
    *, json_mode: bool, exclude_unset: bool, exclude_none: bool, modern: bool = False
) -> cattrs.Converter:
    key = (json_mode, exclude_unset, exclude_none, modern)
    conv = _CONVERTERS.get(key)
    if conv is None:
        with _LOCK:
            conv = _CONVERTERS.get(key)
            if conv is None:
                conv = _build_converter(*key)
                _CONVERTERS[key] = conv
    return conv


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, WireModel)


def _is_data_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, DataModel)


def _is_any_model(tp: Any) -> bool:
    return _is_model(tp) or _is_data_model(tp)


def _mentions(tp: Any, wanted: Callable[[Any], bool]) -> bool:
    """Whether annotation `tp` or any type nested in it satisfies `wanted`."""
    if wanted(tp):
        return True
    return any(_mentions(arg, wanted) for arg in typing.get_args(tp))


def _needs_json_hook(tp: Any) -> bool:
    return (
        _is_any_model(tp)
        or tp in (bytes, dt.datetime)
        or (isinstance(tp, type) and issubclass(tp, enum.Enum))
    )


def _build_converter(
    json_mode: bool, exclude_unset: bool, exclude_none: bool, modern: bool
) -> cattrs.Converter:
    import cattrs

    conv = cattrs.Converter(detailed_validation=True)
    _register_unstructuring(conv, json_mode, exclude_unset, exclude_none, modern)
    _register_structuring(conv)
    return conv


def _register_unstructuring(
    conv: cattrs.Converter, json_mode: bool, exclude_unset: bool, exclude_none: bool, modern: bool
) -> None:
    """Models become dicts of their (set) fields; JSON-native values are used as they are."""
    needs_hook = _needs_json_hook if json_mode else _is_any_model

    def model_unstructure_fn(cls: type[WireModel]) -> Callable[[WireModel], dict[str, Any]]:
        hints = typing.get_type_hints(cls)
        plan: list[tuple[str, Callable[[Any], Any] | None]] = []
        for field in attrs.fields(cls):
            if field.init:
                tp = hints[field.name]
                hook = conv.get_unstructure_hook(tp) if _mentions(tp, needs_hook) else None
                plan.append((field.name, hook))
        open_model = "_extra" in attrs.fields_dict(cls)

        def unstructure_model(obj: WireModel) -> dict[str, Any]:
            given = fields_set(obj) if exclude_unset else None
            out: dict[str, Any] = {}
            for name, hook in plan:
                if given is not None and name not in given:
                    continue
                value = getattr(obj, name)
                if value is None:
                    if not exclude_none:
                        out[name] = None
                elif hook is None:
                    out[name] = value
                else:
                    out[name] = hook(value)
            if open_model:
                out.update(conv.unstructure(obj._extra))  # type: ignore[attr-defined]
            return obj._wire_out(out, modern)

        return unstructure_model

    def data_unstructure_fn(cls: type[DataModel]) -> Callable[[DataModel], dict[str, Any]]:
        hints = typing.get_type_hints(cls)
        fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        optional = cls._json_optional
        plan = [
            (
                key,
                key in fields and _mentions(hints[key], needs_hook),
                key in optional,
                optional.get(key),
            )
            for key in cls._json_keys
        ]
        always = cls._json_always
        tag = cls._json_tag

        def unstructure_data(obj: DataModel) -> dict[str, Any]:
            given = obj.model_fields_set if exclude_unset else None
            out: dict[str, Any] = {}
            for key, nested, is_optional, empty in plan:
                value = getattr(obj, key)
                if key in always:
                    pass
                elif is_optional:
                    if value is None or (empty is not None and value == empty):
                        continue
                elif given is not None and key not in given:
                    continue
                if value is None:
                    if not exclude_none:
                        out[key] = None
                else:
                    out[key] = conv.unstructure(value) if nested else value
            return {tag: out} if tag else out

        return unstructure_data

    conv.register_unstructure_hook_factory(_is_model, model_unstructure_fn)
    conv.register_unstructure_hook_factory(_is_data_model, data_unstructure_fn)
    if json_mode:
        conv.register_unstructure_hook(bytes, _b64)
        conv.register_unstructure_hook(dt.datetime, _iso)
        conv.register_unstructure_hook_factory(
            lambda tp: isinstance(tp, type) and issubclass(tp, enum.Enum),
            lambda tp: lambda value: value.value,
        )


def _register_structuring(conv: cattrs.Converter) -> None:
    """cattrs walks the models; leaves pass through unchanged and are checked (and normalised)
    by the models' own field checks, so every value is checked exactly once."""
    from cattrs.gen import make_dict_structure_fn

    conv.register_structure_hook_factory(
        lambda tp: not _mentions(tp, _is_any_model), lambda tp: _passthrough
    )
    for leaf in (str, int, float, bool, bytes, dt.datetime):
        conv.register_structure_hook(leaf, _passthrough)

    def model_structure_fn(cls: type[WireModel]) -> Callable[[Any, Any], WireModel]:
        generated = make_dict_structure_fn(cls, conv)
        nullable = _required_nullable_fields(cls)

        def structure_model(data: Any, tp: Any) -> WireModel:
            if not isinstance(data, Mapping):
                raise TypeError(f"expected a JSON object, got {type(data).__name__}")
            data = cls._wire_in(data)
            missing = [name for name in nullable if name not in data]
            if missing:  # the 0.38 form leaves out null values, even of required fields
                data = {**data, **dict.fromkeys(missing)}
            return generated(data, tp)

        return structure_model

    def open_structure_fn(cls: type[WireModel]) -> Callable[[Any, Any], WireModel]:
        def structure_open(data: Any, _: Any) -> WireModel:
            if not isinstance(data, Mapping):
                raise TypeError(f"expected a JSON object, got {type(data).__name__}")
            return cls(**data)

        return structure_open

    def data_structure_fn(cls: type[DataModel]) -> Callable[[Any, Any], DataModel]:
        keys = frozenset(cls._json_keys)
        tag = cls._json_tag
        hints = typing.get_type_hints(cls)
        fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        # Nested models are structured here (errors then carry their path); the rest is left
        # to the constructor, which checks and converts every value.
        nested = {
            key: hints[key]
            for key in cls._json_keys
            if key in fields and _mentions(hints[key], _is_data_model)
        }
        required = _required_keys(cls)

        def structure_data(data: Any, _: Any) -> DataModel:
            from cattrs.errors import ClassValidationError

            if tag and isinstance(data, Mapping) and tag in data:
                data = data[tag]
            if not isinstance(data, Mapping):
                raise TypeError(f"expected a JSON object, got {type(data).__name__}")
            extra = data.keys() - keys
            if extra and cls._json_forbid_extra:
                raise ValueError(f"unexpected keys {sorted(extra)}")
            errors: list[Exception] = [
                _at_key(KeyError(key), cls, key, None) for key in required if key not in data
            ]
            values: dict[str, Any] = {}
            for key, value in data.items():
                if key not in keys:
                    continue
                tp = nested.get(key)
                if tp is not None and value is not None:
                    try:
                        value = conv.structure(value, tp)
                    except Exception as exc:  # gathered with the others, raised below
                        errors.append(_at_key(exc, cls, key, tp))
                        continue
                values[key] = value
            if not errors:
                try:
                    return cls(**values)
                except (TypeError, ValueError) as exc:
                    errors.append(exc)
            raise ClassValidationError(f"While structuring {cls.__name__}", errors, cls)

        return structure_data

    conv.register_structure_hook_factory(_is_model, model_structure_fn)
    conv.register_structure_hook_factory(is_open_model, open_structure_fn)
    conv.register_structure_hook_factory(_is_data_model, data_structure_fn)
    conv.register_structure_hook_factory(
        _is_model_union, lambda tp: _discriminated_structure_fn(conv, tp)
    )
    conv.register_structure_hook(
        ModelInputChunk, lambda data, _: conv.structure(data, _chunk_class(data))
    )
    conv.register_structure_hook(
        TelemetryEvent, lambda data, _: conv.structure(data, _event_class(data))
    )
    conv.register_structure_hook(
        FutureCompletion, lambda data, _: conv.structure(data, _completion_class(data))
    )


def _passthrough(value: Any, _: Any) -> Any:
    return value


def _required_keys(cls: type[DataModel]) -> tuple[str, ...]:
    """Wire keys a JSON object of `cls` must have: its constructor's parameters without a
    default, and the keys the class names as required."""
    import inspect

    aliases = cls._json_aliases
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    missing_default = [
        aliases.get(p.name, p.name)
        for p in parameters
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    return tuple(dict.fromkeys([*missing_default, *sorted(cls._json_required)]))


def _at_key(exc: Exception, cls: type, key: str, tp: Any) -> Exception:
    """`exc` noted as raised at field `key` of `cls` (cattrs' error paths read the note)."""
    from cattrs.errors import AttributeValidationNote

    note = AttributeValidationNote(f"Structuring class {cls.__name__} @ attribute {key}", key, tp)
    setattr(exc, "__notes__", [*getattr(exc, "__notes__", []), note])  # noqa: B010  (3.10)
    return exc


def _required_nullable_fields(cls: type[WireModel]) -> tuple[str, ...]:
    """Fields without a default whose annotation admits None (absent in 0.38 JSON when null)."""
    hints = typing.get_type_hints(cls)
    return tuple(
        field.name
        for field in attrs.fields(cls)
        if field.init
        and field.default is attrs.NOTHING
        and type(None) in typing.get_args(hints[field.name])
    )


def _is_model_union(tp: Any) -> bool:
    """A union of two or more model classes (None aside), except the chunk, telemetry and
    completion unions, which have hooks of their own."""
    if typing.get_origin(tp) not in (Union, types.UnionType) or tp in _OWN_UNION_HOOKS:
        return False
    members = [arg for arg in typing.get_args(tp) if arg is not type(None)]
    return len(members) > 1 and all(is_model_class(arg) for arg in members)


def _discriminator(cls: type) -> tuple[str, Any] | None:
    """(key, value) of the Literal-typed discriminator field of a model class, if any."""
    if not _is_model(cls):
        return None
    hints = typing.get_type_hints(cls)
    fields = attrs.fields_dict(cls)
    for key in _DISCRIMINATORS:
        field = fields.get(key)
        if field is not None and typing.get_origin(hints[key]) is Literal:
            return key, field.default
    return None


def _discriminated_structure_fn(conv: cattrs.Converter, union: Any) -> Callable[[Any, Any], Any]:
    """Read a union of models by its discriminator; a member whose discriminator is a plain
    str (an open model) takes every value the others do not name."""
    members = [arg for arg in typing.get_args(union) if arg is not type(None)]
    by_value: dict[tuple[str, Any], type] = {}
    fallback: type | None = None
    untagged: list[type] = []
    for cls in members:
        found = _discriminator(cls)
        if found is not None:
            by_value[found] = cls
        elif is_open_model(cls):
            fallback = cls
        else:
            untagged.append(cls)
    keys = sorted({key for key, _ in by_value}, key=_DISCRIMINATORS.index)
    names = [getattr(cls, "__name__", str(cls)) for cls in members]
    allows_none = type(None) in typing.get_args(union)
    member_types = tuple(members)

    def structure_union(data: Any, _: Any) -> Any:
        if (data is None and allows_none) or isinstance(data, member_types):
            return data
        if not isinstance(data, Mapping):
            raise TypeError(f"expected a JSON object ({' or '.join(names)}), got {data!r}")
        for key in keys:
            cls = by_value.get((key, data.get(key)))
            if cls is not None:
                return conv.structure(data, cls)
        if len(untagged) == 1 and not any(key in data for key in keys):
            return conv.structure(data, untagged[0])  # e.g. AdamParams, which has no `type`
        if fallback is not None:
            return conv.structure(data, fallback)
        wanted = ", ".join(f"{key}={value!r}" for key, value in by_value)
        raise ValueError(f"cannot tell which of {names} this is: expected one of {wanted}")

    return structure_union


def _chunk_class(data: Any) -> type[WireModel]:
    """The chunk model for a JSON chunk: by `type`, else by shape."""
    if not isinstance(data, Mapping):
        raise TypeError(f"a chunk must be a JSON object, got {type(data).__name__}")
    kind = data.get("type")
    if kind is not None:
        cls = _CHUNK_TYPES.get(kind)
        if cls is None:
            raise ValueError(f"unknown chunk type {kind!r}; expected one of {list(_CHUNK_TYPES)}")
        return cls
    if "location" in data:
        return ImageAssetPointerChunk
    if "dmel" in data:
        return DmelChunk
    if "data" in data and "format" in data:
        return ImageChunk
    if isinstance(data.get("tokens"), list):
        return EncodedTextChunk
    raise ValueError(
        "cannot tell the chunk kind: expected 'tokens' (a list), 'data' and 'format', "
        f"'location' or 'dmel'; got keys {sorted(data)}"
    )


def _completion_class(data: Any) -> type[WireModel]:
    if not isinstance(data, Mapping):
        raise TypeError(f"a completion must be a JSON object, got {type(data).__name__}")
    cls = _COMPLETION_STATES.get(data.get("state"))  # type: ignore[arg-type]
    if cls is None:
        raise ValueError(
            f"unknown completion state {data.get('state')!r}; expected one of "
            f"{list(_COMPLETION_STATES)}"
        )
    return cls


def _event_class(data: Any) -> type[WireModel]:
    if not isinstance(data, Mapping):
        raise TypeError(f"an event must be a JSON object, got {type(data).__name__}")
    cls = _EVENT_TYPES.get(data.get("event"))  # type: ignore[arg-type]
    if cls is None:
        raise ValueError(f"unknown telemetry event {data.get('event')!r}")
    return cls
