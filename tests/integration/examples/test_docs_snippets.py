"""Every ```python block marked `<!-- runnable -->` in docs/ runs against the embedded server.

The marked blocks of one page run in order, as one script, in a fresh interpreter (so
base_url="local" starts a server of its own, with a temporary data directory).
"""

from __future__ import annotations

import importlib
import os
import pathlib
import re
import subprocess
import sys

import pytest

DOCS_DIR = pathlib.Path(__file__).resolve().parents[3] / "docs"
MARKED_BLOCK = re.compile(r"^<!-- runnable -->\n```python\n(.*?)^```$", re.M | re.S)


def runnable_pages() -> list[pathlib.Path]:
    return sorted(p for p in DOCS_DIR.glob("*.md") if MARKED_BLOCK.search(p.read_text()))


def test_the_guides_have_runnable_snippets() -> None:
    names = {page.name for page in runnable_pages()}
    assert {"quickstart.md", "training.md", "sampling.md", "custom-losses.md"} <= names


@pytest.mark.parametrize("page", runnable_pages(), ids=lambda page: page.name)
def test_runnable_snippets_run(page: pathlib.Path, tmp_path: pathlib.Path) -> None:
    if not hasattr(importlib.import_module("tinker.local"), "serve"):
        pytest.skip("tinker.local.serve is not available in this build")
    script = "\n".join(MARKED_BLOCK.findall(page.read_text()))
    env = {**os.environ, "TINKER_LOCAL_DATA_DIR": str(tmp_path / "data"), "TINKER_TELEMETRY": "0"}
    env.pop("TINKER_API_KEY", None)
    env.pop("TINKER_BASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{page.name} snippets failed:\n{done.stderr}"
    assert "Traceback" not in done.stderr
