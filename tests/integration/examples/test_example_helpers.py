"""The datum builders every example relies on: the shift, the prompt mask, the advantages."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest


def test_supervised_datum_shifts_targets_and_masks_the_prompt(
    example: Callable[[str], ModuleType],
) -> None:
    common = example("common")
    datum = common.supervised_datum([10, 11, 12, 13, 14], prompt_length=3)
    assert datum.model_input.to_ints() == [10, 11, 12, 13]
    assert datum.loss_fn_inputs["target_tokens"].tolist() == [11, 12, 13, 14]
    # Targets 11 and 12 are prompt tokens; 13 and 14 are the completion.
    assert datum.loss_fn_inputs["weights"].tolist() == [0.0, 0.0, 1.0, 1.0]
    assert common.supervised_datum([1, 2]).loss_fn_inputs["weights"].tolist() == [1.0]
    with pytest.raises(ValueError, match="at least 2 tokens"):
        common.supervised_datum([1])


def test_rl_datum_puts_advantages_and_sampler_logprobs_on_the_completion_only(
    example: Callable[[str], ModuleType],
) -> None:
    common = example("common")
    datum = common.rl_datum([1, 2, 3], [7, 8], [-0.5, -1.5], 0.25)
    assert datum.model_input.to_ints() == [1, 2, 3, 7]
    inputs = datum.loss_fn_inputs
    assert inputs["target_tokens"].tolist() == [2, 3, 7, 8]
    assert inputs["logprobs"].tolist() == [0.0, 0.0, -0.5, -1.5]
    assert inputs["advantages"].tolist() == [0.0, 0.0, 0.25, 0.25]
    with pytest.raises(ValueError, match="2 completion tokens but 1 logprobs"):
        common.rl_datum([1, 2], [7, 8], [-0.5], 1.0)
