"""Opt-in acceptance: tinker-cookbook 0.6.1's recipes, unmodified, train on tinker.local.

Each recipe runs in the cookbook venv (tinker-sync installed from this checkout, the cookbook
with `--no-deps`, as docs/migration.md says) with its default settings, except what a local run
must name: the model (`tinker-local/tiny`), `base_url=local`, the renderer (the cookbook's
model registry does not know the local models), a few steps, and for the supervised recipe the
cookbook's own example conversations (its default data set is downloaded from the Hugging Face
Hub), in batches that this 128-conversation file fills (the default 256 gives no step) and cut
to the model's 256-token context (the default max_length is 16384). The Hugging Face cache
starts empty and the hub is offline, so the tokenizer must come from tinker.local's cache
entries. Each run must exit 0, log its steps to metrics.jsonl with
finite values, and print no traceback.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import subprocess
from typing import Any

import pytest

pytestmark = [pytest.mark.optin, pytest.mark.slow]

MODEL = "tinker-local/tiny"
RENDERER = "role_colon"  # the base-model chat format the local models were pretrained on
STEPS = 3
TIMEOUT_SECONDS = 1200


def _run(python: str, tmp_path: pathlib.Path, module: str, *settings: str) -> pathlib.Path:
    """Run `python -m module settings...` offline with fresh caches; returns the log path."""
    log_path = tmp_path / "log"
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HF_", "HUGGINGFACE_", "TINKER_", "WANDB_"))
    }
    environ.update(
        HF_HOME=str(tmp_path / "hf-home"),  # empty
        HF_HUB_OFFLINE="1",
        TINKER_LOCAL_DATA_DIR=str(tmp_path / "local-data"),
        TINKER_COOKBOOK_RUNS_DIR=str(tmp_path / "runs"),
        TINKER_API_KEY="tml-cookbook-local",
    )
    command = [
        python,
        "-m",
        module,
        f"model_name={MODEL}",
        "base_url=local",
        f"renderer_name={RENDERER}",
        f"max_steps={STEPS}",
        f"log_path={log_path}",
        "behavior_if_log_dir_exists=delete",
        *settings,
    ]
    result = subprocess.run(
        command,
        env=environ,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        stdin=subprocess.DEVNULL,
    )
    (tmp_path / "output.txt").write_text(result.stdout + result.stderr)
    tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
    assert result.returncode == 0, f"{module} exited {result.returncode}:\n{tail}"
    assert "Traceback" not in result.stderr, tail
    return log_path


def _metrics(log_path: pathlib.Path) -> list[dict[str, Any]]:
    lines = (log_path / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _finite(record: dict[str, Any], key: str) -> float:
    value = record[key]
    assert isinstance(value, (int, float)) and math.isfinite(value), (key, value)
    return float(value)


def test_supervised_chat_recipe(cookbook_python: str, tmp_path: pathlib.Path) -> None:
    conversations = subprocess.run(
        [
            cookbook_python,
            "-c",
            "import importlib.resources as r; "
            "print(r.files('tinker_cookbook') / 'example_data' / 'conversations.jsonl')",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    log_path = _run(
        cookbook_python,
        tmp_path,
        "tinker_cookbook.recipes.chat_sl.train",
        f"dataset={conversations}",
        "batch_size=32",
        "max_length=256",
    )
    steps = [record for record in _metrics(log_path) if "train_mean_nll" in record]
    assert len(steps) == STEPS
    for record in steps:
        assert 0.0 < _finite(record, "train_mean_nll") < 10.0


def test_arithmetic_rl_recipe(cookbook_python: str, tmp_path: pathlib.Path) -> None:
    log_path = _run(cookbook_python, tmp_path, "tinker_cookbook.recipes.math_rl.train")
    steps = [record for record in _metrics(log_path) if "reward/total" in record]
    assert len(steps) >= STEPS - 1
    for record in steps:
        assert 0.0 <= _finite(record, "reward/total") <= 1.0
