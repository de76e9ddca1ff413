"""How long `import tinker` takes and how much memory it needs (prints figures, asserts nothing).

Each statement runs in a fresh interpreter several times; the median wall time and the median
peak RSS are printed next to an empty interpreter measured in the same run (machines are noisy,
so the difference to that baseline is the figure that matters). Target: under 0.15 s, and no
numpy/torch/transformers/requests loaded by `import tinker`.

Run: `python benchmarks/bench_import.py [--runs N]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

HEAVY = (
    "numpy",
    "torch",
    "transformers",
    "requests",
    "urllib3",
    "cattrs",
    "tokenizers",
    "safetensors",
)

STATEMENTS = {
    "python (baseline)": "pass",
    "import tinker": "import tinker",
    "import tinker.types": "import tinker.types",
    "tinker.types.ModelInput": "import tinker; tinker.types.ModelInput.from_ints([1])",
}

# The child prints its peak RSS (KiB on Linux) and which heavy modules it loaded.
_PROBE = (
    "\nimport json as _j, resource as _r, sys as _s\n"
    "_s.stdout.write(_j.dumps([_r.getrusage(_r.RUSAGE_SELF).ru_maxrss, "
    "sorted(set({heavy!r}) & set(_s.modules))]))\n"
)


def measure(statement: str, runs: int) -> tuple[float, float, list[str]]:
    """Median wall seconds, median peak RSS (MiB) and the heavy modules loaded."""
    code = statement + _PROBE.format(heavy=HEAVY)
    walls: list[float] = []
    rss: list[float] = []
    loaded: list[str] = []
    for _ in range(runs):
        started = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        walls.append(time.perf_counter() - started)
        peak_kib, loaded = json.loads(out.stdout)
        rss.append(peak_kib / 1024)
    return statistics.median(walls), statistics.median(rss), loaded


def slowest_imports(statement: str, count: int) -> list[tuple[int, str]]:
    """The modules with the largest cumulative import time (microseconds), via -X importtime."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line[len("import time:") :].split("|")
        rows.append((int(cumulative), name.strip()))
    return sorted(rows, reverse=True)[:count]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11, help="interpreters per statement")
    args = parser.parse_args()

    results = {name: measure(code, args.runs) for name, code in STATEMENTS.items()}
    base_wall, base_rss, _ = results["python (baseline)"]
    print(f"{'statement':<26} {'wall s':>8} {'+ vs base':>10} {'peak MiB':>9} {'+ MiB':>7}  heavy")
    for name, (wall, rss, loaded) in results.items():
        heavy = ", ".join(loaded) or "none"
        print(
            f"{name:<26} {wall:8.3f} {wall - base_wall:10.3f} {rss:9.1f} {rss - base_rss:7.1f}"
            f"  {heavy}"
        )
    print("\nslowest modules of `import tinker` (cumulative, ms):")
    for micros, name in slowest_imports("import tinker", 8):
        print(f"  {micros / 1000:7.1f}  {name}")
    verdict = "meets" if results["import tinker"][0] < 0.15 else "misses"
    print(f"\n`import tinker` {verdict} the 0.15 s target (median of {args.runs}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
