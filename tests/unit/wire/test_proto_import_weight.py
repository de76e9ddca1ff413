"""The binary codecs load numpy and zstd only when a body is encoded or decoded."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ["backports.zstd", "compression.zstd", "numpy", "google.protobuf", "cattrs"]


def loaded_after(statement: str) -> list[str]:
    code = (
        f"import json, sys; {statement}; "
        f"print(json.dumps(sorted(set({HEAVY!r}) & set(sys.modules))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_importing_the_codecs_loads_nothing_heavy() -> None:
    assert loaded_after("import tinker") == []
    assert loaded_after("import tinker._wire") == []
    assert loaded_after("from tinker._wire import proto, compression") == []
    assert loaded_after("from tinker._wire.proto import ForwardBackwardCall, DType") == []


def test_each_codec_loads_only_what_it_uses() -> None:
    assert loaded_after(
        "from tinker._wire import proto; proto.decode(b'', proto.SampleResponse)"
    ) == ["numpy"]
    zstd = loaded_after("from tinker._wire import compression; compression.compress(b'x')")
    assert zstd in (["backports.zstd"], ["compression.zstd"])
