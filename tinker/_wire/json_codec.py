"""The wire format: wire models <-> JSON-ready values <-> compact UTF-8 JSON bytes.

One cattrs converter (built on first use, so importing this module stays light) maps models to
dicts with the exact wire names. A request carries only the fields that were set (see
`tinker.types._base`); responses ignore unknown keys, except TensorData, which rejects them.
Chunks are recognised with or without their `type`, completions of the batch poller by their
`state`; bytes travel as standard base64; datetimes as ISO 8601 (a trailing Z is accepted and
written for UTC).
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import enum
import json
import math
import threading
import typing
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from tinker.types import (
    EncodedTextChunk,
    FutureCompletion,
    FutureFailed,
    FutureFinished,
    ImageAssetPointerChunk,
    ImageChunk,
    ModelInputChunk,
    TelemetryEvent,
    TensorData,
    WireModel,
)
from tinker.types._base import fields_set

if TYPE_CHECKING:
    import cattrs

__all__ = [
    "WireFormatError",
    "dump_model",
    "dumps",
    "loads",
    "structure",
    "structure_as",
    "unstructure",
]

T = TypeVar("T")

_CHUNK_TYPES: dict[str, type[WireModel]] = {
    "encoded_text": EncodedTextChunk,
    "image": ImageChunk,
    "image_asset_pointer": ImageAssetPointerChunk,
}
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


def unstructure(obj: Any) -> Any:
    """A JSON-ready value for `obj` (models become dicts holding only their set fields)."""
    return _converter(json_mode=True, exclude_unset=True, exclude_none=False).unstructure(obj)


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
        return _converter(json_mode=True, exclude_unset=True, exclude_none=False).structure(
            data, tp
        )
    except cattrs.BaseValidationError as exc:
        errors = cattrs.transform_error(exc, path=name, format_exception=_format_exception)
        raise WireFormatError(f"invalid {name}: " + "; ".join(errors), errors) from exc
    except (TypeError, ValueError, KeyError) as exc:
        raise WireFormatError(f"invalid {name}: {_exception_text(exc)}") from exc


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON of `obj` (a model or JSON-ready data); NaN/Infinity are refused."""
    data = unstructure(obj) if isinstance(obj, WireModel) else obj
    try:
        return _ENCODER.encode(data).encode("utf-8")
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


def _json_default(value: Any) -> Any:
    """Encode what json does not know: models, numpy values, datetimes, bytes."""
    if isinstance(value, WireModel):
        return unstructure(value)
    if isinstance(value, dt.datetime):
        return _iso(value)
    if isinstance(value, (bytes, bytearray)):
        return _b64(bytes(value))
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars (C-level conversion)
    if tolist is not None and type(value).__module__ == "numpy":
        return tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_ENCODER = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_default
)


def _find_non_finite(value: Any, path: str) -> tuple[str, float] | None:
    """Path and value of the first NaN/Infinity inside JSON-ready data."""
    if isinstance(value, float) or type(value).__module__ == "numpy":
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        return None if math.isfinite(number) else (path, number)
    if isinstance(value, WireModel):
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

_CONVERTERS: dict[tuple[bool, bool, bool], cattrs.Converter] = {}
_LOCK = threading.Lock()


def _converter(*, json_mode: bool, exclude_unset: bool, exclude_none: bool) -> cattrs.Converter:
    key = (json_mode, exclude_unset, exclude_none)
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


def _mentions(tp: Any, wanted: Callable[[Any], bool]) -> bool:
    """Whether annotation `tp` or any type nested in it satisfies `wanted`."""
    if wanted(tp):
        return True
    return any(_mentions(arg, wanted) for arg in typing.get_args(tp))


def _needs_json_hook(tp: Any) -> bool:
    return (
        _is_model(tp)
        or tp in (bytes, dt.datetime)
        or (isinstance(tp, type) and issubclass(tp, enum.Enum))
    )


def _build_converter(json_mode: bool, exclude_unset: bool, exclude_none: bool) -> cattrs.Converter:
    import cattrs

    conv = cattrs.Converter(detailed_validation=True)
    _register_unstructuring(conv, json_mode, exclude_unset, exclude_none)
    _register_structuring(conv)
    return conv


def _register_unstructuring(
    conv: cattrs.Converter, json_mode: bool, exclude_unset: bool, exclude_none: bool
) -> None:
    """Models become dicts of their (set) fields; JSON-native values are used as they are."""
    needs_hook = _needs_json_hook if json_mode else _is_model

    def model_unstructure_fn(cls: type[WireModel]) -> Callable[[WireModel], dict[str, Any]]:
        hints = typing.get_type_hints(cls)
        plan: list[tuple[str, Callable[[Any], Any] | None]] = []
        for field in attrs.fields(cls):
            if field.init:
                tp = hints[field.name]
                hook = conv.get_unstructure_hook(tp) if _mentions(tp, needs_hook) else None
                plan.append((field.name, hook))

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
            return out

        return unstructure_model

    conv.register_unstructure_hook_factory(_is_model, model_unstructure_fn)
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
        lambda tp: not _mentions(tp, _is_model), lambda tp: _passthrough
    )
    for leaf in (str, int, float, bool, bytes, dt.datetime):
        conv.register_structure_hook(leaf, _passthrough)

    def model_structure_fn(cls: type[WireModel]) -> Callable[[Any, Any], WireModel]:
        generated = make_dict_structure_fn(cls, conv, _cattrs_forbid_extra_keys=cls is TensorData)

        def structure_model(data: Any, tp: Any) -> WireModel:
            if not isinstance(data, Mapping):
                raise TypeError(f"expected a JSON object, got {type(data).__name__}")
            return generated(data, tp)

        return structure_model

    conv.register_structure_hook_factory(_is_model, model_structure_fn)
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
    if "data" in data and "format" in data:
        return ImageChunk
    if isinstance(data.get("tokens"), list):
        return EncodedTextChunk
    raise ValueError(
        "cannot tell the chunk kind: expected 'tokens' (a list), 'data' and 'format', or "
        f"'location'; got keys {sorted(data)}"
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
