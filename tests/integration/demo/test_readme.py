"""The README's code sample runs as written against the embedded server."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[3]


def test_readme_python_sample_runs(tmp_path: pathlib.Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert len(blocks) == 1
    env = {"TINKER_LOCAL_DATA_DIR": str(tmp_path), "TINKER_TELEMETRY": "0", "PATH": ""}
    run = subprocess.run(
        [sys.executable, "-c", blocks[0]], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    loss_line, sample_line = run.stdout.strip().splitlines()
    assert float(loss_line) > 0
    assert sample_line.startswith("SampleResponse(sequences=[SampledSequence(")
