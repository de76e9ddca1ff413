"""Plain-text rendering for the CLI: aligned tables, relative times, sizes and JSON values."""

from __future__ import annotations

import datetime as dt
import enum
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "as_datetime",
    "format_lora",
    "format_size",
    "format_time",
    "format_timestamp",
    "hyperlink",
    "json_text",
    "printable",
    "property_table",
    "table",
    "to_jsonable",
]

_MINUTE = 60
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
_WEEK = 7 * _DAY


def table(title: str | None, headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Columns padded to their widest cell, a dashed rule under the headers, optional title."""
    body = [list(row) for row in rows]
    widths = [len(header) for header in headers]
    for row in body:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))

    def line(cells: Sequence[str]) -> str:
        padded = (cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
        return "  ".join(padded).rstrip()

    lines = [] if title is None else [title]
    lines.append(line(headers))
    lines.append(line(["-" * width for width in widths]))
    lines.extend(line(row) for row in body)
    return "\n".join(lines)


def property_table(title: str | None, rows: Iterable[tuple[str, str]]) -> str:
    """A two-column Property/Value table."""
    return table(title, ("Property", "Value"), rows)


def format_time(value: dt.datetime | str | None, now: dt.datetime | None = None) -> str:
    """'just now', 'N minutes/hours/days/weeks ago', or YYYY-MM-DD beyond 30 days."""
    if value is None:
        return "-"
    moment = as_datetime(value)
    current = now if now is not None else dt.datetime.now(dt.timezone.utc)
    seconds = (current - moment).total_seconds()
    if seconds > 30 * _DAY:
        return moment.strftime("%Y-%m-%d")
    for unit, size in (("week", _WEEK), ("day", _DAY), ("hour", _HOUR), ("minute", _MINUTE)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'' if count == 1 else 's'} ago"
    return "just now"


def format_timestamp(value: dt.datetime | str | None) -> str:
    """An absolute UTC time to the minute, e.g. '2026-03-31 12:00 UTC' (for future times)."""
    if value is None:
        return "-"
    return as_datetime(value).astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def as_datetime(value: dt.datetime | str) -> dt.datetime:
    """An aware datetime from a datetime or ISO 8601 text (a date alone is its midnight);
    without a time zone it is taken as UTC. ValueError for text that is not ISO 8601."""
    moment = value if isinstance(value, dt.datetime) else _parse_iso(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment


# The extended ISO 8601 forms, the same on every Python (3.11's fromisoformat also takes basic
# and week dates, 3.10's neither those nor a 'Z'): YYYY-MM-DD, optionally followed by 'T' or a
# space and HH:MM[:SS[.fraction]], then optionally 'Z' or +HH:MM / -HH:MM.
_ISO = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[T ](?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,6}))?)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?)?",
    re.ASCII,
)


def _parse_iso(text: str) -> dt.datetime:
    match = _ISO.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an ISO 8601 date or time: {text!r}")
    day = dt.date.fromisoformat(match["date"])  # ValueError for a day that does not exist
    if match["hour"] is None:
        return dt.datetime(day.year, day.month, day.day)
    zone = None
    if match["zone"] == "Z":
        zone = dt.timezone.utc
    elif match["zone"] is not None:
        sign = -1 if match["zone"][0] == "-" else 1
        hours, minutes = int(match["zone"][1:3]), int(match["zone"][4:6])
        if minutes >= 60:
            raise ValueError(f"not an ISO 8601 date or time: {text!r}")
        zone = dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
    return dt.datetime(
        day.year,
        day.month,
        day.day,
        int(match["hour"]),
        int(match["minute"]),
        int(match["second"] or 0),
        int((match["fraction"] or "0").ljust(6, "0")),
        tzinfo=zone,
    )


def format_size(size: int | None) -> str:
    """Human-readable size with base-1024 units, e.g. '512 B', '1.5 KB', '2.0 GB'."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_lora(is_lora: bool, rank: int | None) -> str:
    """'Rank N' for a LoRA run with a known rank, 'Yes' without one, 'No' otherwise."""
    if not is_lora:
        return "No"
    return f"Rank {rank}" if rank is not None else "Yes"


def to_jsonable(value: Any) -> Any:
    """Convert response models (anything with a pydantic-style model_dump) to JSON values."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dt.datetime):
        return as_datetime(value).isoformat()
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item) for item in value]
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return to_jsonable(dump(mode="json"))
    raise TypeError(f"cannot render {type(value).__name__} as JSON")


def json_text(value: Any) -> str:
    """Indented JSON of `value` (response models converted with to_jsonable)."""
    return json.dumps(to_jsonable(value), indent=2)


def printable(text: str) -> str:
    """`text` safe for a terminal: control and other unprintable characters (escape sequences,
    carriage returns, bells) shown as Python escapes such as \\x1b; newlines and tabs kept."""
    return "".join(
        char if char in "\n\t" or char.isprintable() else char.encode("unicode_escape").decode()
        for char in text
    )


def hyperlink(url: str, *, terminal: bool) -> str:
    """`url` as an OSC-8 hyperlink (clickable in terminals that support it, the URL itself in
    those that do not) when writing to a terminal; the bare URL otherwise (pipes, files)."""
    if not terminal:
        return url
    return f"\x1b]8;;{url}\x1b\\{url}\x1b]8;;\x1b\\"
