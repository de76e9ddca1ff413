"""The limits every request value must keep, checked in one walk whatever the route or format.

`check` walks decoded request data -- the plain data of a JSON body before it is structured, a
model (attrs or dataclass, as a binary body format produces them), a query parameter -- and raises
BadRequest (400) naming the first field that breaks a limit: an integer outside int64, a NaN
or infinite number, a string with NUL or a lone surrogate or longer than its limit, nesting
deeper than MAX_JSON_DEPTH, or a named field outside its range (RANGES). Fields are recognised
by name, so a new route or body format that yields the same field names gets the same checks.
Semantic checks (known models, loss names, sampling ranges) stay with the engine and compute.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from tinker.local.server import settings
from tinker.local.server.http_errors import BadRequest

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


@attrs.frozen
class Range:
    """Inclusive bounds of a numeric field."""

    low: int | float
    high: int | float

    def describe(self) -> str:
        return f"{self.low} to {self.high}"


#: Ranges of named fields (request bodies and query strings alike).
RANGES: Mapping[str, Range] = {
    "seq_id": Range(0, INT64_MAX),
    "model_seq_id": Range(0, INT64_MAX),
    "sampling_session_seq_id": Range(0, INT64_MAX),
    "seed": Range(0, INT64_MAX),
    "num_samples": Range(1, settings.MAX_NUM_SAMPLES),
    "max_tokens": Range(0, settings.MAX_SAMPLE_TOKENS),
    "ttl_seconds": Range(1, settings.MAX_TTL_SECONDS),
    "limit": Range(0, INT64_MAX),
    "offset": Range(0, INT64_MAX),
}
#: Fields naming things (ids, models, paths): strings of at most MAX_ID_CHARS.
ID_FIELDS = frozenset(
    {
        "session_id",
        "model_id",
        "request_id",
        "sampling_session_id",
        "sampler_id",
        "training_run_id",
        "checkpoint_id",
        "base_model",
        "model_path",
        "path",
        "tinker_path",
        "loss_fn",
        "sdk_version",
        "type",
    }
)
#: Fields holding caller-chosen keys: their keys are data, not field names.
FREE_FORM = frozenset({"user_metadata", "loss_fn_config", "loss_fn_inputs"})


@attrs.frozen
class OversizedNumber:
    """Stands for a number literal too long to convert (a body format's decoder makes these)."""

    length: int


def check(value: Any, where: str = "") -> None:
    """Raise BadRequest naming the first value below `where` that breaks a limit."""
    _visit(value, where, None, 0)


def check_field(name: str, value: Any) -> None:
    """Check one named value (a query or path parameter) against the field rules."""
    _visit(value, name, name, 0)


def _visit(value: Any, path: str, field: str | None, depth: int, free: bool = False) -> None:
    """`field` names the value's field (its rules apply); `free`: inside caller-chosen keys."""
    if value is None or isinstance(value, (bool, bytes, np.bool_)):
        return
    if isinstance(value, (np.integer, np.floating)):
        value = value.item()
    if isinstance(value, (int, float)):
        _check_number(value, path, field)
    elif isinstance(value, str):
        _check_string(value, path, field)
    elif isinstance(value, OversizedNumber):
        raise BadRequest(
            f"{_name(path)}: a number of {value.length} characters is out of range "
            f"(at most {settings.MAX_NUMBER_CHARS})."
        )
    elif isinstance(value, np.ndarray):
        _check_array(value, path, field)
    else:
        if depth >= settings.MAX_JSON_DEPTH:
            raise BadRequest(f"{_name(path)}: nested deeper than {settings.MAX_JSON_DEPTH} levels.")
        if isinstance(value, Mapping):
            free = free or field in FREE_FORM
            for key, item in value.items():
                if not isinstance(key, str):
                    raise BadRequest(f"{_name(path)}: keys must be strings, got {key!r}.")
                _check_string(key, f"{_name(path)} key {_short(key)}", None)
                _visit(item, _join(path, key), None if free else key, depth + 1, free)
        elif isinstance(value, (list, tuple)):
            _check_sequence(value, path, field, depth + 1, free)
        else:
            for name in _field_names(value, path):
                _visit(getattr(value, name), _join(path, name), name, depth + 1)


def _field_names(model: Any, path: str) -> list[str]:
    """The public fields of a model (attrs class or dataclass)."""
    if attrs.has(type(model)):
        names = [attribute.name for attribute in attrs.fields(type(model))]
    elif dataclasses.is_dataclass(model):
        names = [field.name for field in dataclasses.fields(model)]
    else:
        raise BadRequest(f"{_name(path)}: unexpected {type(model).__name__} value.")
    return [name for name in names if not name.startswith("_")]


def _check_sequence(
    values: Sequence[Any], path: str, field: str | None, depth: int, free: bool
) -> None:
    """Elements inherit the field's rule (e.g. a list of seeds); plain number lists in C."""
    kinds = set(map(type, values))
    if kinds == {int} or kinds == {float}:
        if kinds == {float} and not all(map(math.isfinite, values)):
            index = next(i for i, v in enumerate(values) if not math.isfinite(v))
            _check_number(values[index], f"{path}[{index}]", field)
        for extreme in (min(values), max(values)):
            _check_number(extreme, f"{path}[{values.index(extreme)}]", field)
        return
    for index, item in enumerate(values):
        _visit(item, f"{path}[{index}]", field, depth, free)


def _check_number(value: int | float, path: str, field: str | None) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise BadRequest(f"{_name(path)}: {value} is not a finite number.")
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        raise BadRequest(f"{_name(path)}: {_show_int(value)} is out of range (64-bit integers).")
    bounds = RANGES.get(field) if field is not None else None
    if bounds is not None and not bounds.low <= value <= bounds.high:
        shown = _show_int(value) if isinstance(value, int) else repr(value)
        raise BadRequest(f"{_name(path)}: {shown} is out of range ({bounds.describe()}).")


def _check_array(array: np.ndarray, path: str, field: str | None) -> None:
    if array.size == 0:
        return
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise BadRequest(f"{_name(path)}: contains NaN or infinity.")
    if array.dtype.kind in "iuf" and field in RANGES:
        for extreme in (array.min(), array.max()):
            _check_number(extreme.item(), path, field)


def _check_string(text: str, path: str, field: str | None) -> None:
    limit = settings.MAX_ID_CHARS if field in ID_FIELDS else settings.MAX_STRING_CHARS
    if len(text) > limit:
        raise BadRequest(f"{_name(path)}: {len(text)} characters, more than the {limit} allowed.")
    if "\x00" in text:
        raise BadRequest(f"{_name(path)}: contains a NUL character.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        raise BadRequest(
            f"{_name(path)}: contains a lone surrogate (U+{code:04X}); send valid Unicode."
        ) from None


def _join(path: str, key: str) -> str:
    if key.isidentifier():
        return f"{path}.{key}" if path else key
    return f"{path}[{_short(key)}]"


def _name(path: str) -> str:
    return path or "the request body"


def _short(text: str) -> str:
    shown = ascii(text)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _show_int(value: int) -> str:
    return str(value) if abs(value) < 10**40 else "an integer of more than 40 digits"
