"""One program in the idioms of SDK 0.5.1 and one in those of SDK 0.38, each run as a script in
its own interpreter against a tinker.local server: both pass, and print nothing but their
result (every Python warning is an error, and stderr must stay empty: no log noise either)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tinker.local import LocalServer, serve

SCRIPTS = pathlib.Path(__file__).parent / "idioms"
API_KEY = "tml-idioms-key"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with serve(data_dir=tmp_path_factory.mktemp("idioms"), api_key=API_KEY) as running:
        yield running


@pytest.mark.parametrize(
    ("era", "script"), [("0.5.1", "scenario_051.py"), ("0.38", "scenario_038.py")]
)
def test_a_program_of_each_era_runs_without_a_warning(
    server: LocalServer, tmp_path: pathlib.Path, era: str, script: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TINKER_", "PYTHONWARNINGS"))}
    done = subprocess.run(
        [sys.executable, "-W", "error", str(SCRIPTS / script), server.url, API_KEY],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**env, "TINKER_TELEMETRY": "0"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == [f"idioms {era}: ok"]
    assert done.stderr == ""
