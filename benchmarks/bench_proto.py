"""Cost of the protobuf codec for a large forward_backward (prints figures, asserts nothing).

One batch of 128 datums x 2048 tokens (int32 tokens, int64 target_tokens, float32 weights) and
a ForwardBackwardOutput of the same size (float32 logprobs and elementwise_loss per token).
Every figure is the median CPU time of interleaved repetitions in this one run, next to:

- the payload floor: `b"".join` of the batch's numpy buffers, the one copy any encoder pays;
- today's JSON path: `tinker._wire.dumps` of the same ForwardBackwardRequest;
- the official SDK 0.38's protobuf runtime (upb) building and serializing the same message
  from the same arrays, when its interpreter is given (`--official`, or the environment
  variable TINKER_OFFICIAL_038_PYTHON); it runs as a subprocess.

Run: `python benchmarks/bench_proto.py [--datums N] [--tokens N] [--repeat N] [--official PY]`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

Timed = dict[str, Callable[[], Any]]


def interleaved(steps: Timed, repeat: int) -> dict[str, float]:
    """Median CPU seconds of each step, the steps taking turns so drift hits them alike (CPU
    time, not wall time: the machine is shared)."""
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeat):
        for name, step in steps.items():
            started = time.process_time()
            step()
            samples[name].append(time.process_time() - started)
    return {name: statistics.median(values) for name, values in samples.items()}


def batch_arrays(datums: int, tokens: int) -> list[tuple[Any, Any, Any]]:
    import numpy as np

    rng = np.random.default_rng(0)
    rows = rng.integers(0, 50_000, size=(datums, tokens + 1))
    return [
        (
            np.ascontiguousarray(row[:-1], np.int32),
            np.ascontiguousarray(row[1:], np.int64),
            rng.random(tokens).astype(np.float32),
        )
        for row in rows
    ]


def request_message(arrays: list[tuple[Any, Any, Any]]) -> Any:
    """The ForwardBackwardRequest message over the arrays (no copy of their values)."""
    from tinker._wire.proto import messages as m

    return m.ForwardBackwardRequest(
        model_id="m",
        seq_id=1,
        loss_fn="cross_entropy",
        data=[
            m.Datum(
                model_input=[m.EncodedTextChunk(tokens=tokens)],
                loss_fn_inputs={
                    "target_tokens": m.Tensor(
                        dtype=m.DType.INT64, shape=targets.shape, dense=targets
                    ),
                    "weights": m.Tensor(dtype=m.DType.FLOAT32, shape=weights.shape, dense=weights),
                },
            )
            for tokens, targets, weights in arrays
        ],
    )


def output_message(datums: int, tokens: int) -> Any:
    """A ForwardBackwardOutput of `datums` x `tokens` logprobs and losses, in one record."""
    import numpy as np

    from tinker._wire.proto import messages as m

    rng = np.random.default_rng(1)
    offsets = np.arange(datums + 1, dtype=np.int64) * tokens * 4
    fields = {
        name: m.BatchedTensor(
            data=rng.random(datums * tokens).astype(np.float32),
            offsets=offsets,
            dtype=m.DType.FLOAT32,
        )
        for name in ("logprobs", "elementwise_loss")
    }
    record = m.ArrayRecord(fields=fields, num_datums=datums)
    return m.ForwardBackwardOutput(
        loss_fn_output_type="ArrayRecord", loss_fn_outputs=[record], metrics={"loss:sum": 1.0}
    )


def sdk_call(arrays: list[tuple[Any, Any, Any]]) -> Any:
    """Today's SDK values for the batch: Datums built from the same arrays."""
    from tinker import types as T
    from tinker._wire import proto

    data = [
        T.Datum(
            model_input=T.ModelInput.from_ints(tokens.tolist()),
            loss_fn_inputs={"target_tokens": targets, "weights": weights},
        )
        for tokens, targets, weights in arrays
    ]
    return proto.ForwardBackwardCall(model_id="m", seq_id=1, data=data, loss_fn="cross_entropy")


def json_request(call: Any) -> Any:
    from tinker import types as T

    body = T.ForwardBackwardInput(data=list(call.data), loss_fn=call.loss_fn)
    return T.ForwardBackwardRequest(forward_backward_input=body, model_id=call.model_id, seq_id=1)


def split_views(message: Any) -> list[Any]:
    """Per-datum numpy views of a decoded output: what any decoder must hand out."""
    views = []
    for record in message.loss_fn_outputs:
        for batched in record.fields.values():
            bounds = (batched.offsets // batched.data.itemsize).tolist()
            views += [batched.data[a:b] for a, b in itertools.pairwise(bounds)]
    return views


_OFFICIAL = r"""
import json, statistics, sys, time
import numpy as np
from tinker.proto import tinker_public_pb2 as pb
datums, tokens, repeat = map(int, sys.argv[1:4])
rng = np.random.default_rng(0)
rows = rng.integers(0, 50_000, size=(datums, tokens + 1))
arrays = [(np.ascontiguousarray(r[:-1], np.int32), np.ascontiguousarray(r[1:], np.int64),
           rng.random(tokens).astype(np.float32)) for r in rows]
def encode():
    msg = pb.ForwardBackwardRequest(model_id="m", seq_id=1, loss_fn="cross_entropy")
    for a, b, c in arrays:
        d = msg.data.add()
        d.model_input.add().encoded_text.tokens = a.tobytes()
        t = d.loss_fn_inputs["target_tokens"]
        t.dense = b.tobytes(); t.dtype = 2; t.shape.append(tokens)
        w = d.loss_fn_inputs["weights"]
        w.dense = c.tobytes(); w.dtype = 1; w.shape.append(tokens)
    return msg.SerializeToString()
out = pb.ForwardBackwardOutput(loss_fn_output_type="ArrayRecord")
rec = out.loss_fn_outputs.add(); rec.num_datums = datums
for name in ("logprobs", "elementwise_loss"):
    f = rec.fields[name]; f.dtype = 1
    f.data = rng.random(datums * tokens).astype(np.float32).tobytes()
    f.offsets = (np.arange(datums + 1, dtype=np.int64) * tokens * 4).tobytes()
body = out.SerializeToString()
def decode():
    msg = pb.ForwardBackwardOutput(); msg.ParseFromString(body)
    views = []
    for r in msg.loss_fn_outputs:
        for f in r.fields.values():
            data = np.frombuffer(f.data, np.float32)
            bounds = (np.frombuffer(f.offsets, np.int64) // 4).tolist()
            views += [data[a:b] for a, b in zip(bounds, bounds[1:])]
    return views
times = {"encode": [], "decode": []}
for _ in range(repeat):
    for name, step in (("encode", encode), ("decode", decode)):
        t = time.process_time(); step(); times[name].append(time.process_time() - t)
print(json.dumps({k: statistics.median(v) for k, v in times.items()}))
"""


def official_figures(python: str | None, datums: int, tokens: int, repeat: int) -> dict[str, float]:
    """Medians of the official runtime's encode and decode, or {} when it cannot run."""
    if not python or not Path(python).exists():
        return {}
    done = subprocess.run(
        [python, "-c", _OFFICIAL, str(datums), str(tokens), str(repeat)],
        capture_output=True,
        text=True,
        cwd="/",  # away from this checkout, whose `tinker` would shadow the official one
        timeout=600,
    )
    if done.returncode != 0:
        print(f"official 0.38 runtime not measured: {done.stderr.strip().splitlines()[-1:]}")
        return {}
    figures: dict[str, float] = json.loads(done.stdout)
    return figures


def main() -> int:
    from tinker import _wire
    from tinker._wire import compression, proto

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datums", type=int, default=128)
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--official", default=os.environ.get("TINKER_OFFICIAL_038_PYTHON"))
    args = parser.parse_args()

    arrays = batch_arrays(args.datums, args.tokens)
    message = request_message(arrays)
    body = proto.encode(message)
    call = sdk_call(arrays)
    legacy = json_request(call)
    output = output_message(args.datums, args.tokens)
    output_body = proto.encode(output)
    packed = compression.compress(body)

    def floor() -> bytes:
        return b"".join(buffer for datum in arrays for buffer in datum)

    # Cheap steps get many repetitions, apart from the expensive ones (whose garbage and
    # cache misses would otherwise land on them).
    cheap = args.repeat * 5
    encode = interleaved(
        {
            "payload floor (join of the numpy buffers)": floor,
            "proto.encode (message over the arrays)": lambda: proto.encode(message),
            "message built over the arrays": lambda: request_message(arrays),
        },
        cheap,
    )
    encode |= interleaved(
        {
            "encode_forward_backward_request (types)": lambda: (
                proto.encode_forward_backward_request(call)
            ),
            "JSON: tinker._wire.dumps (types)": lambda: _wire.dumps(legacy),
            "zstd compress (level 3)": lambda: compression.compress(body),
        },
        args.repeat,
    )
    decode = interleaved(
        {
            "decode floor (split the payload into views)": lambda: split_views(output),
            "proto.decode ForwardBackwardOutput": lambda: proto.decode(
                output_body, proto.messages.ForwardBackwardOutput
            ),
            "proto.decode + per-datum views": lambda: split_views(
                proto.decode(output_body, proto.messages.ForwardBackwardOutput)
            ),
        },
        cheap,
    )
    decode |= interleaved(
        {
            "decode_forward_backward_output (types)": lambda: proto.decode_forward_backward_output(
                output_body
            ),
            "proto.decode ForwardBackwardRequest (server)": lambda: proto.decode(
                body, proto.messages.ForwardBackwardRequest
            ),
            "zstd decompress (bounded)": lambda: compression.decompress(
                packed, max_output_size=len(body)
            ),
        },
        args.repeat,
    )
    official = official_figures(args.official, args.datums, args.tokens, cheap)

    print(
        f"forward_backward: {args.datums} datums x {args.tokens} tokens; request body "
        f"{len(body) / 1e6:.2f} MB ({len(packed) / 1e6:.2f} MB zstd), output body "
        f"{len(output_body) / 1e6:.2f} MB; medians of {cheap} (cheap steps) or {args.repeat} "
        "interleaved runs"
    )
    for title, figures in (("encode", encode), ("decode", decode)):
        print(f"\n{title}:")
        for label, seconds in figures.items():
            print(f"  {label:<46} {seconds * 1000:9.3f} ms")
    codec = encode["proto.encode (message over the arrays)"]
    floor_s = encode["payload floor (join of the numpy buffers)"]
    sdk = encode["encode_forward_backward_request (types)"]
    views = decode["proto.decode + per-datum views"]
    ratios = {
        "proto.encode / payload floor": codec / floor_s,
        "JSON dumps / encode_forward_backward_request": encode["JSON: tinker._wire.dumps (types)"]
        / sdk,
        "decode + views / decode floor": views
        / decode["decode floor (split the payload into views)"],
    }
    if official:
        ratios["official 0.38 encode (upb) / proto.encode"] = official["encode"] / codec
        ratios["official 0.38 decode + views / ours"] = official["decode"] / views
    print("\nratios:")
    for label, ratio in ratios.items():
        print(f"  {label:<46} {ratio:9.2f}x")
    per_datum_us = (codec - floor_s) / args.datums * 1e6
    print(f"  {'framing over the floor, per datum':<46} {per_datum_us:9.2f} us")
    if official:
        print(
            f"  official 0.38: encode {official['encode'] * 1000:.3f} ms, "
            f"decode + views {official['decode'] * 1000:.3f} ms"
        )
    else:
        print("  official 0.38 runtime: not measured (pass --official PYTHON)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
