"""A one-line progress display on stderr, shown only on a terminal and never in JSON mode."""

from __future__ import annotations

from typing import TextIO

from tinker.cli.render import format_size

__all__ = ["Progress"]

_BAR_WIDTH = 30


class Progress:
    """Redraws '<label> [#####-----] done/total' in place; silent when disabled."""

    def __init__(self, stream: TextIO, label: str, *, enabled: bool, unit: str = "items") -> None:
        self._stream = stream
        self._label = label
        self._enabled = enabled
        self._unit = unit
        self._drawn = False

    def update(self, done: int, total: int | None) -> None:
        if not self._enabled:
            return
        amount = self._amount(done)
        if total:
            filled = min(_BAR_WIDTH, _BAR_WIDTH * done // total)
            bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
            line = f"{self._label} [{bar}] {amount}/{self._amount(total)}"
        else:
            line = f"{self._label} {amount}"
        self._stream.write("\r" + line)
        self._stream.flush()
        self._drawn = True

    def finish(self) -> None:
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False

    def _amount(self, value: int) -> str:
        return format_size(value) if self._unit == "bytes" else str(value)
