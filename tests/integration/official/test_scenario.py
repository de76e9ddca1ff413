"""Opt-in acceptance: one end-to-end scenario (scenario.py) run by every SDK on one tinker.local.

The official SDK 0.38.0 with 0.38 idioms, the official SDK 0.5.1 with 0.5.1 idioms and tinker-sync
with both (under `-W error`: no idiom of either era warns), each in its own interpreter, against
one `tinker.local.serve(...)` speaking both protocol eras (and again against one with injected
faults, 429 answers to polls and 402 billing pauses included; each client only meets the faults
its era survives). The 0.5.1-era runs also
run against a server told to speak only the 0.5.1 protocol. Every run must pass every step and
produce bit-identical losses and the same sampled tokens as the reference run (tinker-sync, 0.5.1
idioms, no faults).
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tinker.local import EngineConfig, LocalServer, serve

from .conftest import HERE, official_python

SCENARIO = HERE / "scenario.py"
FAULTS = (
    "train.5xx=0.1,sample.429=0.2,poll.408=0.3,poll.429=0.1,*.402=0.01,*.drop_response=0.03,seed=4"
)
OLD_ONLY = "0.5.1 protocol only"
NEW_ONLY = "0.38 protocol only"
COMPARED = ("losses", "continuation", "forward_at_save", "sample_tokens", "rl_losses")
SDKS: dict[str, Callable[[], str]] = {
    "official-0.38.0": lambda: official_python("0.38.0"),
    "official-0.5.1": lambda: official_python("0.5.1"),
    "tinker-sync": lambda: sys.executable,
}
# Steps an SDK cannot do in that era's idioms: official 0.5.1 has no load_state_with_optimizer,
# no pickling of SamplingClient and no ServiceClient.close().
SKIPPED = {
    ("official-0.5.1", "0.5.1"): [
        "resume_with_optimizer",
        "pickled_sampler_in_subprocess",
        "close_session",
    ]
}

# The probe's calls that tinker.local answers with an error, on purpose, and why (a piece of
# each error message): what the capture driver expects only of the capture server, and calls
# the local text models or the local server refuse.
PROBE_REFUSALS = {
    # The capture server never finishes this sample; a real one finishes it quickly.
    "SamplingClient.sample.abandoned_then_cancelled": "the never-finishing sample finished",
    # The local models read tokens only.
    "TrainingClient.forward_backward.image_chunk": "ImageChunk chunks are not supported",
    # 2-D (top-K distillation) targets are optional for a local backend and not supported.
    "TrainingClient.forward.sparse_2d_target_tokens": "has shape [4, 4], expected [4]",
    # importance_sampling takes no loss_fn_config (COMPUTE 1.2).
    "TrainingClient.forward_backward.importance_sampling_numpy_config": "accepted keys: none",
    # The driver's stable_reinforce datum has no provenance spans naming sampled sequences.
    "TrainingClient.forward_backward.stable_reinforce": "needs provenance spans",
    # No age encryption library: exports with recipients are refused.
    "TrainingClient.save_weights_external.all_arguments": "age encryption",
    # The driver deleted this sampler's checkpoint a few calls earlier.
    "SamplingClient.sample_async": "was deleted",
}
RUNS = [
    pytest.param("official-0.38.0", "0.38"),
    pytest.param("official-0.5.1", "0.5.1"),
    pytest.param("tinker-sync", "0.5.1"),
    pytest.param("tinker-sync", "0.38"),
]

pytestmark = [pytest.mark.optin, pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str | None, LocalServer]]:
    """A clean tinker.local, one with injected faults and one speaking only the 0.5.1
    protocol, shared by every run."""
    config = EngineConfig(long_poll_seconds=2.0, session_idle_seconds=None)
    root = tmp_path_factory.mktemp("scenario-servers")
    with (
        serve(data_dir=root / "clean", config=config) as clean,
        serve(data_dir=root / "faults", config=config, faults=FAULTS) as faulty,
        serve(data_dir=root / "old", config=config, protocol="0.5.1") as old_only,
        serve(data_dir=root / "new", config=config, protocol="0.38") as new_only,
    ):
        yield {None: clean, FAULTS: faulty, OLD_ONLY: old_only, NEW_ONLY: new_only}


def run_scenario(python: str, url: str, idioms: str, cwd: pathlib.Path) -> dict[str, Any]:
    """Run scenario.py in `python`; return its results or fail naming the first failed step.

    tinker-sync runs with every Python warning an error: neither idiom may warn."""
    strict = ["-W", "error"] if python == sys.executable else []
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TINKER_", "PYTHON"))}
    # A neutral working directory, so no interpreter imports this checkout's tinker/ by accident.
    done = subprocess.run(
        [python, *strict, str(SCENARIO), url, "--idioms", idioms],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env=env,
    )
    if done.returncode != 0 or "scenario: all steps passed" not in done.stdout:
        failed = re.search(r"^STEP FAILED: .*$", done.stderr, re.MULTILINE)
        first = failed.group(0) if failed else done.stderr.strip()[-2000:]
        passed = re.findall(r"^step ok: (.*)$", done.stdout, re.MULTILINE)
        pytest.fail(f"{first}\n(steps passed before it: {', '.join(passed)})", pytrace=False)
    results: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


@pytest.fixture(scope="module")
def reference(
    servers: dict[str | None, LocalServer], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """tinker-sync with 0.5.1 idioms on the clean server: the numbers every run must match."""
    cwd = tmp_path_factory.mktemp("reference")
    return run_scenario(sys.executable, servers[None].url, "0.5.1", cwd)


@pytest.mark.parametrize("faults", [None, FAULTS], ids=["clean", "faults"])
@pytest.mark.parametrize(("sdk", "idioms"), RUNS)
def test_scenario_passes_with_identical_numbers(
    sdk: str,
    idioms: str,
    faults: str | None,
    servers: dict[str | None, LocalServer],
    reference: dict[str, Any],
    tmp_path: pathlib.Path,
) -> None:
    results = run_scenario(SDKS[sdk](), servers[faults].url, idioms, tmp_path)
    assert results["skipped"] == SKIPPED.get((sdk, idioms), [])
    assert len(results["losses"]) >= 2 and results["losses"][-1] <= results["losses"][0] / 2
    for key in COMPARED:
        assert results[key] == reference[key], f"{key}: {results[key]} != {reference[key]}"
    injector = servers[faults].faults
    assert faults is None or (injector is not None and sum(injector.injected.values()) > 0)


@pytest.mark.parametrize("sdk", ["official-0.5.1", "tinker-sync"])
def test_0_5_1_clients_pass_on_a_server_speaking_only_0_5_1(
    sdk: str,
    servers: dict[str | None, LocalServer],
    reference: dict[str, Any],
    tmp_path: pathlib.Path,
) -> None:
    results = run_scenario(SDKS[sdk](), servers[OLD_ONLY].url, "0.5.1", tmp_path)
    for key in COMPARED:
        assert results[key] == reference[key], f"{key}: {results[key]} != {reference[key]}"


def test_tinker_sync_negotiates_0_38_on_a_server_speaking_only_0_38(
    servers: dict[str | None, LocalServer],
    reference: dict[str, Any],
    tmp_path: pathlib.Path,
) -> None:
    """The same code as on a 0.5.1-only server (0.5.1 idioms): the handshake picks the era."""
    results = run_scenario(sys.executable, servers[NEW_ONLY].url, "0.5.1", tmp_path)
    for key in COMPARED:
        assert results[key] == reference[key], f"{key}: {results[key]} != {reference[key]}"


def test_every_public_call_of_official_038_goes_through_on_tinker_local(
    servers: dict[str | None, LocalServer], tmp_path: pathlib.Path
) -> None:
    """The capture driver in probe mode: every public 0.38 call, failures listed, none stops it;
    only the known refusals fail, each for its reason."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TINKER_", "PYTHON"))}
    done = subprocess.run(
        [
            official_python("0.38.0"),
            str(HERE / "capture_driver_038.py"),
            servers[None].url,
            "probe",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env=env,
    )
    failures = dict(re.findall(r"^FAILED ([\w.]+): (.*)$", done.stdout, re.MULTILINE))
    assert set(failures) == set(PROBE_REFUSALS), "\n".join(
        f"{label}: {failures.get(label, 'passed')}" for label in set(failures) ^ set(PROBE_REFUSALS)
    )
    for label, reason in PROBE_REFUSALS.items():
        assert reason in failures[label], (label, failures[label])
    assert len(re.findall(r"^ok ", done.stdout, re.MULTILINE)) >= 80, done.stdout[-3000:]
