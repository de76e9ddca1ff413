"""What a finished request answers, encoded on demand in the format its poll asks for.

A job's value is a `tinker.types` model or a documented plain dict (sent as JSON), or a
`Result` that also has a protobuf form (forward/forward_backward outputs and samples: 0.38
clients ask for it with Accept, 0.5.1 clients get JSON). Each body is encoded once, when first
asked for, and kept. A result JSON cannot hold (NaN or infinity) is answered in JSON as a
failure saying so; protobuf carries it as it is.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any, Protocol, Union

from tinker import _wire, types
from tinker._wire.proto import CONTENT_TYPE as PROTOBUF
from tinker.local.server import responses

logger = logging.getLogger(__name__)

JSON = "application/json"


class Result(Protocol):
    """A job value with two wire forms: a JSON model and a protobuf body."""

    def json_model(self) -> types.WireModel | types.DataModel:
        """The result as the JSON protocol sends it."""
        ...

    def protobuf(self) -> bytes:
        """The result as a protobuf message body."""
        ...


#: What a job returns: a result with a protobuf form, or a JSON body (model or plain dict).
JobValue = Union[Result, types.WireModel, Mapping[str, Any]]


class Outcome:
    """The answer of one finished request (a result or a failure), thread-safe."""

    def __init__(self, request_id: str, value: JobValue, *, failed: bool) -> None:
        self.request_id = request_id
        self.failed = failed
        self._value = value
        self._lock = threading.Lock()
        self._bodies: dict[str, bytes] = {}

    @classmethod
    def failure(cls, request_id: str, message: str, category: str) -> Outcome:
        """A failed request: `{"error", "category"}`, always JSON."""
        return cls(request_id, responses.failure(message, category), failed=True)

    @property
    def has_protobuf(self) -> bool:
        """Whether this result also has a protobuf form."""
        return callable(getattr(self._value, "protobuf", None))

    def body(self, protobuf: bool) -> tuple[bytes, str]:
        """The body and its media type: protobuf when asked for and available, else JSON."""
        media = PROTOBUF if protobuf and self.has_protobuf else JSON
        with self._lock:
            body = self._bodies.get(media)
            if body is None:
                body = self._bodies[media] = self._encode(media)
        return body, media

    def _encode(self, media: str) -> bytes:
        value = self._value
        if isinstance(value, (types.WireModel, Mapping)):
            return _json(self.request_id, value)
        if media == PROTOBUF:
            return value.protobuf()
        return _json(self.request_id, value.json_model())


def _json(request_id: str, body: types.WireModel | types.DataModel | Mapping[str, Any]) -> bytes:
    """The body as JSON, or a failure when it holds NaN or infinity (JSON has neither)."""
    try:
        return _wire.dumps(body)
    except ValueError as exc:
        logger.warning("request %s: the result cannot be sent as JSON: %s", request_id, exc)
        message = f"The result holds a value JSON cannot carry (has training diverged?): {exc}"
        return _wire.dumps(responses.failure(message, "server"))
