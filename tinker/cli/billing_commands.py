"""`tinker billing usage` and `tinker billing checkpoint-storage`: the organization's hourly
usage events and current checkpoint storage (AdminClient), as a table, JSON or CSV.

The usage window is checked before anything is sent (ISO dates or hour-aligned times, UTC
unless a zone is given; the end after the start, at most 14 days later; the start not in the
future), and errors name the argument at fault.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from tinker.cli.context import CliError, Context
from tinker.cli.csv_output import STDOUT, write_csv
from tinker.cli.render import as_datetime, format_size, format_timestamp, table, to_jsonable

__all__ = [
    "EVENT_FIELDS",
    "MAX_WINDOW",
    "STORAGE_FIELDS",
    "USAGE_FIELDS",
    "add_billing_commands",
    "billing_time",
]

MAX_WINDOW = dt.timedelta(days=14)
# CSV columns: the event envelope, then every field any kind of event_info has.
USAGE_FIELDS = (
    "bucket_start",
    "bucket_end",
    "base_model",
    "user_id",
    "user_name",
    "session_id",
    "project_id",
    "estimated_cost_usd",
    "effective_rate_usd_per_million_tokens",
    "effective_rate_usd_per_gigabyte_month",
)
EVENT_FIELDS = ("type", "token_count", "cached", "count", "gigabyte_hours", "free")
STORAGE_FIELDS = (
    "project_id",
    "org_user_urn",
    "user_email",
    "user_name",
    "checkpoint_count",
    "size_bytes",
    "size_gigabytes",
    "estimated_monthly_cost_usd",
)
USAGE_HEADERS = ("Hour", "Type", "Base Model", "Session", "Project", "User", "Amount", "Cost (USD)")
STORAGE_HEADERS = ("Project", "Owner", "Checkpoints", "Size", "Monthly Cost (USD)")


def add_billing_commands(commands: Any, leaf: argparse.ArgumentParser) -> None:
    billing = commands.add_parser("billing", help="usage and storage reports (organization admins)")
    sub = billing.add_subparsers(dest="billing_command", metavar="COMMAND", required=True)
    usage = sub.add_parser("usage", parents=[leaf], help="hourly usage events of a time window")
    for name, text in (("starting_on", "first hour"), ("ending_before", "end (excluded)")):
        usage.add_argument(
            name,
            type=billing_time,
            metavar=name.upper(),
            help=f"{text}: an ISO date (midnight UTC) or a time on the hour",
        )
    usage.add_argument("--csv", metavar="PATH", help="write the events as CSV ('-': stdout)")
    usage.add_argument(
        "--sessions-csv", metavar="PATH", help="write the sessions' metadata as CSV ('-': stdout)"
    )
    usage.set_defaults(handler=billing_usage)
    storage = sub.add_parser(
        "checkpoint-storage", parents=[leaf], help="checkpoint storage now, per project and owner"
    )
    storage.add_argument("--project-id", metavar="ID", help="only this project")
    storage.add_argument("--csv", metavar="PATH", help="write the rows as CSV ('-': stdout)")
    storage.set_defaults(handler=checkpoint_storage)


def billing_time(text: str) -> dt.datetime:
    """argparse type of the window bounds: an ISO 8601 date or date and time, on a full UTC
    hour (a value without a zone is UTC)."""
    try:
        moment = as_datetime(text).astimezone(dt.timezone.utc)
    except ValueError:
        raise argparse.ArgumentTypeError(
            "expected an ISO date (2026-01-31) or a time on the hour (2026-01-31T09:00Z), "
            f"got {text!r}"
        ) from None
    if (moment.minute, moment.second, moment.microsecond) != (0, 0, 0):
        raise argparse.ArgumentTypeError(f"must be on a full hour (UTC), got {text!r}")
    return moment


def _check_window(start: dt.datetime, end: dt.datetime) -> None:
    shown = f"STARTING_ON {format_timestamp(start)}, ENDING_BEFORE {format_timestamp(end)}"
    if end <= start:
        raise CliError(f"ENDING_BEFORE must be after STARTING_ON ({shown})")
    if end - start > MAX_WINDOW:
        raise CliError(f"ENDING_BEFORE must be at most 14 days after STARTING_ON ({shown})")
    if start > dt.datetime.now(dt.timezone.utc):
        raise CliError(f"STARTING_ON must not be in the future ({format_timestamp(start)})")


def _refuse_two_stdouts(*paths: str | None) -> None:
    if sum(path == STDOUT for path in paths) > 1:
        raise CliError("only one of --csv and --sessions-csv can be '-' (standard output)")


def billing_usage(ctx: Context, args: argparse.Namespace) -> None:
    """Hourly usage events of [STARTING_ON, ENDING_BEFORE), with the cost data's horizon."""
    _check_window(args.starting_on, args.ending_before)
    _refuse_two_stdouts(args.csv, args.sessions_csv)
    response = ctx.admin().get_billing_usage(args.starting_on, args.ending_before).result()
    events = list(response.data)
    if args.csv is not None:
        lines = [_usage_row(event) for event in events]
        write_csv(ctx, args.csv, USAGE_FIELDS + EVENT_FIELDS, lines, "usage events")
    if args.sessions_csv is not None:
        headers, lines = _session_rows(response.sessions)
        write_csv(ctx, args.sessions_csv, headers, lines, "sessions")
    if STDOUT in (args.csv, args.sessions_csv):
        return
    if ctx.json:
        ctx.out_json(response)
        return
    window = f"{format_timestamp(args.starting_on)} to {format_timestamp(args.ending_before)}"
    through = format_timestamp(response.cost_data_through)
    title = f"{len(events)} usage event{'' if len(events) == 1 else 's'}, {window}"
    rows = [
        (
            format_timestamp(event.bucket_start),
            _kind(event.event_info),
            event.base_model or "-",
            event.session_id or "-",
            event.project_id or "-",
            event.user_name or event.user_id or "-",
            _amount(event.event_info),
            _usd(event.estimated_cost_usd),
        )
        for event in events
    ]
    ctx.out(table(title, USAGE_HEADERS, rows))
    costs = [event.estimated_cost_usd for event in events if event.estimated_cost_usd is not None]
    ctx.out(f"Estimated cost: {_usd(sum(costs) if costs else None)} USD (data through {through})")


def _usage_row(event: Any) -> list[Any]:
    envelope = to_jsonable(event)
    info = envelope["event_info"]
    return [envelope.get(name) for name in USAGE_FIELDS] + [info.get(f) for f in EVENT_FIELDS]


def _session_rows(sessions: Any) -> tuple[list[str], list[list[Any]]]:
    """CSV of the sessions: their id, then one column per metadata key any of them has."""
    metadata = {sid: dict(session.user_metadata or {}) for sid, session in sessions.items()}
    keys = sorted({key for values in metadata.values() for key in values})
    rows = [[sid, *(values.get(key) for key in keys)] for sid, values in metadata.items()]
    return ["session_id", *keys], rows


def _kind(info: Any) -> str:
    if info.type == "sampling_prefill" and info.cached:
        return "sampling_prefill (cached)"
    if info.type == "storage" and info.free:
        return "storage (free)"
    return str(info.type)


def _amount(info: Any) -> str:
    if info.type == "checkpoint":
        return f"{info.count:,} checkpoint{'' if info.count == 1 else 's'}"
    if info.type == "storage":
        return f"{info.gigabyte_hours:,.3f} GB-hours"
    return f"{info.token_count:,} tokens"


def _usd(amount: float | None) -> str:
    return "-" if amount is None else f"{amount:,.4f}"


def checkpoint_storage(ctx: Context, args: argparse.Namespace) -> None:
    """Checkpoint count, size and projected monthly cost per project and session owner."""
    if args.project_id is not None and not args.project_id.strip():
        raise CliError("--project-id must not be empty")
    response = ctx.admin().get_current_checkpoint_storage_usage(args.project_id).result()
    items = list(response.data)
    if args.csv is not None:
        lines = [[getattr(item, name) for name in STORAGE_FIELDS] for item in items]
        write_csv(ctx, args.csv, STORAGE_FIELDS, lines, "storage rows")
        if args.csv == STDOUT:
            return
    if ctx.json:
        ctx.out_json(response)
        return
    count = sum(item.checkpoint_count for item in items)
    size = sum(item.size_bytes for item in items)
    scope = "" if args.project_id is None else f" of project {args.project_id}"
    title = (
        f"Checkpoint storage{scope}: {count:,} checkpoint{'' if count == 1 else 's'}, "
        f"{format_size(size)} (rate {_usd(response.effective_rate_usd_per_gigabyte_month)} USD "
        "per GB-month)"
    )
    rows = [
        (
            item.project_id or "-",
            item.user_email or item.user_name or item.org_user_urn or "-",
            f"{item.checkpoint_count:,}",
            format_size(item.size_bytes),
            _usd(item.estimated_monthly_cost_usd),
        )
        for item in items
    ]
    ctx.out(table(title, STORAGE_HEADERS, rows))
