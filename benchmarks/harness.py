"""The benchmark plan: which workloads run on which implementation, how often, in what order.

Every measurement is a fresh client process; repetitions of one workload interleave the
implementations (A B C, B C A, ...) so that drift of a noisy machine hits them all alike.
"""

from __future__ import annotations

import logging
import statistics
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from benchmarks.processes import RunFailed, Server, run_client, serve

log = logging.getLogger("benchmarks")

SYNC, OFFICIAL, RAW = "tinker-sync", "official 0.5.1", "raw urllib3"
OFFICIAL_038 = "official 0.38"
RAW_REQUESTS = "raw requests"
EMBEDDED_MODEL = "tinker-local/tiny"


@dataclass(frozen=True)
class Workload:
    """One benchmark: the runner workload, its parameters and the server it needs."""

    key: str
    runner: str
    params: dict[str, Any]
    reps: int
    impls: tuple[str, ...]
    server: str | None = "stub"  # "stub", "embedded" or None


@dataclass
class Outcome:
    """All runs of one workload on one implementation, or why there are none."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    profile: str | None = None

    def median(self, metric: str) -> float | None:
        values = [r[metric] for r in self.runs if isinstance(r.get(metric), (int, float))]
        return statistics.median(values) if values else None

    def medians(self) -> dict[str, float]:
        names = {k for run in self.runs for k, v in run.items() if isinstance(v, (int, float))}
        return {name: value for name in sorted(names) if (value := self.median(name)) is not None}


Results = dict[str, dict[str, Outcome]]


def plan(*, quick: bool = False) -> list[Workload]:
    """The six workloads of docs/performance.md; `quick` cuts repetitions for a smoke run."""

    def reps(full: int) -> int:
        return 1 if quick else full

    sdks = (SYNC, OFFICIAL, OFFICIAL_038)
    everyone = (*sdks, RAW)
    return [
        Workload("import", "import", {}, reps(10), sdks, server=None),
        Workload("create", "create", {}, reps(5), sdks),
        Workload("sample_1000", "sample", {"n": 1000}, reps(3), (*everyone, RAW_REQUESTS)),
        Workload("sample_4000", "sample", {"n": 4000}, reps(3), (*everyone, RAW_REQUESTS)),
        Workload(
            "forward_backward",
            "forward_backward",
            {"datums": 128, "tokens": 2048},
            reps(5),
            everyone,
        ),
        Workload(
            "poll", "poll", {"futures": 500, "delay": 0.05, "concurrency": 10}, reps(3), everyone
        ),
        Workload("poll_many", "poll_many", {"n": 1000, "spread": 2.0}, reps(3), sdks),
        Workload(
            "poll_many_batch",
            "poll_many",
            {"n": 1000, "spread": 2.0, "batch_poller": True},
            reps(3),
            (SYNC, OFFICIAL_038),
        ),
        Workload(
            "train",
            "train",
            {"steps": 50, "batch": 8, "tokens": 128, "base_model": EMBEDDED_MODEL},
            reps(2),
            (SYNC, OFFICIAL),
            server="embedded",
        ),
    ]


def interpreters(
    official: str | None, official_038: str | None = None
) -> dict[str, tuple[str, str]]:
    """Implementation name -> (python executable, runner --impl)."""
    found = {
        SYNC: (sys.executable, "sdk"),
        RAW: (sys.executable, "raw"),
        RAW_REQUESTS: (sys.executable, "raw-requests"),
    }
    if official is not None:
        found[OFFICIAL] = (official, "sdk")
    if official_038 is not None:
        found[OFFICIAL_038] = (official_038, "sdk")
    return found


def _rotations(impls: list[str], reps: int) -> Iterator[str]:
    for rep in range(reps):
        shift = rep % len(impls)
        yield from impls[shift:] + impls[:shift]


class Bench:
    """Runs workloads against one stub and one embedded server process (started on first use)."""

    def __init__(
        self,
        official: str | None,
        progress: Callable[[str], None] = print,
        official_038: str | None = None,
    ) -> None:
        self.pythons = interpreters(official, official_038)
        self.results: Results = {}
        self._progress = progress
        self._stack = ExitStack()
        self._servers: dict[str, Server | str] = {}

    def __enter__(self) -> Bench:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _server(self, kind: str) -> Server | str:
        if kind not in self._servers:
            module = "benchmarks.stub" if kind == "stub" else "benchmarks.embedded"
            try:
                self._servers[kind] = self._stack.enter_context(serve(module))
            except RunFailed as exc:
                self._servers[kind] = f"{kind} server unavailable: {exc}"
        return self._servers[kind]

    def _run(self, workload: Workload, name: str, *, profile: bool = False) -> dict[str, Any]:
        server = self._server(workload.server) if workload.server else None
        if isinstance(server, str):
            raise RunFailed(server)
        python, impl = self.pythons[name]
        params = dict(workload.params)
        if server is not None:
            params["server_pid"] = server.pid
        url = server.url if server else ""
        return run_client(
            python, workload.runner, impl=impl, url=url, params=params, profile=profile
        )

    def measure(self, workload: Workload) -> None:
        """All repetitions of one workload, implementations interleaved."""
        impls = [name for name in workload.impls if name in self.pythons]
        outcomes = self.results.setdefault(workload.key, {name: Outcome() for name in impls})
        for name in _rotations(impls, workload.reps):
            try:
                run = self._run(workload, name)
            except RunFailed as exc:
                outcomes[name].errors.append(str(exc))
                self._progress(f"  {workload.key:<17} {name:<15} FAILED {exc}")
                continue
            outcomes[name].runs.append(run)
            self._progress(f"  {workload.key:<17} {name:<15} {_headline(run)}")

    def profile(self, workload: Workload, name: str) -> None:
        """One extra run under cProfile (all threads); its top entries go into the results."""
        try:
            run = self._run(workload, name, profile=True)
        except RunFailed as exc:
            self._progress(f"  profile of {workload.key} on {name} failed: {exc}")
            return
        self.results[workload.key][name].profile = str(run.get("profile", ""))


def _headline(run: dict[str, Any]) -> str:
    keys = (
        "import_s",
        "create_wall_s",
        "requests_per_s",
        "cpu_ms_per_request",
        "total_cpu_s",
        "median_ms",
        "run_wall_s",
    )
    return "  ".join(f"{k}={run[k]:.4g}" for k in keys if isinstance(run.get(k), (int, float)))
