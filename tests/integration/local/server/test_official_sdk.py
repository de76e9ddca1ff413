"""Opt-in: the official `tinker` SDK (in its own interpreter) against this server, with faults.

Set TINKER_OPTIN=1 and TINKER_OFFICIAL_PYTHON to a Python that has the official SDK installed
(e.g. `python -m venv /tmp/official && /tmp/official/bin/pip install tinker==0.5.1`).
"""

from __future__ import annotations

import os
import pathlib
import subprocess

import pytest

from tinker.local import EngineConfig, serve

OFFICIAL_PYTHON = os.environ.get("TINKER_OFFICIAL_PYTHON", "")
SCRIPT = pathlib.Path(__file__).with_name("official_sdk_script.py")

pytestmark = [
    pytest.mark.optin,
    pytest.mark.skipif(
        not (os.environ.get("TINKER_OPTIN") and OFFICIAL_PYTHON),
        reason="needs TINKER_OPTIN=1 and TINKER_OFFICIAL_PYTHON (a Python with the official SDK)",
    ),
]


@pytest.mark.parametrize(
    "faults",
    [None, "train.5xx=0.1,sample.429=0.2,poll.408=0.3,*.drop_response=0.03,seed=4"],
)
def test_official_sdk_script_runs_against_the_local_server(
    tmp_path: pathlib.Path, faults: str | None
) -> None:
    config = EngineConfig(long_poll_seconds=2.0, session_idle_seconds=None)
    with serve(data_dir=tmp_path, config=config, faults=faults) as server:
        completed = subprocess.run(
            [OFFICIAL_PYTHON, str(SCRIPT), server.url],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert "all calls succeeded" in completed.stdout
