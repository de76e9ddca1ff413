"""Opt-in acceptance: tinker-cookbook 0.6.1's recipes, unmodified, train on tinker.local.

Each recipe runs in the cookbook venv (tinker-sync installed from this checkout, the cookbook
with `--no-deps`, as docs/migration.md says) with its default settings, except what a local run
must name: the model (`tinker-local/tiny`), `base_url=local` and the renderer (the cookbook's
model registry does not know the local models). The supervised recipe trains on the cookbook's
own example conversations (its default data set is downloaded from the Hugging Face Hub), in
batches that this 128-conversation file fills (the default 256 gives no step), cut to the
model's 256-token context (the default max_length is 16384), for several epochs so that the
loss is compared on the same conversations. The RL recipe runs its first steps. The Hugging Face
cache starts empty and the hub is offline, so the tokenizer must come from tinker.local's cache
entries. Each run must exit 0, log its steps to metrics.jsonl with sensible values, and print no
traceback, no log record of tinker-sync's at WARNING or above and no Python warning, hidden ones
included (docs/migration.md lists the commands and figures).
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import re
import statistics
import subprocess
from typing import Any

import pytest

MODEL = "tinker-local/tiny"
RENDERER = "role_colon"  # the base-model chat format the local models were pretrained on
SL_EPOCHS = 10  # 4 steps each
RL_STEPS = 3
TIMEOUT_SECONDS = 1200
# A log record of tinker-sync's at WARNING or above (`tinker.<module>:<line> [WARNING] ...`, the
# level maybe coloured; the cookbook's own loggers are `tinker_cookbook.*`), or a Python warning
# (`<file>:<line>: <Category>Warning: ...`).
NOISE = re.compile(
    r"^tinker[.:]\S*\s+\[(?:\x1b\[\d+m)?(?:WARNING|ERROR|CRITICAL)\b.*|\b\w+Warning: .*", re.M
)


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
        PYTHONWARNINGS="default",  # DeprecationWarnings too, which Python hides by default
    )
    command = [
        python,
        "-m",
        module,
        f"model_name={MODEL}",
        "base_url=local",
        f"renderer_name={RENDERER}",
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
    noise = [match.group(0) for match in NOISE.finditer(result.stdout + result.stderr)]
    assert noise == [], "\n".join(noise)
    return log_path


def _steps(log_path: pathlib.Path, key: str) -> list[dict[str, Any]]:
    """The records of metrics.jsonl that carry `key` (a step's metrics), in step order."""
    lines = (log_path / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    return [record for record in records if key in record]


def _finite(record: dict[str, Any], key: str) -> float:
    value = record[key]
    assert isinstance(value, (int, float)) and math.isfinite(value), (key, value)
    return float(value)


def test_noise_pattern_tells_tinker_sync_warnings_from_the_cookbooks() -> None:
    flagged = [
        "tinker._twins:53 [\x1b[93mWARNING\x1b[0m] APIFuture.result() blocks ...",
        "tinker.service_client:12 [ERROR] could not finish session",
        "/x/site-packages/tinker/types.py:9: FutureWarning: ServiceClient ignores ...",
    ]
    passed = [
        "tinker_cookbook.utils.cost_estimation:190 [WARNING] Could not fetch model pricing",
        "tinker.service_client:146 [INFO] ServiceClient opened session S",
    ]
    assert [bool(NOISE.search(line)) for line in flagged + passed] == [True] * 3 + [False] * 2


@pytest.mark.optin
@pytest.mark.slow
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
        f"num_epochs={SL_EPOCHS}",
    )
    steps = _steps(log_path, "train_mean_nll")
    assert len(steps) == 4 * SL_EPOCHS
    by_epoch: dict[int, list[float]] = {}
    for record in steps:
        by_epoch.setdefault(record["epoch"], []).append(_finite(record, "train_mean_nll"))
    means = [statistics.mean(by_epoch[epoch]) for epoch in sorted(by_epoch)]
    assert len(means) == SL_EPOCHS and all(0.0 < mean < 10.0 for mean in means), means
    # The same 128 conversations every epoch: the loss on them falls.
    assert all(mean < means[0] for mean in means[1:]), means
    assert means[-1] < means[0] - 0.1, means


@pytest.mark.optin
@pytest.mark.slow
def test_arithmetic_rl_recipe(cookbook_python: str, tmp_path: pathlib.Path) -> None:
    log_path = _run(
        cookbook_python, tmp_path, "tinker_cookbook.recipes.math_rl.train", f"max_steps={RL_STEPS}"
    )
    steps = _steps(log_path, "env/all/reward/total")
    assert len(steps) == RL_STEPS
    for record in steps:
        assert record["env/all/total_episodes"] == 400  # 100 groups of 4, the defaults
        reward = _finite(record, "env/all/reward/total")
        correct = _finite(record, "env/all/correct")
        well_formed = _finite(record, "env/all/format")
        assert 0.0 <= correct <= 1.0 and 0.0 <= well_formed <= 1.0
        # The environment's reward: correct, minus 0.1 for an answer without the stop sequence.
        assert reward == pytest.approx(correct - 0.1 * (1.0 - well_formed), abs=1e-6)
    assert any(_finite(record, "env/all/correct") > 0.0 for record in steps)
