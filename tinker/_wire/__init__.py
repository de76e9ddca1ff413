"""The codecs between `tinker.types` models and bytes on the wire.

`json_codec` holds the one cattrs converter and the JSON encoding of every request and
response body. Binary codecs (protobuf, compression) live beside it and load only when the
negotiated protocol needs them.
"""

from tinker._wire.json_codec import (
    WireFormatError,
    dump_model,
    dumps,
    is_model_value,
    loads,
    structure,
    structure_as,
    unstructure,
)

__all__ = [
    "WireFormatError",
    "dump_model",
    "dumps",
    "is_model_value",
    "loads",
    "structure",
    "structure_as",
    "unstructure",
]
