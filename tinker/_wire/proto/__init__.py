"""The protobuf codec of the Tinker protocol (`tinker_public.proto`, transcribed in `schema`).

Two layers. Messages: `encode(message)` and `decode(data, messages.X)` for every message of
the schema (the dataclasses of `messages`, numeric payloads as numpy arrays). Mapping: the bodies
the protocol sends, to and from `tinker.types` values (forward_backward requests, their
outputs, sample responses). Importing this package is light: numpy and the codec modules load
on the first call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from tinker._wire.codec import PROTOBUF
from tinker._wire.proto import messages
from tinker._wire.proto.call import ForwardBackwardCall
from tinker._wire.proto.errors import ProtobufDecodeError, ProtobufEncodeError

if TYPE_CHECKING:
    from tinker import types

__all__ = [
    "CONTENT_TYPE",
    "ForwardBackwardCall",
    "ProtobufDecodeError",
    "ProtobufEncodeError",
    "decode",
    "decode_forward_backward_output",
    "decode_forward_backward_request",
    "decode_sample_response",
    "encode",
    "encode_forward_backward_output",
    "encode_forward_backward_request",
    "encode_sample_response",
    "messages",
]

CONTENT_TYPE = PROTOBUF  # written once, in the light codec module

M = TypeVar("M")
BytesLike = bytes | bytearray | memoryview


# --- messages --------------------------------------------------------------------------------


def encode(message: messages.Message) -> bytes:
    """The canonical bytes of any message of the schema; ProtobufEncodeError (a ValueError)
    names a value that cannot be written."""
    from tinker._wire.proto import encoder

    return encoder.encode(message)


def decode(data: BytesLike, message_type: type[M]) -> M:
    """Parse `data` as one `message_type`; ProtobufDecodeError (a ValueError) names the
    message and field that are wrong. Arrays in the result are read-only views of `data`."""
    from tinker._wire.proto import decoder

    return decoder.decode(data, message_type)


# --- bodies of the protocol, as tinker.types values ------------------------------------------


def encode_forward_backward_request(call: ForwardBackwardCall) -> bytes:
    """Body of POST /api/v1/forward_backward (forward too); ValueError names a datum, chunk or
    config entry that has no protobuf form."""
    from tinker._wire.proto import mapping

    return mapping.encode_forward_backward_request(call)


def decode_forward_backward_request(body: BytesLike) -> ForwardBackwardCall:
    """A forward_backward request body (already decompressed) as a ForwardBackwardCall."""
    from tinker._wire.proto import mapping

    return mapping.decode_forward_backward_request(body)


def encode_forward_backward_output(output: types.ForwardBackwardOutput) -> bytes:
    """The protobuf result body of a Forward / ForwardBackward future."""
    from tinker._wire.proto import mapping

    return mapping.encode_forward_backward_output(output)


def decode_forward_backward_output(body: BytesLike) -> types.ForwardBackwardOutput:
    """A Forward / ForwardBackward result body as types.ForwardBackwardOutput."""
    from tinker._wire.proto import mapping

    return mapping.decode_forward_backward_output(body)


def encode_sample_response(response: types.SampleResponse) -> bytes:
    """The protobuf result body of a Sample future."""
    from tinker._wire.proto import mapping

    return mapping.encode_sample_response(response)


def decode_sample_response(body: BytesLike) -> types.SampleResponse:
    """A Sample result body as types.SampleResponse."""
    from tinker._wire.proto import mapping

    return mapping.decode_sample_response(body)
