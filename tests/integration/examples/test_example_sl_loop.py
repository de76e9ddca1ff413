"""examples/sl_loop.py: the pipelined supervised loop lowers the loss and prints every step."""

from __future__ import annotations

import math
import pathlib
import re
from collections.abc import Callable
from types import ModuleType

import pytest
from example_scripts import run_script


def test_loss_falls_and_every_step_is_printed(
    example: Callable[[str], ModuleType],
    connection: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    losses = example("sl_loop").main(steps=8, **connection)
    out = capsys.readouterr().out

    assert len(losses) == 8 and all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < 0.75 * losses[0]
    printed = [float(v) for v in re.findall(r"^step +\d+ +loss/token (\S+)$", out, re.M)]
    assert printed == pytest.approx([round(loss, 4) for loss in losses], abs=1e-4)
    assert re.search(r"^sample: 'The cat", out, re.M)


def test_runs_as_a_script_on_the_embedded_server(tmp_path: pathlib.Path) -> None:
    done = run_script("sl_loop.py", "--steps", "3", data_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    assert re.findall(r"^step +(\d+)", done.stdout, re.M) == ["0", "1", "2"]
    # base_url="local" kept its runs in the data directory given through the environment.
    assert any(tmp_path.iterdir())
