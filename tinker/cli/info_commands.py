"""Read-only commands: `version`, `run list|info` and `session list|info` (with the session
group's `search` and `export-trace`)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Set
from typing import Any

from tinker.cli.context import Context
from tinker.cli.paging import collect, limit_argument, more_note, positive_argument
from tinker.cli.render import format_lora, format_time, property_table, table
from tinker.cli.run_columns import COLUMNS, DEFAULT_COLUMNS, columns_argument, run_health
from tinker.cli.search_commands import add_search_command, search_page
from tinker.cli.trace_command import add_export_trace_command

__all__ = [
    "active_sessions",
    "add_run_commands",
    "add_session_commands",
    "checkpoint_rows",
    "run_status",
    "version",
]

RUN_PAGE_SIZE = 100
SESSION_SEARCH_PAGE_SIZE = 200
SESSION_SEARCH_MAX_PAGES = 50
# 0.38 model ids are "<session id>:train:<n>".
_RUN_OF_SESSION = ":train:"

logger = logging.getLogger(__name__)


def version(ctx: Context, args: argparse.Namespace) -> None:
    """Print the SDK version."""
    from tinker._version import __version__

    if ctx.json:
        ctx.out_json({"version": __version__})
    else:
        ctx.out(f"tinker {__version__}")


def add_run_commands(commands: Any, leaf: argparse.ArgumentParser) -> None:
    run = commands.add_parser("run", help="training runs")
    sub = run.add_subparsers(dest="run_command", metavar="COMMAND", required=True)
    listing = sub.add_parser("list", parents=[leaf], help="list training runs")
    listing.add_argument(
        "--limit", type=limit_argument, default=20, help="how many runs (default 20, 0 = all)"
    )
    listing.add_argument(
        "-c",
        "--columns",
        type=columns_argument,
        default=list(DEFAULT_COLUMNS),
        metavar="NAMES",
        help=f"comma-separated columns, of {', '.join(COLUMNS)} "
        f"(default {','.join(DEFAULT_COLUMNS)})",
    )
    listing.set_defaults(handler=list_runs)
    info = sub.add_parser("info", parents=[leaf], help="show one training run")
    info.add_argument("run_id", metavar="RUN_ID")
    info.set_defaults(handler=run_info)


def list_runs(ctx: Context, args: argparse.Namespace) -> None:
    """List training runs, newest first as the service orders them, in the --columns chosen
    (JSON: every field of every run, whatever the columns)."""
    rest = ctx.rest()

    def fetch(limit: int, offset: int) -> tuple[list[Any], int | None]:
        response = rest.list_training_runs(limit=limit, offset=offset).result()
        cursor = getattr(response, "cursor", None)
        return list(response.training_runs), getattr(cursor, "total_count", None)

    runs, total = collect(fetch, args.limit, RUN_PAGE_SIZE, ctx.progress("Fetching runs"))
    if ctx.json:
        ctx.out_json({"runs": runs})
        return
    title = f"{len(runs)} training run{'' if len(runs) == 1 else 's'}{more_note(len(runs), total)}"
    columns = [COLUMNS[name] for name in args.columns]
    rows = [[cell(run) for _, cell in columns] for run in runs]
    ctx.out(table(title, [header for header, _ in columns], rows))


def run_info(ctx: Context, args: argparse.Namespace) -> None:
    """Show one training run with its latest checkpoints and metadata."""
    rest = ctx.rest()
    run = rest.get_training_run(args.run_id).result()
    if ctx.json:
        ctx.out_json(run)
        return
    rows = [
        ("Run ID", run.training_run_id),
        ("Base Model", run.base_model),
        ("Owner", run.model_owner),
        ("LoRA", format_lora(run.is_lora, run.lora_rank)),
        ("Last Update", format_time(run.last_request_time)),
        ("Status", run_status(run, active_sessions(rest))),
    ]
    rows += checkpoint_rows("Last Training Checkpoint", run.last_checkpoint)
    rows += checkpoint_rows("Last Sampler Checkpoint", run.last_sampler_checkpoint)
    metadata = run.user_metadata or {}
    rows.append(("Metadata", ", ".join(f"{k}={v}" for k, v in metadata.items()) or "-"))
    ctx.out(property_table(f"Training run {run.training_run_id}", rows))


def checkpoint_rows(label: str, checkpoint: Any) -> list[tuple[str, str]]:
    """Property rows naming a run's latest checkpoint (id, time, path) or 'None'."""
    if checkpoint is None:
        return [(label, "None")]
    return [
        (label, checkpoint.checkpoint_id),
        ("  Time", format_time(checkpoint.time)),
        ("  Path", checkpoint.tinker_path),
    ]


def run_status(run: Any, active: Set[str] | None) -> str:
    """'Failed' (corrupted), 'Active' while the run's session still sends heartbeats, 'Ended'
    once it does not; 'OK' when the session's state is unknown (`active` None: no search)."""
    health = run_health(run)
    session_id, separator, _ = run.training_run_id.partition(_RUN_OF_SESSION)
    if health == "Failed" or active is None or not separator:
        return health
    return "Active" if session_id in active else "Ended"


def active_sessions(rest: Any) -> frozenset[str] | None:
    """Ids of the sessions the service counts as active (kept alive by heartbeats), from
    session search; None when this SDK or the service cannot search sessions."""
    from tinker import errors, types

    search = getattr(rest, "search_sessions", None)
    request_type = getattr(types, "SessionSearchRequest", None)
    active_query = getattr(types, "ActiveSessionStatusQuery", None)
    if search is None or request_type is None or active_query is None:
        return None
    found: set[str] = set()
    cursor = None
    try:
        for _ in range(SESSION_SEARCH_MAX_PAGES):
            request = request_type(
                statuses=[active_query()], limit=SESSION_SEARCH_PAGE_SIZE, cursor=cursor
            )
            response = search_page(search, request)
            found.update(summary.session_id for summary in response.sessions)
            cursor = response.next_cursor
            if cursor is None:
                break
    except errors.APIStatusError as exc:  # a service without session search
        logger.debug("session search failed, run states unknown: %s", exc)
        return None
    return frozenset(found)


def add_session_commands(commands: Any, leaf: argparse.ArgumentParser) -> None:
    session = commands.add_parser("session", help="sessions")
    sub = session.add_subparsers(dest="session_command", metavar="COMMAND", required=True)
    listing = sub.add_parser("list", parents=[leaf], help="list session ids")
    listing.add_argument("--limit", type=positive_argument, default=20, help="default 20")
    listing.add_argument("--offset", type=limit_argument, default=0, help="default 0")
    listing.set_defaults(handler=list_sessions)
    info = sub.add_parser("info", parents=[leaf], help="training runs and samplers of a session")
    info.add_argument("session_id", metavar="SESSION_ID")
    info.set_defaults(handler=session_info)
    add_search_command(sub, leaf)
    add_export_trace_command(sub, leaf)


def list_sessions(ctx: Context, args: argparse.Namespace) -> None:
    """List session ids (one page: --limit from --offset)."""
    response = ctx.rest().list_sessions(limit=args.limit, offset=args.offset).result()
    sessions = list(response.sessions)
    if ctx.json:
        ctx.out_json({"sessions": sessions})
        return
    title = f"{len(sessions)} session{'' if len(sessions) == 1 else 's'}"
    ctx.out(table(title, ("Session ID",), [(session,) for session in sessions]))


def session_info(ctx: Context, args: argparse.Namespace) -> None:
    """Show the training runs and samplers that belong to a session."""
    session = ctx.rest().get_session(args.session_id).result()
    runs, samplers = list(session.training_run_ids), list(session.sampler_ids)
    if ctx.json:
        ctx.out_json(
            {"session_id": args.session_id, "training_run_ids": runs, "sampler_ids": samplers}
        )
        return
    rows = [
        ("Session ID", args.session_id),
        ("Training Runs", ", ".join(runs) or "-"),
        ("Samplers", ", ".join(samplers) or "-"),
    ]
    ctx.out(property_table(f"Session {args.session_id}", rows))
