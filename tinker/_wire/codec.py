"""The codec of one protocol era: how request bodies go on the wire and results come back.

One `WireCodec` value is chosen when a session starts (from the negotiated server config) and
carried by every call, so the clients build the same request models whatever the era:

- "0.5.1": JSON bodies with only the fields set; results are JSON.
- "0.38": forward and forward_backward go as one protobuf message to
  `/api/v1/forward_backward` (`forward_only` for a forward), zstd-compressed when the server
  asks; every other model goes as JSON with its defaults sent and nulls left out; the results
  of forward/forward_backward and of sampling are asked for, and decoded, as protobuf.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import attrs

from tinker._wire import json_codec

if TYPE_CHECKING:
    from tinker import types

__all__ = ["LEGACY_CODEC", "PROTOBUF", "EncodedBody", "WireCodec"]

PROTOBUF = "application/x-protobuf"
_JSON = "application/json"
# Result types the 0.38 protocol sends as protobuf (asked for with Accept).
_PROTO_RESULTS = frozenset({"ForwardBackwardOutput", "SampleResponse"})


@attrs.frozen
class EncodedBody:
    """A request body ready to send: the path it goes to, its bytes and its content headers."""

    path: str
    content: bytes
    headers: Mapping[str, str]


@attrs.frozen
class WireCodec:
    """Encodes request bodies and decodes results the way protocol `era` does."""

    era: Literal["0.5.1", "0.38"] = "0.5.1"
    compress_forward_backward: bool = False

    @property
    def current(self) -> bool:
        """True for the 0.38 protocol."""
        return self.era == "0.38"

    def encode(self, path: str, body: object) -> EncodedBody:
        """The bytes of `body` (a request model or JSON-ready data) for `path`."""
        is_model = json_codec.is_model_value(body)
        if not is_model and not isinstance(body, (dict, list)):
            raise TypeError(
                f"request body must be a dict or a request model, got {type(body).__name__}"
            )
        if self.current and is_model:
            from tinker import types

            if isinstance(body, types.ForwardBackwardRequest):
                return self._forward_backward(
                    body.model_id, body.seq_id, body.forward_backward_input
                )
            if isinstance(body, types.ForwardRequest):
                return self._forward_backward(
                    body.model_id, body.seq_id, body.forward_input, forward_only=True
                )
        return EncodedBody(path, json_codec.dumps(body, era=self.era), {"Content-Type": _JSON})

    def _forward_backward(
        self,
        model_id: str,
        seq_id: int | None,
        batch: types.ForwardBackwardInput,
        *,
        forward_only: bool = False,
    ) -> EncodedBody:
        """One protobuf ForwardBackwardRequest (0.38 sends forward the same way)."""
        from tinker._wire import proto

        if seq_id is None:
            raise ValueError("a forward/forward_backward request needs its seq_id")
        call = proto.ForwardBackwardCall(
            model_id=model_id,
            seq_id=seq_id,
            data=batch.data,
            loss_fn=batch.loss_fn,
            loss_fn_config=batch.loss_fn_config,
            forward_only=forward_only,
        )
        content = proto.encode_forward_backward_request(call)
        headers = {"Content-Type": PROTOBUF}
        if self.compress_forward_backward:
            from tinker._wire import compression

            content = compression.compress(content)
            headers["Content-Encoding"] = "zstd"
        return EncodedBody("/api/v1/forward_backward", content, headers)

    def result_headers(self, type_name: str) -> Mapping[str, str]:
        """Extra headers of a poll whose result is a `type_name`: protobuf results are asked
        for with Accept."""
        if self.current and type_name in _PROTO_RESULTS:
            return {"Accept": PROTOBUF}
        return {}

    def poll_body(self, request_id: str, *, allow_metadata_only: bool) -> dict[str, Any]:
        """The body of a retrieve_future poll."""
        if self.current:
            return {"request_id": request_id, "allow_metadata_only": allow_metadata_only}
        return {"request_id": request_id}

    def decode_result(self, body: Any, result: type[Any] | None) -> Any:
        """A polled result: protobuf bytes decoded into `result`, JSON structured into it."""
        if isinstance(body, (bytes, bytearray, memoryview)):
            return _decode_protobuf(body, result)
        if result is None or result is dict:
            return body
        return json_codec.structure(body, result)


def _decode_protobuf(body: bytes | bytearray | memoryview, result: type[Any] | None) -> Any:
    from tinker._wire import proto

    name = getattr(result, "__name__", "")
    if name == "ForwardBackwardOutput":
        return proto.decode_forward_backward_output(body)
    if name == "SampleResponse":
        return proto.decode_sample_response(body)
    raise ValueError(f"a protobuf result arrived where a {name or 'JSON value'} was expected")


LEGACY_CODEC = WireCodec()
