"""CSV files of the report commands: to a named file (replaced) or, for `-`, standard output."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from tinker.cli.context import Context

__all__ = ["STDOUT", "csv_cell", "csv_text", "write_csv"]

STDOUT = "-"


# A text cell starting with one of these is read as a formula by spreadsheet programs.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_text(text: str) -> str:
    """Text as a cell no spreadsheet runs as a formula: quoted with a leading "'" when it
    starts like one (the text is the user's: session names, metadata, user names)."""
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def csv_cell(value: Any) -> str:
    """One cell: '' for None, true/false for booleans, JSON for lists and objects, numbers as
    they are (a negative amount stays a number), text made safe with csv_text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, (int, float)):
        return str(value)
    return csv_text(str(value))


def write_csv(
    ctx: Context, path: str, headers: Sequence[str], rows: Iterable[Sequence[Any]], what: str
) -> None:
    """Write a header line and `rows` as CSV to `path` (STDOUT: the command's output); a file
    write is confirmed on stderr, naming `what` the rows are."""
    buffer = io.StringIO()
    # RFC 4180 line ends: a cell holding a carriage return or a newline is then quoted, so
    # it cannot split its row.
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([csv_text(header) for header in headers])  # metadata keys are the user's
    count = 0
    for row in rows:
        writer.writerow([csv_cell(value) for value in row])
        count += 1
    if path == STDOUT:
        _write_untranslated(ctx.stdout, buffer.getvalue())
        return
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(buffer.getvalue())
    ctx.err(f"Wrote {count} {what} to {path}")


def _write_untranslated(stream: TextIO, text: str) -> None:
    """Write `text` as it is: a text stream that turns newlines into the platform's (CRLF on
    Windows) would make the CSV's CRLF line ends CRCRLF, so its bytes go to its buffer."""
    raw = getattr(stream, "buffer", None)
    if raw is None:
        stream.write(text)
        return
    stream.flush()
    raw.write(text.encode(getattr(stream, "encoding", None) or "utf-8"))
    raw.flush()
