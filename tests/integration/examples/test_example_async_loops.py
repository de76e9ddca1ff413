"""examples/async_loops.py: both loops under asyncio, concurrently, without blocking the loop."""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import ModuleType

import pytest


def test_both_loops_learn_concurrently_without_blocking_warnings(
    example: Callable[[str], ModuleType],
    connection: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.WARNING, logger="tinker")
    losses, rewards = example("async_loops").main(
        sl_steps=6, rl_iterations=5, samples_per_prompt=16, **connection
    )
    out = capsys.readouterr().out

    assert len(losses) == 6 and losses[-1] < 0.9 * losses[0]
    assert len(rewards) == 5 and rewards[0] < 0.2 and rewards[-1] > 0.7  # seeded: 0.03 -> 0.88
    assert "[sl] final forward loss/token" in out
    assert out.count("[rl] iteration") == 5 and out.count("[sl] step") == 6
    # No blocking call ran on the event loop (the SDK warns when one does).
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
