"""Cost of the wire format for a large forward_backward body (prints figures, asserts nothing).

Builds 128 datums x 2048 tokens (cross_entropy: target_tokens + weights) from numpy arrays,
then times each step against a baseline measured in the same run: `json.dumps` of the same
data already as plain lists and dicts (the floor any encoder has to pay) and `json.loads`.

Run: `python benchmarks/bench_wire.py [--datums N] [--tokens N] [--repeat N]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any


def timed(fn: Callable[[], Any], repeat: int) -> float:
    """Median seconds of `repeat` calls."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def measure(request: Any, repeat: int) -> tuple[dict[str, float], int]:
    """Median seconds of each wire step for one request, and the body size in bytes."""
    from tinker import _wire

    plain = _wire.unstructure(request)
    encoded = _wire.dumps(request)
    decoded = json.loads(encoded)
    figures = {
        "unstructure": timed(lambda: _wire.unstructure(request), repeat),
        "dumps (unstructure + JSON)": timed(lambda: _wire.dumps(request), repeat),
        "baseline json.dumps of plain dict": timed(
            lambda: json.dumps(plain, separators=(",", ":")), repeat
        ),
        "loads": timed(lambda: _wire.loads(encoded), repeat),
        "structure (server side)": timed(lambda: _wire.structure(decoded, type(request)), repeat),
    }
    return figures, len(encoded)


def main() -> int:
    import numpy as np

    from tinker import types as T

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datums", type=int, default=128)
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    sequences = rng.integers(0, 50_000, size=(args.datums, args.tokens + 1))

    def batch(weights: Callable[[], Any]) -> Any:
        data = [
            T.Datum(
                model_input=T.ModelInput.from_ints(row[:-1].tolist()),
                loss_fn_inputs={"target_tokens": row[1:], "weights": weights()},
            )
            for row in sequences
        ]
        body = T.ForwardBackwardInput(data=data, loss_fn="cross_entropy", loss_fn_config=None)
        return T.ForwardBackwardRequest(forward_backward_input=body, model_id="m", seq_id=1)

    cases = {
        "0/1 weights": lambda: np.ones(args.tokens, dtype=np.float32),
        "random weights": lambda: rng.random(args.tokens).astype(np.float32),
    }
    print(f"forward_backward body: {args.datums} datums x {args.tokens} tokens")
    for name, weights in cases.items():
        build = timed(lambda weights=weights: batch(weights), 1)
        figures, size = measure(batch(weights), args.repeat)
        figures = {f"build {args.datums} Datums (numpy in)": build, **figures}
        ratio = figures["dumps (unstructure + JSON)"] / figures["baseline json.dumps of plain dict"]
        print(f"\n{name}: body {size / 1e6:.1f} MB")
        for label, seconds in figures.items():
            print(f"  {label:<36} {seconds * 1000:8.1f} ms")
        print(f"  dumps / baseline: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
