"""`make demo` end to end on the embedded server, shortened to a few steps."""

from __future__ import annotations

import pathlib
import re

import pytest

from tinker import demo


def test_corpus_windows_are_shifted_next_token_pairs() -> None:
    tokens = list(range(10))
    batch = demo.supervised_batch(tokens, window=4, stride=3)
    assert [d.model_input.to_ints() for d in batch] == [[0, 1, 2, 3], [3, 4, 5, 6]]
    assert batch[0].loss_fn_inputs["target_tokens"].tolist() == [1, 2, 3, 4]
    assert batch[0].loss_fn_inputs["weights"].tolist() == [1.0] * 4


def test_sea_reward_wants_the_word_sea() -> None:
    assert demo.sea_reward(b" walked by the sea.") == 1.0
    assert demo.sea_reward(b"Sea breeze") == 1.0
    assert demo.sea_reward(b" sat on a seat near the seashore") == 0.0
    assert demo.sea_reward(b"") == 0.0


def test_demo_trains_samples_and_runs_rl(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TINKER_LOCAL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TINKER_TELEMETRY", "0")
    monkeypatch.delenv("TINKER_API_KEY", raising=False)
    try:
        demo.main(["--local-model", "tinker-local/tiny", "--sft-steps", "5", "--rl-steps", "2"])
    finally:
        from tinker.local import shared_server

        shared_server().close()
    out = capsys.readouterr().out
    lines = [line.strip() for line in out.splitlines()]
    steps = [line for line in lines if line.startswith("step") and "loss/token" in line]
    losses = [float(line.split()[-1]) for line in steps]
    assert len(losses) == 2 and losses[-1] < losses[0]
    assert "saved tinker://" in out and "/weights/demo-sft" in out
    assert out.count("mean reward") == 2
    assert "before training:" in out and "after training:" in out
    assert "before RL:" in out and "after RL:" in out
    assert re.search(r"RL reward \d\.\d{3} \(first 2 steps\) -> \d\.\d{3} \(last 2 steps\)", out)
