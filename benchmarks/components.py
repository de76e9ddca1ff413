"""The component benchmarks beside this harness (import, wire, transport, compute, the two
protocol eras), run as-is.

Each is a standalone script that prints its own figures; the harness runs it once in this
checkout's interpreter and keeps its output with the run's results.
"""

from __future__ import annotations

import subprocess
import sys

from benchmarks.processes import ROOT

SCRIPTS: dict[str, list[str]] = {
    "import (bench_import.py)": ["benchmarks/bench_import.py", "--runs", "7"],
    "wire format (bench_wire.py)": ["benchmarks/bench_wire.py", "--repeat", "3"],
    "protobuf codec (bench_proto.py)": ["benchmarks/bench_proto.py", "--repeat", "5"],
    "transport (bench_transport.py)": ["benchmarks/bench_transport.py", "--ops", "2000"],
    "local compute (bench_compute.py)": ["benchmarks/bench_compute.py", "--repeats", "2"],
    "today's protocol vs official 0.38 (bench_eras.py)": ["benchmarks/bench_eras.py"],
}


def run_components(timeout: float = 240.0) -> dict[str, str]:
    """Name -> printed output (or the reason there is none) of every script that exists."""
    outputs: dict[str, str] = {}
    for name, (script, *args) in SCRIPTS.items():
        if not (ROOT / script).exists():
            continue
        try:
            done = subprocess.run(
                [sys.executable, script, *args],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            outputs[name] = f"did not finish within {timeout} s"
            continue
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            outputs[name] = f"failed (exit {done.returncode}): {tail}"
        else:
            outputs[name] = done.stdout.rstrip()
    return outputs
