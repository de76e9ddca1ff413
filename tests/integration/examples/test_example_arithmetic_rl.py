"""examples/arithmetic_rl.py: group-baseline importance sampling raises the share of correct
answers of the pretrained tiny model."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest


def test_answers_are_graded_on_the_last_integer_and_the_stop(
    example: Callable[[str], ModuleType],
) -> None:
    rl = example("arithmetic_rl")
    assert rl.question(12, 7).endswith("User: What is 12 + 7?\n\nAssistant:")
    assert rl.question(12, 7).startswith("User: What is 4 + 5?\n\nAssistant: 9\n\n")
    assert rl.reward(" 19\n\nUser:", 12, 7) == 1.0
    assert rl.reward(" 19", 12, 7) == pytest.approx(0.9)  # no stop sequence: format penalty
    assert rl.reward(" 12 + 7 is 19\n\nUser:", 12, 7) == 1.0
    assert rl.reward(" 18\n\nUser:", 12, 7) == 0.0
    assert rl.reward(" nineteen", 12, 7) == pytest.approx(-0.1)


@pytest.mark.slow
def test_rl_raises_the_share_of_correct_answers_within_100_steps(
    example: Callable[[str], ModuleType], connection: dict[str, str]
) -> None:
    history = example("arithmetic_rl").main(steps=100, **connection)
    assert len(history) == 100
    first, last = sum(history[:20]) / 20, sum(history[-20:]) / 20
    # Measured 0.74 -> 0.82 (seeded); 64 samples a step put the noise of a 20-step mean near 0.01.
    assert last >= first + 0.04, (first, last)
