"""Request bodies and query parameters turned into checked values, whatever the body format.

`parse(request, model)` gives a request model, `parse_object(request)` a free-form JSON object
and `query_int(request, name, default)` a query parameter. A `Content-Encoding: zstd` body is
decompressed first, bounded (MAX_DECOMPRESSED_BODY_BYTES). A body format decodes bytes under
its own limits (JSON: nesting, number literal length) and every value then passes
server.validation, so a route parsing through here gets every check. FORMATS maps media types to
formats: JSON gives `tinker.types` models, protobuf (forward_backward of 0.38 clients) the
messages of `tinker._wire.proto`; a body of a format the endpoint does not take is a 415, a
malformed protobuf body a 400 naming the message and field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

from tinker import _wire
from tinker._wire import compression, proto
from tinker.local.server import settings, validation
from tinker.local.server.http import Request
from tinker.local.server.http_errors import BadRequest, Unprocessable, UnsupportedMediaType

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


class ProtobufFormat:
    """Protobuf bodies: decoded into the messages of `tinker._wire.proto`, then checked."""

    def parse(self, body: bytes, model: type[M]) -> M:
        """The body as the message class `model`; 415 when the endpoint takes no protobuf."""
        if not is_message(model):
            raise UnsupportedMediaType(
                "This endpoint takes JSON bodies (only forward_backward takes protobuf)."
            )
        try:
            message = proto.decode(body, model)
        except proto.ProtobufDecodeError as exc:
            raise BadRequest(f"The protobuf body is not a valid {model.__name__}: {exc}") from exc
        validation.check(message)
        return message


def is_message(model: type[Any]) -> bool:
    """Whether `model` is a message of the protobuf schema."""
    return getattr(model, "__module__", "") == proto.messages.__name__


JSON = JSONFormat()
PROTOBUF = ProtobufFormat()
#: Body formats by media type; a body of any other (or no) type is read as JSON.
FORMATS: Mapping[str, BodyFormat] = {"application/json": JSON, proto.CONTENT_TYPE: PROTOBUF}
#: Content encodings of request bodies (besides none).
ENCODINGS = ("zstd",)


def media_type(request: Request) -> str:
    """The body's media type, lower case, without parameters."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def parse(request: Request, model: type[M]) -> M:
    """The request body as `model`, decoded by its Content-Type and Content-Encoding."""
    fmt = FORMATS.get(media_type(request), JSON)
    if fmt is JSON and is_message(model):
        raise UnsupportedMediaType(f"This endpoint takes {proto.CONTENT_TYPE} bodies.")
    return fmt.parse(body(request), model)


def parse_object(request: Request) -> dict[str, Any]:
    """A free-form JSON object body (checked, not structured)."""
    return _object(JSON.data(body(request)))


def body(request: Request) -> bytes:
    """The request body, decompressed when its Content-Encoding says so (bounded)."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return request.body
    if encoding not in ENCODINGS:
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding[:40]!r} is not accepted (accepted: zstd)."
        )
    limit = settings.MAX_DECOMPRESSED_BODY_BYTES
    try:
        return compression.decompress(request.body, max_output_size=limit)
    except compression.DecompressionError as exc:
        raise BadRequest(f"The zstd request body cannot be decompressed: {exc}.") from exc


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
