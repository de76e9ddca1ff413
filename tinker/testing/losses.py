"""`assert_loss_decreases`: did a training curve go down, judged robustly against step noise.

The check compares the mean of the first `window` losses with the mean of the last `window`
losses, so one noisy step neither passes nor fails a run; a failure prints the whole curve.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["LossTrend", "assert_loss_decreases", "loss_value"]

_BARS = "▁▂▃▄▅▆▇█"
_MAX_LISTED = 24  # steps listed one per line in a failure message (evenly spaced beyond that)


@dataclasses.dataclass(frozen=True)
class LossTrend:
    """What `assert_loss_decreases` measured: the two means, the drop and the window."""

    first_mean: float
    last_mean: float
    window: int
    steps: int

    @property
    def drop(self) -> float:
        """How far the loss fell, as a fraction of |first_mean| (negative: it rose)."""
        return (self.first_mean - self.last_mean) / (abs(self.first_mean) or 1.0)

    @property
    def change(self) -> float:
        """The relative change from the first mean to the last (negative: it fell)."""
        return (self.last_mean - self.first_mean) / (abs(self.first_mean) or 1.0)


def loss_value(item: object) -> float:
    """A loss as a float: a number, or an output whose `metrics` hold `loss:sum`."""
    metrics = getattr(item, "metrics", None)
    if isinstance(metrics, Mapping):
        if "loss:sum" not in metrics:
            raise ValueError(f"the metrics of {type(item).__name__} have no 'loss:sum'")
        item = metrics["loss:sum"]
    try:
        return float(item)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TypeError(
            f"a loss must be a number or have metrics['loss:sum'], got {type(item).__name__}"
        ) from None


def assert_loss_decreases(
    losses: Iterable[object], *, window: int | None = None, min_drop: float = 0.0
) -> LossTrend:
    """Assert that the mean of the last `window` losses is below the mean of the first `window`
    by more than `min_drop` (a fraction of |first mean|: 0.1 asks for a 10 % fall).

    `losses`: numbers, or ForwardBackwardOutputs (their `loss:sum`), in step order; at least 2.
    `window`: how many steps each mean covers, at most half the curve; default a quarter of
    it (at least 1). Every loss must be finite. Returns the measured LossTrend; raises
    AssertionError showing the curve when the loss did not fall enough, ValueError for a
    curve or setting that cannot be judged.
    """
    values = [loss_value(item) for item in losses]
    if len(values) < 2:
        raise ValueError(f"need at least 2 losses to see a trend, got {len(values)}")
    if not min_drop >= 0.0:
        raise ValueError(f"min_drop must be >= 0, got {min_drop!r}")
    size = max(1, len(values) // 4) if window is None else window
    if not 1 <= size <= len(values) // 2:
        raise ValueError(
            f"window must be between 1 and half the curve ({len(values) // 2}), got {size}"
        )
    for step, value in enumerate(values):
        if not math.isfinite(value):
            raise AssertionError(f"loss is {value} at step {step}\n{describe_curve(values)}")
    trend = LossTrend(
        first_mean=math.fsum(values[:size]) / size,
        last_mean=math.fsum(values[-size:]) / size,
        window=size,
        steps=len(values),
    )
    if not trend.drop > min_drop:
        wanted = "below it" if min_drop == 0 else f"{min_drop:.1%} below it"
        raise AssertionError(
            f"loss did not decrease: the mean of the last {size} steps is {trend.last_mean:.6g}, "
            f"the mean of the first {size} is {trend.first_mean:.6g} (change "
            f"{trend.change:+.1%}; wanted {wanted})\n{describe_curve(values)}"
        )
    return trend


def describe_curve(values: Sequence[float]) -> str:
    """A loss curve as text: a sparkline, then the value of each step (some of them when long)."""
    finite = [v for v in values if math.isfinite(v)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 0.0)
    spread = high - low

    def bar(value: float) -> str:
        if not math.isfinite(value):
            return "!"
        if spread == 0:
            return _BARS[0]
        return _BARS[round((value - low) / spread * (len(_BARS) - 1))]

    lines = [f"curve ({len(values)} steps): " + "".join(bar(v) for v in values)]
    if len(values) <= _MAX_LISTED:
        shown = list(range(len(values)))
    else:
        stride = (len(values) - 1) / (_MAX_LISTED - 1)
        shown = sorted({round(i * stride) for i in range(_MAX_LISTED)})
    width = len(str(len(values) - 1))
    lines += [f"  step {step:>{width}}: {values[step]:.6g}" for step in shown]
    return "\n".join(lines)
