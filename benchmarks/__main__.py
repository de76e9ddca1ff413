"""`python -m benchmarks [--compare]`: run the workloads, print the table, write the JSON file."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.components import run_components
from benchmarks.harness import OFFICIAL, SYNC, Bench, Results, plan
from benchmarks.processes import RunFailed, official_python, run_client
from benchmarks.report import (
    TargetResult,
    evaluate_targets,
    load_json,
    machine,
    markdown,
    write_json,
)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--compare",
        action="store_true",
        help="also run the official SDKs 0.5.1 and 0.38 (creates .venvs/official-*)",
    )
    parser.add_argument("--quick", action="store_true", help="one repetition each (smoke run)")
    parser.add_argument("--only", nargs="*", default=None, help="workload keys to run")
    parser.add_argument(
        "--no-profile",
        action="store_true",
        help="skip the cProfile run of tinker-sync for missed targets",
    )
    parser.add_argument(
        "--no-components",
        action="store_true",
        help="skip bench_import.py, bench_wire.py and bench_compute.py",
    )
    parser.add_argument("--render", type=Path, help="print the tables of a results JSON file")
    return parser.parse_args()


Measured = tuple[Results, list[TargetResult], dict[str, str], Path, float]


def measure(args: argparse.Namespace) -> Measured:
    """Run the plan (and profiles of missed targets) and the components; write the JSON file."""
    official = official_python(create=args.compare) if args.compare else None
    official_038 = official_python(create=True, version="0.38.0") if args.compare else None
    workloads = [w for w in plan(quick=args.quick) if args.only is None or w.key in args.only]
    started = time.monotonic()
    load_before = os.getloadavg()
    versions: dict[str, dict[str, Any]] = {}
    with Bench(official, official_038=official_038) as bench:
        for python in sorted({python for python, _ in bench.pythons.values()}):
            names = ", ".join(n for n, (p, _) in bench.pythons.items() if p == python)
            try:
                versions[names] = run_client(python, "versions")
            except RunFailed as exc:
                versions[names] = {"error": str(exc)}
        for workload in workloads:
            print(
                f"{workload.key}: {workload.reps} run(s) each of {', '.join(workload.impls)}",
                flush=True,
            )
            bench.measure(workload)
        targets = evaluate_targets(bench.results)
        if not args.no_profile:
            by_key = {w.key: w for w in workloads}
            for key in sorted({t.workload for t in targets if t.passed is False}):
                if key in by_key:
                    print(f"profiling {key} on {SYNC} (missed target)", flush=True)
                    bench.profile(by_key[key], SYNC)
    components = {} if args.no_components or args.only else run_components()
    elapsed = round(time.monotonic() - started, 1)
    settings = {
        "quick": args.quick,
        "compare": official is not None,
        "elapsed_s": elapsed,
        "workloads": {w.key: {"params": w.params, "reps": w.reps} for w in workloads},
    }
    info = machine(versions)
    # Other work on the machine skews wall times more than CPU times: keep the load with the run.
    info["load_average"] = {"start": load_before, "end": os.getloadavg()}
    path = write_json(bench.results, targets, components, info, settings)
    return bench.results, targets, components, path, elapsed


def show(results: Results, targets: list[TargetResult], components: dict[str, str]) -> None:
    """The tables, what could not be measured, the profiles, then the component benchmarks."""
    print()
    print(markdown(results, targets))
    for key, outcomes in results.items():
        for impl, outcome in outcomes.items():
            if outcome.errors and not outcome.runs:
                print(f"\n{key} on {impl}: not measured: {outcome.errors[0]}")
            if outcome.profile:
                print(
                    f"\nProfile of {key} on {impl} (measured part, all threads, CPU time):\n"
                    f"{outcome.profile}"
                )
    if not any(OFFICIAL in outcomes for outcomes in results.values()):
        print(f"\n{OFFICIAL} not run: `make bench-compare` adds it.")
    for name, output in components.items():
        print(f"\nComponent benchmark: {name}\n{output}")


def main() -> int:
    args = _arguments()
    if args.render is not None:
        results, components = load_json(args.render)
        show(results, evaluate_targets(results), components)
        return 0
    results, targets, components, path, elapsed = measure(args)
    show(results, targets, components)
    print(f"\nJSON: {path}  ({elapsed} s; load average at the end {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
