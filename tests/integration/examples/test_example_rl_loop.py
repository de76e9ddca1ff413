"""examples/rl_loop.py: hundreds of concurrent samples per iteration; the reward rises."""

from __future__ import annotations

import re
from collections.abc import Callable
from types import ModuleType

import pytest

from tinker import types


def test_ppo_raises_the_digit_reward(
    example: Callable[[str], ModuleType],
    connection: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    rl_loop = example("rl_loop")
    rewards = rl_loop.main(
        iterations=6, samples_per_prompt=16, loss_fn="ppo", learning_rate=5e-2, **connection
    )
    out = capsys.readouterr().out

    assert len(rewards) == 6
    assert rewards[0] < 0.2  # digits are rare before training
    assert rewards[-1] > 0.8  # seeded samples: the run is reproducible (0.03 -> 0.997)
    # Every iteration had 8 prompts x 16 samples = 128 futures in flight.
    assert re.findall(r"samples +(\d+)", out) == ["128"] * 6


def test_digit_reward_counts_digit_bytes(example: Callable[[str], ModuleType]) -> None:
    reward = example("rl_loop").digit_reward
    assert reward(list(b"12ab")) == 0.5
    assert reward(list(b"0987654321")) == 1.0
    assert reward([]) == 0.0
    assert reward([256]) == 0.0  # EOS is not a digit


def test_policy_batch_centres_advantages_per_group(example: Callable[[str], ModuleType]) -> None:
    rl_loop = example("rl_loop")

    def seq(text: bytes) -> types.SampledSequence:
        return types.SampledSequence(
            stop_reason="length", tokens=list(text), logprobs=[-1.0] * len(text)
        )

    prompts = [[65, 66], [67, 68]]
    groups = {0: [seq(b"11"), seq(b"ab")], 1: [seq(b"1a"), seq(b"a1")]}
    batch, rewards = rl_loop.policy_batch(prompts, groups)

    assert rewards == [1.0, 0.0, 0.5, 0.5]
    # Group 1 has no signal (both rewards equal the mean), so only group 0 trains.
    assert len(batch) == 2
    advantages = [datum.loss_fn_inputs["advantages"].tolist() for datum in batch]
    assert advantages == [[0.0, 0.5, 0.5], [0.0, -0.5, -0.5]]
    assert batch[0].model_input.to_ints() == [65, 66, ord("1")]
