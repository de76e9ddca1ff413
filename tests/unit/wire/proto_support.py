"""Shared helpers of the protobuf codec tests: fixtures, JSON -> messages, deep comparison.

The fixtures in `fixtures/` were written by the official 0.38 SDK's own protobuf classes;
`fixtures/index.json` describes each one in a neutral JSON form: fields by their schema names,
oneof members by their member names, enums by value names, numeric bytes as
{"dtype": "<i4", "values": [...]}, raw bytes as {"hex": ...}, NaN as the JSON NaN literal.
"""

from __future__ import annotations

import dataclasses
import json
import math
import struct
import types
import typing
from pathlib import Path
from typing import Any

import numpy as np

from tinker._wire.proto import messages as m

FIXTURES = Path(__file__).parent / "fixtures"
INDEX: list[dict[str, Any]] = json.loads((FIXTURES / "index.json").read_text())
BY_NAME = {entry["name"]: entry for entry in INDEX}


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / f"{name}.bin").read_bytes()


# --- neutral JSON -> message values ----------------------------------------------------------

_CHUNK_MEMBERS = {"encoded_text": m.EncodedTextChunk, "image": m.ImageChunk, "dmel": m.DmelChunk}
_SPAN_MEMBERS = {"prompt_tokens": m.PromptProvenanceSpan, "sampled_tokens": m.SampledProvenanceSpan}
_LOCALS = {"Array": np.ndarray, "np": np, "npt": np}


def from_json(cls: type[Any], values: dict[str, Any]) -> Any:
    """The message `cls` described by neutral JSON `values`."""
    hints = typing.get_type_hints(cls, vars(m), _LOCALS)
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        if cls is m.SamplingParams and name in ("stop_strs", "stop_tokens"):
            stop_cls = m.StopStrings if name == "stop_strs" else m.StopTokens
            kwargs["stop"] = from_json(stop_cls, value)
        elif cls is m.Datum and name == "model_input":
            kwargs[name] = [_member(_CHUNK_MEMBERS, chunk) for chunk in value]
        elif cls is m.Datum and name.endswith("_spans"):
            kwargs[name] = [_member(_SPAN_MEMBERS, span) for span in value]
        elif cls is m.ForwardBackwardRequest and name == "loss_fn_config_v2":
            kwargs[name] = {k: v.get("number", v.get("text")) for k, v in value.items()}
        else:
            kwargs[name] = _value(hints[name], value)
    for name, dtype in _EMPTY_BY_DEFAULT.get(cls.__name__, {}).items():
        kwargs.setdefault(name, np.zeros(0, dtype))
    if cls is m.BatchedTensor:
        kwargs.setdefault("data", np.zeros(0, m.wire_dtype(kwargs["dtype"])))
        kwargs.setdefault("offsets", np.zeros(0, "<i8"))
    return cls(**kwargs)


# Array fields absent from a message read as empty arrays (proto3 defaults).
_EMPTY_BY_DEFAULT = {
    "EncodedTextChunk": {"tokens": "<i4"},
    "SampledSequence": {"tokens": "<i4"},
    "TopkLogprobs": {"token_ids": "<i4", "logprobs": "<f4"},
}


def _member(members: dict[str, type[Any]], value: dict[str, Any]) -> Any:
    ((name, inner),) = value.items()
    return from_json(members[name], inner)


def _value(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if origin in (typing.Union, types.UnionType):
        return _value(args[0], value)
    if isinstance(value, dict) and "dtype" in value and "values" in value:
        return np.array(value["values"], value["dtype"])
    if isinstance(value, dict) and "hex" in value:
        return bytes.fromhex(value["hex"])
    if origin is tuple:
        return tuple(value)
    if origin is list:
        return [_value(args[0], item) for item in value]
    if origin is dict:
        return {key: _value(args[1], item) for key, item in value.items()}
    if hint is m.DType:
        return m.DType[value.removeprefix("DTYPE_")]
    if hint is m.StopReason:
        return m.StopReason[value.removeprefix("STOP_REASON_")]
    if dataclasses.is_dataclass(hint):
        return from_json(typing.cast(type, hint), value)
    return value


# --- deep comparison -------------------------------------------------------------------------


def assert_same(actual: Any, expected: Any, path: str = "$") -> None:
    """Equal messages: same classes, arrays equal bit for bit (dtype and shape too), floats
    equal bit for bit (NaN included)."""
    if isinstance(expected, np.ndarray):
        assert isinstance(actual, np.ndarray), f"{path}: {type(actual).__name__}, not an array"
        assert actual.dtype == expected.dtype, f"{path}: dtype {actual.dtype} != {expected.dtype}"
        assert actual.shape == expected.shape, f"{path}: shape {actual.shape} != {expected.shape}"
        assert actual.tobytes() == expected.tobytes(), f"{path}: {actual!r} != {expected!r}"
    elif dataclasses.is_dataclass(expected):
        assert type(actual) is type(expected), f"{path}: {type(actual)} != {type(expected)}"
        for field in dataclasses.fields(expected):
            assert_same(
                getattr(actual, field.name), getattr(expected, field.name), f"{path}.{field.name}"
            )
    elif isinstance(expected, (list, tuple)):
        assert type(actual) is type(expected), f"{path}: {type(actual)} != {type(expected)}"
        assert len(actual) == len(expected), f"{path}: {len(actual)} != {len(expected)} items"
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same(a, e, f"{path}[{index}]")
    elif isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: {type(actual)} is not a dict"
        assert sorted(actual) == sorted(expected), f"{path}: keys {sorted(actual)}"
        for key in expected:
            assert_same(actual[key], expected[key], f"{path}[{key!r}]")
    elif isinstance(expected, float):
        assert isinstance(actual, float), f"{path}: {actual!r} is not a float"
        same = struct.pack("<d", actual) == struct.pack("<d", expected)
        assert same or (math.isnan(actual) and math.isnan(expected)), f"{path}: {actual!r}"
    else:
        assert type(actual) is type(expected) and actual == expected, (
            f"{path}: {actual!r} != {expected!r}"
        )
