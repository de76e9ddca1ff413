"""examples/multiprocessing_sampling.py: a pickled SamplingClient in spawn and fork pools."""

from __future__ import annotations

import pathlib
import re
import subprocess

import pytest
from example_scripts import run_script

LINE = re.compile(r"^'(.*)'  identical in parent, spawn, fork: (True|False)$")


@pytest.fixture(scope="module")
def script_run(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    """The example as a script (the spawn start method needs a real __main__ module)."""
    data_dir: pathlib.Path = tmp_path_factory.mktemp("mp-data")
    return run_script("multiprocessing_sampling.py", "--workers", "2", data_dir=data_dir)


def test_spawn_and_fork_workers_sample_through_a_pickled_client(
    script_run: subprocess.CompletedProcess[str],
) -> None:
    assert script_run.returncode == 0, script_run.stderr
    lines = [LINE.match(line) for line in script_run.stdout.splitlines()]
    assert all(lines) and len(lines) == 4
    texts = [match.group(1) for match in lines if match]
    starts = ["Once upon a time", "The weather today", "My favourite food", "In the year 3000"]
    assert [text[: len(start)] for text, start in zip(texts, starts, strict=True)] == starts
    # Each line is a prompt plus 12 sampled bytes (decoded, so possibly fewer characters).
    assert all(len(text) > len(start) for text, start in zip(texts, starts, strict=True))


def test_workers_return_exactly_what_the_parent_gets(
    script_run: subprocess.CompletedProcess[str],
) -> None:
    assert script_run.returncode == 0, script_run.stderr
    verdicts = [m.group(2) for m in map(LINE.match, script_run.stdout.splitlines()) if m]
    assert verdicts == ["True"] * 4
