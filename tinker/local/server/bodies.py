"""Request bodies and query parameters turned into checked values, whatever the body format.

`parse(request, model)` gives a `tinker.types` request model, `parse_object(request)` a
free-form JSON object and `query_int(request, name, default)` a query parameter. A body format
decodes bytes under its own limits (JSON: nesting, number literal length) and every value then
passes server.validation, so a route parsing through here gets every check. FORMATS maps media
types to formats; a binary format (protobuf for forward_backward) plugs in beside JSON by
decoding into the same request models.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

from tinker import _wire
from tinker.local.server import settings, validation
from tinker.local.server.http import Request
from tinker.local.server.http_errors import BadRequest, Unprocessable

M = TypeVar("M")

# Twenty digits in a row: a number literal that may be too long to convert cheaply (or text).
_LONG_DIGITS = re.compile(rb"[0-9]{20}")
_INTEGER = re.compile(r"[+-]?[0-9]+")


class BodyFormat(Protocol):
    """Decodes request bodies of one media type into checked request models."""

    def parse(self, body: bytes, model: type[M]) -> M:
        """The body as `model`; BadRequest (400) or Unprocessable (422) saying what is wrong."""
        ...


class JSONFormat:
    """JSON bodies: parsed with bounded number literals and nesting, checked, then structured."""

    def parse(self, body: bytes, model: type[M]) -> M:
        """The body as `model` (an empty body is an empty object: body-less POSTs)."""
        return structure(_object(self.data(body)), model)

    def data(self, body: bytes) -> Any:
        """The body as plain JSON data, every value checked by server.validation."""
        if not body.strip():
            return {}
        try:
            if _LONG_DIGITS.search(body):
                data = json.loads(body, parse_int=_integer_literal, parse_float=_float_literal)
            else:
                data = json.loads(body)
        except RecursionError:
            raise BadRequest(
                f"The request body is nested deeper than {settings.MAX_JSON_DEPTH} levels."
            ) from None
        except ValueError as exc:  # bad UTF-8 or bad JSON
            raise BadRequest(f"The request body is not valid JSON: {exc}") from exc
        validation.check(data)
        return data


JSON = JSONFormat()
#: Body formats by media type; a body of any other (or no) type is read as JSON.
FORMATS: Mapping[str, BodyFormat] = {"application/json": JSON}


def parse(request: Request, model: type[M]) -> M:
    """The request body as a `tinker.types` request model, decoded by its Content-Type."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return FORMATS.get(media_type, JSON).parse(request.body, model)


def parse_object(request: Request) -> dict[str, Any]:
    """A free-form JSON object body (checked, not structured)."""
    return _object(JSON.data(request.body))


def structure(data: dict[str, Any], model: type[M]) -> M:
    """Checked plain data as `model`; Unprocessable (422) naming what does not fit."""
    try:
        return _wire.structure(data, model)
    except (TypeError, ValueError, KeyError, ArithmeticError) as exc:
        raise Unprocessable(str(exc)) from exc


def query_int(request: Request, name: str, default: int) -> int:
    """An integer query parameter (`default` when absent), range-checked by its name."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not _INTEGER.fullmatch(raw):
        shown = raw if len(raw) <= 40 else raw[:37] + "..."
        raise BadRequest(f"Query parameter {name!r} must be an integer, got {shown!r}.")
    validation.check_field(name, _integer_literal(raw))  # an oversized literal fails here
    return int(raw)


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise Unprocessable(f"The request body must be a JSON object, got {type(data).__name__}.")
    return data


def _integer_literal(text: str) -> int | validation.OversizedNumber:
    if len(text) > settings.MAX_NUMBER_CHARS:
        return validation.OversizedNumber(len(text))
    return int(text)


def _float_literal(text: str) -> float | validation.OversizedNumber:
    if len(text) > settings.MAX_NUMBER_CHARS:
        return validation.OversizedNumber(len(text))
    return float(text)
