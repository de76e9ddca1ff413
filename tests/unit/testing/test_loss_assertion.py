"""assert_loss_decreases: the means of the two ends of the curve, the failure message, misuse."""

from __future__ import annotations

import math

import pytest

from tinker import types
from tinker.testing import LossTrend, assert_loss_decreases


def test_a_noisy_falling_curve_passes_and_reports_the_two_means() -> None:
    # Up at steps 1, 3, 5 and 7 (noise), down overall.
    losses = [4.0, 4.2, 3.6, 3.9, 3.1, 3.4, 2.6, 2.9]
    trend = assert_loss_decreases(losses)
    assert trend == LossTrend(first_mean=4.1, last_mean=2.75, window=2, steps=8)
    assert trend.drop == pytest.approx(1.35 / 4.1)


def test_one_bad_step_at_either_end_is_averaged_out() -> None:
    losses = [3.0, 5.0, 4.9, 4.7, 4.5, 4.3, 4.1, 3.9, 3.7, 3.5, 3.3, 4.6]
    # The first step alone is below the last; the windows of 3 at each end see the fall.
    trend = assert_loss_decreases(losses)
    assert (trend.window, trend.first_mean, trend.last_mean) == (3, 4.3, pytest.approx(3.8))


def test_a_flat_curve_fails_and_the_message_shows_every_step() -> None:
    losses = [2.0, 2.1, 1.9, 2.0, 2.1, 2.0]
    with pytest.raises(AssertionError) as failure:
        assert_loss_decreases(losses, window=2)
    message = str(failure.value)
    assert message.startswith(
        "loss did not decrease: the mean of the last 2 steps is 2.05, the mean of the first 2 "
        "is 2.05 (change +0.0%; wanted below it)"
    )
    assert "curve (6 steps): " in message
    assert [line.strip() for line in message.splitlines()[2:]] == [
        "step 0: 2", "step 1: 2.1", "step 2: 1.9", "step 3: 2", "step 4: 2.1", "step 5: 2"
    ]  # fmt: skip


def test_the_sparkline_runs_from_the_lowest_to_the_highest_loss() -> None:
    with pytest.raises(AssertionError) as failure:
        assert_loss_decreases([1.0, 8.0, 4.5, 9.0])
    assert "curve (4 steps): ▁▇▄█\n" in str(failure.value)


def test_min_drop_asks_for_a_fall_of_that_fraction() -> None:
    assert_loss_decreases([10.0, 8.9], min_drop=0.1)
    with pytest.raises(AssertionError, match=r"change -10\.0%; wanted 10\.0% below it"):
        assert_loss_decreases([10.0, 9.0], min_drop=0.1)


def test_a_long_curve_lists_at_most_24_steps_first_and_last_included() -> None:
    losses = [1.0] * 100
    with pytest.raises(AssertionError) as failure:
        assert_loss_decreases(losses)
    steps = [line for line in str(failure.value).splitlines() if line.lstrip().startswith("step")]
    assert len(steps) == 24
    assert steps[0].split() == ["step", "0:", "1"] and steps[-1].split() == ["step", "99:", "1"]


def test_a_rising_curve_reports_a_positive_change() -> None:
    with pytest.raises(AssertionError, match=r"change \+50\.0%"):
        assert_loss_decreases([2.0, 3.0])


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_loss_fails_naming_its_step(bad: float) -> None:
    with pytest.raises(AssertionError, match=rf"loss is {bad} at step 2\n"):
        assert_loss_decreases([3.0, 2.0, bad, 1.0])


def test_forward_backward_outputs_count_by_their_loss_sum() -> None:
    outputs = [
        types.ForwardBackwardOutput(
            loss_fn_output_type="cross_entropy", loss_fn_outputs=[], metrics={"loss:sum": loss}
        )
        for loss in (5.0, 4.0, 3.0, 2.0)
    ]
    assert assert_loss_decreases(outputs).last_mean == 2.0
    bare = types.ForwardBackwardOutput(
        loss_fn_output_type="cross_entropy", loss_fn_outputs=[], metrics={}
    )
    with pytest.raises(ValueError, match="have no 'loss:sum'"):
        assert_loss_decreases([bare, bare])


@pytest.mark.parametrize(
    ("losses", "kwargs", "message"),
    [
        ([1.0], {}, "need at least 2 losses to see a trend, got 1"),
        ([3.0, 2.0, 1.0], {"window": 2}, r"window must be between 1 and half the curve \(1\)"),
        ([3.0, 2.0], {"window": 0}, "window must be between 1"),
        ([3.0, 2.0], {"min_drop": -0.1}, "min_drop must be >= 0"),
    ],
)
def test_curves_and_settings_that_cannot_be_judged_are_value_errors(
    losses: list[float], kwargs: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        assert_loss_decreases(losses, **kwargs)  # type: ignore[arg-type]


def test_something_that_is_not_a_loss_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="a loss must be a number or have metrics"):
        assert_loss_decreases(["high", "low"])
