"""Targets are judged on medians of the same run, and a missing side is pending, never a pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import report
from benchmarks.harness import OFFICIAL, RAW, SYNC, Outcome, Results


def outcome(metric: str, *values: float) -> Outcome:
    return Outcome(runs=[{metric: v} for v in values])


def verdicts(results: Results) -> dict[str, bool | None]:
    return {t.name: t.passed for t in report.evaluate_targets(results)}


def test_ratio_targets_use_medians_of_each_side() -> None:
    results: Results = {
        # medians 1.5 s and 0.1 s: exactly 15x passes; the outlier runs do not count
        "import": {
            OFFICIAL: outcome("import_s", 1.4, 1.5, 9.0),
            SYNC: outcome("import_s", 0.1, 0.1, 0.5),
        },
        "sample_1000": {
            OFFICIAL: outcome("cpu_ms_per_request", 6.0, 6.0),
            SYNC: outcome("cpu_ms_per_request", 2.0, 2.0),
            RAW: outcome("cpu_ms_per_request", 1.5, 1.5),
        },
    }
    got = verdicts(results)
    assert got["import time <= 1/15 of official"] is True
    assert got["client CPU per sample <= 1/5 of official (N=1000)"] is False  # 3x only
    assert got["client CPU per sample <= 1.5x raw urllib3 (N=1000)"] is True  # 1.33x raw


def test_missing_side_is_pending_not_pass() -> None:
    results: Results = {"import": {SYNC: outcome("import_s", 0.01), OFFICIAL: Outcome()}}
    targets = {t.name: t for t in report.evaluate_targets(results)}
    target = targets["import time <= 1/15 of official"]
    assert target.passed is None
    assert OFFICIAL in target.measured


def test_threads_must_not_grow_with_in_flight_requests() -> None:
    def results(low: float, high: float) -> Results:
        return {
            "sample_1000": {SYNC: outcome("peak_threads", low)},
            "sample_4000": {SYNC: outcome("peak_threads", high)},
        }

    name = "thread count independent of N (1,000 vs 4,000 in flight)"
    assert verdicts(results(53, 53))[name] is True
    assert verdicts(results(49, 53))[name] is True  # a pool still filling up at N=1,000
    assert verdicts(results(53, 60))[name] is False
    assert verdicts(results(10, 40))[name] is False


def test_poll_latency_target_is_absolute() -> None:
    name = "poll pick-up latency median < 5 ms on loopback"
    assert verdicts({"poll": {SYNC: outcome("median_ms", 1.0, 7.0, 2.0)}})[name] is True
    assert verdicts({"poll": {SYNC: outcome("median_ms", 6.0)}})[name] is False


def test_markdown_marks_misses_and_pending(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results: Results = {
        "poll": {SYNC: outcome("median_ms", 9.0), OFFICIAL: outcome("median_ms", 3.0)},
        "import": {SYNC: Outcome(errors=["ImportError"]), OFFICIAL: outcome("import_s", 1.0)},
    }
    text = report.markdown(results, report.evaluate_targets(results))
    assert "| poll pick-up latency median < 5 ms on loopback | 9.00 ms | **MISS** |" in text
    assert "| `import tinker` wall (ms) | pending | 1,000 |" in text
    monkeypatch.setattr(report, "RESULTS_DIR", tmp_path)
    path = report.write_json(results, report.evaluate_targets(results), {"c": "out"}, {}, {})
    loaded, components = report.load_json(path)
    assert loaded["poll"][SYNC].median("median_ms") == 9.0
    assert loaded["import"][SYNC].errors == ["ImportError"]
    assert components == {"c": "out"}
