"""Offset/limit pagination shared by the list commands."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tinker.cli.progress import Progress

__all__ = ["Page", "collect", "limit_argument", "more_note", "positive_argument"]

# One page: the items and the server's total count (None when the response has no cursor).
Page = tuple[Sequence[Any], "int | None"]


def collect(
    fetch: Callable[[int, int], Page], limit: int, batch: int, progress: Progress
) -> tuple[list[Any], int | None]:
    """Fetch up to `limit` items (0 = all) in pages of at most `batch`; returns items and total.

    Stops on a short page or once the total count is reached.
    """
    items: list[Any] = []
    total: int | None = None
    while limit == 0 or len(items) < limit:
        size = batch if limit == 0 else min(batch, limit - len(items))
        page, total = fetch(size, len(items))
        items.extend(page)
        target = total if limit == 0 or total is None else min(total, limit)
        progress.update(len(items), target)
        if len(page) < size or (total is not None and len(items) >= total):
            break
    progress.finish()
    return items, total


def limit_argument(value: str) -> int:
    """argparse type for --limit/--offset: a non-negative integer (for --limit, 0 means all)."""
    return _integer_at_least(value, 0)


def positive_argument(value: str) -> int:
    """argparse type for counts that must be at least 1."""
    return _integer_at_least(value, 1)


def _integer_at_least(value: str, minimum: int) -> int:
    import argparse

    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None
    if number < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {number}")
    return number


def more_note(shown: int, total: int | None) -> str:
    """' (M more not shown, use --limit to see more)' when the listing was cut short."""
    if total is None or total <= shown:
        return ""
    return f" ({total - shown} more not shown, use --limit to see more)"
