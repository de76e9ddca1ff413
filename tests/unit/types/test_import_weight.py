"""Importing the types (and the wire codecs) loads no heavy dependency."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = [
    "backports.zstd",
    "cattrs",
    "compression.zstd",
    "google.protobuf",
    "numpy",
    "requests",
    "safetensors",
    "tokenizers",
    "torch",
    "transformers",
    "urllib3",
]


def loaded_after(statement: str) -> list[str]:
    code = (
        f"import json, sys; {statement}; "
        f"print(json.dumps(sorted(set({HEAVY!r}) & set(sys.modules))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_import_types_is_light() -> None:
    assert loaded_after("import tinker.types") == []


def test_import_wire_is_light_until_used() -> None:
    assert loaded_after("import tinker._wire") == []
    assert loaded_after("import tinker._wire as w, tinker.types as t; w.dumps(t.AdamParams())") == [
        "cattrs"
    ]


def test_top_level_type_access_does_not_load_numpy() -> None:
    assert loaded_after("import tinker; tinker.types.ModelInput.from_ints([1])") == []


def test_binary_codecs_load_numpy_and_zstd_only_when_used() -> None:
    assert loaded_after("from tinker._wire import proto, compression") == []
    assert loaded_after("from tinker._wire.proto import ForwardBackwardCall, messages") == []
    decode = "from tinker._wire import proto; proto.decode(b'', proto.messages.SampleResponse)"
    assert loaded_after(decode) == ["numpy"]
    zstd = loaded_after("from tinker._wire import compression; compression.compress(b'x')")
    assert zstd in (["backports.zstd"], ["compression.zstd"])
