"""Every code block in README.md and docs/ runs here, or says why it cannot.

The comment line just above a fenced block is its marker:
- `<!-- runnable -->` (```python): the marked blocks of one page run in order, as one script
  file, in a fresh interpreter (so base_url="local" starts a server of its own, with a
  temporary data directory, and spawned workers can import the script);
- `<!-- runnable: pytest -->` (```python): the block is a test module, run by pytest (the
  tinker.testing plugin supplies its fixtures);
- `<!-- not-runnable: <reason> -->`: skipped, for the stated reason (a shell command that
  installs or serves, output shown for reading, a generated signature).
A block with no marker fails `test_every_code_block_is_marked`.
"""

from __future__ import annotations

import importlib
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
DOCS_DIR = ROOT / "docs"
PAGES = sorted([ROOT / "README.md", *DOCS_DIR.glob("*.md")])
FENCE = re.compile(r"^```[^\n]*\n.*?^```$", re.M | re.S)
MARKED_BLOCK = re.compile(r"^<!-- runnable -->\n```python\n(.*?)^```$", re.M | re.S)
PYTEST_BLOCK = re.compile(r"^<!-- runnable: pytest -->\n```python\n(.*?)^```$", re.M | re.S)
MARKER = re.compile(r"<!-- (runnable|runnable: pytest|not-runnable: \S[^\n]*\S) -->")


def runnable_pages() -> list[pathlib.Path]:
    return [p for p in PAGES if MARKED_BLOCK.search(p.read_text())]


def pytest_blocks() -> list[tuple[pathlib.Path, int, str]]:
    found = []
    for page in PAGES:
        for index, block in enumerate(PYTEST_BLOCK.findall(page.read_text())):
            found.append((page, index, block))
    return found


def unmarked_blocks(page: pathlib.Path) -> list[int]:
    """Line numbers of the fenced blocks of `page` without a marker on the line above."""
    text = page.read_text()
    missing = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        if MARKER.fullmatch(before.strip()) is None:
            missing.append(text.count("\n", 0, match.start()) + 1)
    return missing


def test_every_code_block_is_marked() -> None:
    missing = {page.name: lines for page in PAGES if (lines := unmarked_blocks(page))}
    assert missing == {}, f"code blocks without a runnable/not-runnable marker: {missing}"


def test_the_guides_have_runnable_snippets() -> None:
    names = {page.name for page in runnable_pages()}
    expected = {"quickstart.md", "training.md", "sampling.md", "custom-losses.md"}
    assert expected | {"multiprocessing.md", "observability.md", "README.md"} <= names
    assert {page.name for page, _, _ in pytest_blocks()} >= {"testing.md"}


def _clean_env(tmp_path: pathlib.Path) -> dict[str, str]:
    env = {**os.environ, "TINKER_LOCAL_DATA_DIR": str(tmp_path / "data"), "TINKER_TELEMETRY": "0"}
    env.pop("TINKER_API_KEY", None)
    env.pop("TINKER_BASE_URL", None)
    return env


@pytest.mark.parametrize("page", runnable_pages(), ids=lambda page: page.name)
def test_runnable_snippets_run(page: pathlib.Path, tmp_path: pathlib.Path) -> None:
    if not hasattr(importlib.import_module("tinker.local"), "serve"):
        pytest.skip("tinker.local.serve is not available in this build")
    script = tmp_path / "snippets.py"
    script.write_text("\n".join(MARKED_BLOCK.findall(page.read_text())))
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=_clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, f"{page.name} snippets failed:\n{done.stderr}"
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("page", "index", "block"),
    pytest_blocks(),
    ids=lambda value: value.name if isinstance(value, pathlib.Path) else "",
)
def test_pytest_snippets_pass(
    page: pathlib.Path, index: int, block: str, tmp_path: pathlib.Path
) -> None:
    (tmp_path / f"test_snippet_{index}.py").write_text(block)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--strict-markers"]
    done = subprocess.run(
        [*command, "--rootdir", str(tmp_path), str(tmp_path)],
        cwd=tmp_path,
        env={**_clean_env(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, f"{page.name} test block {index}:\n{done.stdout}{done.stderr}"
    assert " passed" in done.stdout and "skipped" not in done.stdout
