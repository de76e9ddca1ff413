"""`tinker checkpoint delete`: the checkpoints named by path, or those of the user's that match
filters (run, type, creation time), after one confirmation listing exactly what goes.

Filters combine with AND. `--after DATE` keeps checkpoints created at or after DATE and
`--before DATE` those created before it, so the two together select a half-open interval.
Dates are ISO 8601; a time without a zone is UTC and a date alone is midnight UTC.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tinker.cli.checkpoint_lookup import checkpoint_count, parse_tinker_path, user_checkpoints
from tinker.cli.context import CliError, Context, RestClientLike
from tinker.cli.failures import describe, redact
from tinker.cli.render import as_datetime, format_size, format_timestamp, table

__all__ = ["TYPES", "Filters", "add_delete_command", "delete_checkpoints", "parse_moment"]

# --type values (the path segment) -> Checkpoint.checkpoint_type.
TYPES = {"weights": "training", "sampler_weights": "sampler"}
FILTER_OPTIONS = "--run-id, --type, --before, --after"


def add_delete_command(sub: Any, leaf: argparse.ArgumentParser) -> None:
    deleting = sub.add_parser(
        "delete",
        parents=[leaf],
        help="delete checkpoints permanently",
        description="Delete the checkpoints named by TINKER_PATH, or those of yours that match "
        "every filter given. Dates are ISO 8601 in UTC (a date alone is midnight UTC).",
    )
    deleting.add_argument(
        "tinker_paths", metavar="TINKER_PATH", nargs="*", help="checkpoints to delete by path"
    )
    deleting.add_argument("--run-id", help="only this training run's checkpoints")
    deleting.add_argument(
        "--type", dest="kind", choices=sorted(TYPES), help="only checkpoints of this type"
    )
    deleting.add_argument("--before", metavar="DATE", help="only those created before DATE")
    deleting.add_argument("--after", metavar="DATE", help="only those created at or after DATE")
    deleting.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    deleting.set_defaults(handler=delete_checkpoints)


def parse_moment(option: str, text: str) -> dt.datetime:
    """An ISO 8601 date or date-time as an aware UTC datetime; CliError naming `option`."""
    try:
        return as_datetime(text).astimezone(dt.timezone.utc)
    except ValueError:
        raise CliError(
            f"{option}: {text!r} is not an ISO 8601 date or time "
            "(for example 2026-01-31, 2026-01-31T12:00 or 2026-01-31T12:00:00Z)"
        ) from None


@dataclass(frozen=True)
class Filters:
    """What selects checkpoints from the user's: every given criterion must hold."""

    run_id: str | None = None
    kind: str | None = None
    before: dt.datetime | None = None
    after: dt.datetime | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Filters:
        before = None if args.before is None else parse_moment("--before", args.before)
        after = None if args.after is None else parse_moment("--after", args.after)
        if before is not None and after is not None and after >= before:
            raise CliError(
                f"--after ({format_timestamp(after)}) must be earlier than "
                f"--before ({format_timestamp(before)})"
            )
        return cls(args.run_id, args.kind, before, after)

    @property
    def given(self) -> bool:
        return any(value is not None for value in (self.run_id, self.kind, self.before, self.after))

    def matches(self, checkpoint: Any) -> bool:
        if self.run_id is not None and parse_tinker_path(checkpoint.tinker_path)[0] != self.run_id:
            return False
        if self.kind is not None and checkpoint.checkpoint_type != TYPES[self.kind]:
            return False
        created = as_datetime(checkpoint.time)
        if self.before is not None and not created < self.before:
            return False
        return self.after is None or created >= self.after

    def describe(self) -> str:
        parts = [
            f"{option} {value}"
            for option, value in (
                ("--run-id", self.run_id),
                ("--type", self.kind),
                ("--after", self.after and format_timestamp(self.after)),
                ("--before", self.before and format_timestamp(self.before)),
            )
            if value is not None
        ]
        return " and ".join(parts)


def _select(ctx: Context, filters: Filters) -> dict[str, Any]:
    """The user's checkpoints matching `filters` by path (one run's listing with --run-id, else
    every page of the user's), newest first as listed, each path once."""
    if filters.run_id is not None:
        listed = list(ctx.rest().list_checkpoints(filters.run_id).result().checkpoints)
    else:
        listed, _ = user_checkpoints(ctx, 0)
    return {c.tinker_path: c for c in listed if filters.matches(c)}


def delete_checkpoints(ctx: Context, args: argparse.Namespace) -> None:
    """Delete the named or selected checkpoints after one confirmation (skipped with --yes);
    failures are reported path by path after the others are deleted."""
    filters = Filters.from_args(args)
    paths: list[str] = list(dict.fromkeys(args.tinker_paths))
    if paths and filters.given:
        raise CliError(f"give checkpoint paths or filters ({FILTER_OPTIONS}), not both")
    if not paths and not filters.given:
        raise CliError(f"name the checkpoints to delete: TINKER_PATH... or {FILTER_OPTIONS}")
    known: dict[str, Any] = {}
    if paths:
        for path in paths:
            parse_tinker_path(path)
    else:
        known = _select(ctx, filters)
        paths = list(known)
        if not paths:
            if ctx.json:
                ctx.out_json({"deleted": []})
            else:
                ctx.out(f"No checkpoints match {filters.describe()}: nothing deleted.")
            return
    rest = ctx.rest()
    if not args.yes and not _confirm_deletion(ctx, rest, paths, known):
        if ctx.json:
            ctx.err("Deletion cancelled.")
            ctx.out_json({"deleted": []})
        else:
            ctx.out("Deletion cancelled.")
        return
    _delete(ctx, rest, paths)


def _delete(ctx: Context, rest: RestClientLike, paths: Sequence[str]) -> None:
    failures: list[str] = []
    deleted: list[str] = []
    for path in paths:
        try:
            rest.delete_checkpoint_from_tinker_path(path).result()
        except Exception as exc:
            headline, detail = describe(exc)
            line = f"  {path}: {headline}" + (f" ({detail})" if detail else "")
            failures.append(redact(line, ctx.secrets))
        else:
            deleted.append(path)
    if ctx.json:
        ctx.out_json({"deleted": deleted})
    elif deleted:
        ctx.out("\n".join(f"Deleted {path}" for path in deleted))
    if failures:
        ctx.err("\n".join(failures))
        raise CliError(f"failed to delete {len(failures)} of {len(paths)} checkpoints")


def _confirm_deletion(
    ctx: Context, rest: RestClientLike, paths: list[str], known: dict[str, Any]
) -> bool:
    if not ctx.interactive:
        raise CliError(
            "refusing to delete without confirmation: standard input is not a terminal "
            "(pass --yes to delete anyway)"
        )
    _look_up(rest, [p for p in paths if p not in known], known)
    checkpoints = [known.get(path) for path in paths]
    # With --format json, stdout carries only the JSON answer: the dialogue goes to stderr.
    say = ctx.err if ctx.json else ctx.out
    say(deletion_table(paths, checkpoints))
    noun = "this checkpoint" if len(paths) == 1 else f"these {len(paths)} checkpoints"
    say(f"WARNING: {noun} will be permanently deleted. This cannot be undone.")
    question = "Proceed? [y/N]: "
    if ctx.json:
        print(question, end="", file=ctx.stderr, flush=True)
        question = ""
    try:
        answer = ctx.prompt(question)
    except EOFError:
        answer = ""
    return answer.strip().lower() in ("y", "yes")


def _look_up(rest: RestClientLike, paths: Sequence[str], known: dict[str, Any]) -> None:
    """Add the Checkpoints at named `paths` to `known` for the confirmation, one listing per
    run; a path that cannot be found stays unknown (its row shows only the path)."""
    for run_id in dict.fromkeys(parse_tinker_path(path)[0] for path in paths):
        try:
            listed = rest.list_checkpoints(run_id).result().checkpoints
        except Exception:  # informative only
            continue
        known.update((c.tinker_path, c) for c in listed if c.tinker_path in paths)


def deletion_table(paths: Sequence[str], checkpoints: Sequence[Any]) -> str:
    """What will be deleted: path, type, creation time and size ('-' where unknown), with the
    total size of those whose size is known."""
    rows = [
        (
            path,
            "-" if c is None else c.checkpoint_type,
            "-" if c is None else format_timestamp(c.time),
            format_size(None if c is None else c.size_bytes),
        )
        for path, c in zip(paths, checkpoints, strict=True)
    ]
    sizes = [c.size_bytes for c in checkpoints if c is not None and c.size_bytes is not None]
    count = checkpoint_count(len(paths))
    total = f" ({format_size(sum(sizes))})" if sizes else ""
    if sizes and len(sizes) < len(paths):
        total = f" ({format_size(sum(sizes))} and {len(paths) - len(sizes)} of unknown size)"
    title = f"{count} to delete{total}:"
    return table(title, ("Path", "Type", "Created", "Size"), rows)
