"""The examples directory, and running an example as a user runs it."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

EXAMPLES_DIR = pathlib.Path(__file__).resolve().parents[3] / "examples"


def run_script(
    script: str, *args: str, data_dir: pathlib.Path, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """Run an example as a script with its defaults (base_url "local": an in-process server)."""
    env = {
        **os.environ,
        "TINKER_LOCAL_DATA_DIR": str(data_dir),
        "TINKER_TELEMETRY": "0",
    }
    env.pop("TINKER_API_KEY", None)
    env.pop("TINKER_BASE_URL", None)
    return subprocess.run(
        [sys.executable, str(EXAMPLES_DIR / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
