"""Opt-in: a fresh capture of the official SDKs matches the committed fixtures.

Regenerates tests/fixtures/official-* into a temporary directory (scripts/official_capture.py) and
compares, call by call and mode by mode, the set of requests each call sends: method, path, query,
x-sdk-method and the body (JSON, or the protobuf decoded field by field). Timing-dependent traffic
(polls, heartbeats, telemetry, config refreshes) is left out of the comparison.
"""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any

import pytest

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))

import official_capture

TIMING_DEPENDENT_PATHS = {
    "/api/v1/retrieve_future",
    "/api/v1/retrieve_futures",
    "/api/v1/telemetry",
    "/api/v1/session_heartbeat",
    "/api/v1/client/dynamic_config",
}
TIMING_DEPENDENT_CALLS = {"background", "after-close", "startup"}
CLONE_STRIDE = 1_000_000_000

pytestmark = [pytest.mark.optin, pytest.mark.slow, pytest.mark.timeout(900)]


def canonical_body(request: dict[str, Any], mode: str) -> str:
    body = request["body"]
    if "protobuf" in body:
        return json.dumps(body["protobuf"]["fields"], sort_keys=True)
    value = body.get("json")
    if mode == "plain" and isinstance(value, dict) and value.get("seq_id", 0) >= CLONE_STRIDE:
        # Without join_sampling_session an unpickled sampler picks a random clone id.
        value = {**value, "seq_id": f"<random clone> + {value['seq_id'] % CLONE_STRIDE}"}
    return json.dumps(value, sort_keys=True)


def signature(fixture: dict[str, Any]) -> dict[str, list[tuple[str, ...]]]:
    """Per mode, the distinct requests of one call, sorted (concurrent submits may reorder)."""
    return {
        mode: sorted(
            {
                (
                    r["method"],
                    r["path"],
                    r["query"],
                    r["headers"].get("x-sdk-method", ""),
                    canonical_body(r, mode),
                )
                for r in requests
                if r["path"] not in TIMING_DEPENDENT_PATHS
            }
        )
        for mode, requests in fixture["modes"].items()
    }


def load_calls(directory: pathlib.Path) -> dict[str, dict[str, Any]]:
    index = json.loads((directory / "index.json").read_text())
    return {
        label: json.loads((directory / "calls" / f"{label}.json").read_text())
        for label in index["calls"]
        if label not in TIMING_DEPENDENT_CALLS
    }


@pytest.mark.parametrize("version", list(official_capture.CAPTURES))
def test_a_fresh_capture_matches_the_committed_fixtures(
    version: str, tmp_path: pathlib.Path
) -> None:
    fresh_dir = official_capture.fixture_dir(version, tmp_path / "fixtures")
    work = tmp_path / "work"
    work.mkdir()
    official_capture.capture(version, fresh_dir, work)
    committed = load_calls(official_capture.fixture_dir(version))
    fresh = load_calls(fresh_dir)
    assert sorted(fresh) == sorted(committed)
    for label, fixture in committed.items():
        assert signature(fresh[label]) == signature(fixture), label
