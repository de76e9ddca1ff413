"""Turn capture logs into committed fixtures: one JSON file per labelled SDK call.

Run in the official 0.38 venv (protobuf bodies are decoded with that package's own generated
classes): `python distil.py --driver DRIVER.py --sdk tinker==X --out DIR MODE=LOG [MODE=LOG ...]`.
Credentials are replaced by placeholders and per-run random values (idempotency keys, timings,
host, machine) by descriptions, so regenerating on another machine gives the same files except
where the SDK itself sends run-dependent data (telemetry timestamps and ids).
"""

from __future__ import annotations

import argparse
import ast
import base64
import json
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

API_KEY = "tml-capture-fake-api-key-0000"
BACKGROUND_PATHS = {"/api/v1/session_heartbeat", "/api/v1/telemetry"}
PROTOBUF_MESSAGES = {"/api/v1/forward_backward": "ForwardBackwardRequest"}
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
MACHINE_HEADERS = {"x-stainless-os", "x-stainless-arch", "x-stainless-runtime-version"}
DTYPE_FORMATS = {"DTYPE_FLOAT32": "<f4", "DTYPE_INT64": "<i8", "DTYPE_INT32": "<i4"}


def redact_text(value: str) -> str:
    """Placeholders for credentials anywhere in a string."""
    value = value.replace(API_KEY, "<api_key>")
    return re.sub(r"eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+", "<jwt>", value)


def redact(obj: Any) -> Any:
    if isinstance(obj, str):
        return redact_text(obj)
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    if isinstance(obj, dict):
        return {k: redact(v) for k, v in obj.items()}
    return obj


def header_value(name: str, value: str) -> str:
    """The header's value as committed: stable across runs and machines, never a secret."""
    lowered = name.lower()
    if lowered == "host":
        return "<capture server host:port>"
    if lowered in MACHINE_HEADERS:
        return "<machine>"
    if lowered == "x-idempotency-key":
        return re.sub(UUID, "<uuid4>", value)
    if lowered == "x-tinker-create-promise-roundtrip-time":
        return "<seconds as float>"
    return redact_text(value)


# ----------------------------------------------------------------------------- protobuf


def decode_protobuf(path: str, raw: bytes, encoding: str | None) -> dict[str, Any]:
    """Raw bytes plus the message decoded field by field, keyed `<number>:<name>`."""
    from tinker.proto import tinker_public_pb2 as pb

    serialized = raw
    if encoding == "zstd":
        import zstandard

        serialized = zstandard.ZstdDecompressor().decompressobj().decompress(raw)
    name = PROTOBUF_MESSAGES[path]
    message = getattr(pb, name).FromString(serialized)
    decoded: dict[str, Any] = {
        "message": f"tinker_public.{name}",
        "content_encoding": encoding,
        "raw_base64": base64.b64encode(raw).decode(),
    }
    if encoding:
        decoded["decompressed_base64"] = base64.b64encode(serialized).decode()
    decoded["fields"] = message_fields(message)
    return decoded


def message_fields(message: Any) -> dict[str, Any]:
    """Every set field of a message; bytes of known layout also decoded to numbers."""
    out: dict[str, Any] = {}
    for field, value in message.ListFields():
        key = f"{field.number}:{field.name}"
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            out[key] = {k: scalar(value_field, value[k]) for k in sorted(value)}
        elif field.is_repeated:
            out[key] = [scalar(field, v) for v in value]
        else:
            out[key] = scalar(field, value)
    kind = message.DESCRIPTOR.name
    if kind == "Tensor":
        out["decoded"] = decode_tensor(message)
    elif kind == "EncodedTextChunk":
        out["decoded"] = {"tokens": numbers(message.tokens, "<i4")}
    return out


def scalar(field: Any, value: Any) -> Any:
    if field.message_type is not None:
        return message_fields(value)
    if field.enum_type is not None:
        return field.enum_type.values_by_number[value].name
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode()}
    return value


def decode_tensor(tensor: Any) -> dict[str, Any]:
    dtype = tensor.DESCRIPTOR.fields_by_name["dtype"].enum_type.values_by_number[tensor.dtype].name
    layout = DTYPE_FORMATS[dtype]
    if tensor.WhichOneof("encoding") == "sparse_csr":
        csr = tensor.sparse_csr
        return {
            "dtype": dtype,
            "shape": list(tensor.shape),
            "values": numbers(csr.values, layout),
            "crow_indices": numbers(csr.crow_indices, "<i8"),
            "col_indices": numbers(csr.col_indices, "<i8"),
        }
    return {"dtype": dtype, "shape": list(tensor.shape), "values": numbers(tensor.dense, layout)}


def numbers(raw: bytes, layout: str) -> list[Any]:
    import numpy as np

    return np.frombuffer(raw, dtype=layout).tolist()


# ----------------------------------------------------------------------------- requests


def distil_request(entry: dict[str, Any]) -> dict[str, Any]:
    headers = entry["headers"]
    lowered = {k.lower(): v for k, v in headers}
    raw = base64.b64decode(entry["body_b64"])
    body: dict[str, Any]
    if not raw:
        body = {"empty": True}
    elif entry["path"] in PROTOBUF_MESSAGES and "protobuf" in lowered.get("content-type", ""):
        body = {"protobuf": decode_protobuf(entry["path"], raw, lowered.get("content-encoding"))}
    else:
        body = {"json": redact(json.loads(raw))}
    return {
        "method": entry["method"],
        "path": entry["path"],
        "query": entry["query"],
        "header_names": [k for k, _ in headers],
        "headers": {k.lower(): header_value(k, v) for k, v in headers},
        "body": body,
        "answer": {"status": entry["status"], "content_type": entry["response_content_type"]},
    }


def call_sources(driver: Path) -> dict[str, str]:
    """Label -> the source text of the call made under it, read from the driver."""
    text = driver.read_text()
    sources: dict[str, str] = {}
    for node in ast.walk(ast.parse(text)):
        pair: tuple[ast.AST, ast.AST] | None = None
        if isinstance(node, ast.Call) and len(node.args) >= 2:
            pair = (node.args[0], node.args[1])
        elif isinstance(node, ast.Tuple) and len(node.elts) == 2:
            pair = (node.elts[0], node.elts[1])
        if pair is None:
            continue
        label, call = pair
        if isinstance(label, ast.Constant) and isinstance(label.value, str):
            segment = ast.get_source_segment(text, call)
            if segment and isinstance(call, ast.Lambda):
                sources.setdefault(label.value, segment.removeprefix("lambda: ").strip())
    return sources


def dumps(obj: object) -> str:
    """Indented JSON with lists of numbers kept on one line (readable diffs, small files)."""
    text = json.dumps(obj, indent=1, ensure_ascii=False)
    flat = re.sub(
        r"\[\s*([-0-9.eE+,\s]+?)\s*\]", lambda m: "[" + re.sub(r"\s+", " ", m.group(1)) + "]", text
    )
    return flat + "\n"


def load(log: Path) -> Iterable[dict[str, Any]]:
    with log.open(encoding="utf-8") as lines:
        for line in lines:
            yield json.loads(line)


def distil(driver: Path, sdk: str, out: Path, logs: dict[str, Path]) -> list[str]:
    """Write one fixture per label (every mode inside it) and return the labels in call order."""
    sources = call_sources(driver)
    by_label: dict[str, dict[str, list[dict[str, Any]]]] = {}
    order: list[str] = []
    for mode, log in logs.items():
        for entry in load(log):
            if "mark_set" in entry:
                label = entry["mark_set"]
            else:
                label = "background" if entry["path"] in BACKGROUND_PATHS else entry["mark"]
            if label not in by_label:
                by_label[label] = {}
                order.append(label)
            requests = by_label[label].setdefault(mode, [])
            if "mark_set" not in entry:
                requests.append(distil_request(entry))
    if out.exists():
        shutil.rmtree(out / "calls", ignore_errors=True)
    (out / "calls").mkdir(parents=True, exist_ok=True)
    for label in order:
        fixture = {
            "call": label,
            "source": sources.get(label),
            "sdk": sdk,
            "modes": by_label[label],
        }
        target = out / "calls" / f"{label}.json"
        target.write_text(dumps(fixture), encoding="utf-8")
    index = {"sdk": sdk, "modes": sorted(logs), "calls": order}
    (out / "index.json").write_text(dumps(index), encoding="utf-8")
    return order


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--driver", type=Path, required=True)
    parser.add_argument("--sdk", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("logs", nargs="+", help="MODE=LOG pairs")
    args = parser.parse_args()
    logs = {pair.split("=", 1)[0]: Path(pair.split("=", 1)[1]) for pair in args.logs}
    labels = distil(args.driver, args.sdk, args.out, logs)
    print(f"{len(labels)} fixtures in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
