"""CSV files of the report commands: to a named file (replaced) or, for `-`, standard output."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

from tinker.cli.context import Context

__all__ = ["STDOUT", "csv_cell", "write_csv"]

STDOUT = "-"


def csv_cell(value: Any) -> str:
    """One cell: '' for None, true/false for booleans, JSON for lists and objects."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def write_csv(
    ctx: Context, path: str, headers: Sequence[str], rows: Iterable[Sequence[Any]], what: str
) -> None:
    """Write a header line and `rows` as CSV to `path` (STDOUT: the command's output); a file
    write is confirmed on stderr, naming `what` the rows are."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(headers)
    count = 0
    for row in rows:
        writer.writerow([csv_cell(value) for value in row])
        count += 1
    if path == STDOUT:
        ctx.stdout.write(buffer.getvalue())
        return
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(buffer.getvalue())
    ctx.err(f"Wrote {count} {what} to {path}")
