"""tinker-sync beside the official SDK 0.38, both on today's protocol, against one tinker.local
(prints figures, asserts nothing).

Each client runs in its own fresh interpreter (this checkout's, and the official 0.38 venv's
when it exists: `make official-venvs`) and reports its own process CPU time (all threads):

- ready sampler: from interpreter start (`import tinker` included) to a SamplingClient on the
  base model;
- forward_backward: building a batch of `--datums` x `--tokens` from numpy arrays, then
  submitting it and waiting for the result (the server's compute is not in the client's CPU),
  median of `--repeat` runs after one warm-up.

Run: `python benchmarks/bench_eras.py [--datums N] [--tokens N] [--repeat N]`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODEL = "tinker-local/tiny"
API_KEY = "tml-bench-eras"


def client(url: str, datums: int, tokens: int, repeat: int) -> dict[str, Any]:
    """The client side (run in a fresh interpreter): its own CPU figures."""
    started = time.process_time()
    import numpy as np

    import tinker
    from tinker import types

    with tinker.ServiceClient(base_url=url, api_key=API_KEY) as service:
        service.create_sampling_client(base_model=MODEL)
        ready = time.process_time() - started
        trainer = service.create_lora_training_client(base_model=MODEL, rank=8)
        rows = np.random.default_rng(0).integers(0, 255, size=(datums, tokens)).astype(np.int64)
        weights = np.ones(tokens, dtype=np.float32)
        build, submit = [], []
        for _ in range(repeat + 1):
            t0 = time.process_time()
            batch = [
                types.Datum(
                    model_input=types.ModelInput.from_ints(row.tolist()),
                    loss_fn_inputs={
                        "target_tokens": types.TensorData.from_numpy(row),
                        "weights": types.TensorData.from_numpy(weights),
                    },
                )
                for row in rows
            ]
            t1 = time.process_time()
            trainer.forward_backward(batch, "cross_entropy").result()
            build.append(t1 - t0)
            submit.append(time.process_time() - t1)
    return {
        "ready_sampler_s": ready,
        "build_s": statistics.median(build[1:]),
        "submit_result_s": statistics.median(submit[1:]),
    }


def _official_038() -> str | None:
    sys.path.insert(0, str(ROOT / "scripts"))
    import official_venvs

    python: str | None = official_venvs.official_python("0.38.0", create=False)
    return python


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datums", type=int, default=128)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        print(json.dumps(client(args.client, args.datums, args.tokens, args.repeat)))
        return 0
    from tinker.local import serve

    pythons = {"tinker-sync": sys.executable}
    official = _official_038()
    if official is None:
        print("official 0.38: not measured (no venv; `make official-venvs` builds it)")
    else:
        pythons["official 0.38"] = official
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TINKER_", "PYTHON"))}
    env["TINKER_TELEMETRY"] = "0"
    figures: dict[str, dict[str, Any]] = {}
    with (
        tempfile.TemporaryDirectory() as data,
        serve(data_dir=data, api_key=API_KEY, long_poll_seconds=2.0) as server,
    ):
        for name, python in pythons.items():
            command = [python, str(Path(__file__).resolve()), "--client", server.url]
            command += ["--datums", str(args.datums), "--tokens", str(args.tokens)]
            command += ["--repeat", str(args.repeat)]
            done = subprocess.run(
                command, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir()
            )
            if done.returncode != 0:
                print(f"{name}: failed: {done.stderr.strip().splitlines()[-1:]}")
                continue
            figures[name] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"forward_backward {args.datums} x {args.tokens}, client CPU (median of {args.repeat}):")
    for name, got in figures.items():
        total = got["build_s"] + got["submit_result_s"]
        print(
            f"  {name:14} build {got['build_s'] * 1e3:7.1f} ms  submit+result "
            f"{got['submit_result_s'] * 1e3:7.1f} ms  total {total * 1e3:7.1f} ms  "
            f"ready sampler {got['ready_sampler_s'] * 1e3:6.1f} ms"
        )
    if len(figures) == 2:
        ours, theirs = figures["tinker-sync"], figures["official 0.38"]
        ratio = (theirs["build_s"] + theirs["submit_result_s"]) / (
            ours["build_s"] + ours["submit_result_s"]
        )
        ready = theirs["ready_sampler_s"] / ours["ready_sampler_s"]
        print(f"  official 0.38 / tinker-sync: forward_backward {ratio:.2f}x, ready {ready:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
