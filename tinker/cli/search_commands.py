"""`tinker session search` and the `tinker auth` commands (whoami here; status, login and logout
in their own modules): the 0.38 account queries.

Search and whoami call the RestClient methods of the same names (`search_sessions`,
`whoami`); with an SDK or service that lacks them they fail with a message saying so. Session
search pages through `next_cursor` until `--limit` sessions are shown (0 = all).
"""

from __future__ import annotations

import argparse
import warnings
from typing import Any

from tinker.cli import auth_login
from tinker.cli.auth_status import auth_status
from tinker.cli.context import CliError, Context
from tinker.cli.paging import limit_argument
from tinker.cli.render import format_size, format_time, printable, property_table, table

__all__ = [
    "STATUS_QUERIES",
    "add_auth_commands",
    "add_search_command",
    "describe_status",
    "search_page",
]

# --status value -> the SessionStatusQuery type that asks for it.
STATUS_QUERIES = {
    "active": "ActiveSessionStatusQuery",
    "cancelled": "CancelledSessionStatusQuery",
    "failed": "FailedSessionStatusQuery",
    "finished": "ClientFinishedSessionStatusQuery",
}
OWNERS = {"own": "OwnSearchOwner", "accessible": "AccessibleSearchOwner"}
SEARCH_PAGE_SIZE = 200  # the service's largest page


def search_page(search: Any, request: Any) -> Any:
    """One page of `RestClient.search_sessions` (which the service marks experimental: the
    CLI does not repeat its warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return search(request).result()


def add_search_command(sessions: Any, leaf: argparse.ArgumentParser) -> None:
    search = sessions.add_parser(
        "search", parents=[leaf], help="find sessions by name, id, status or metadata"
    )
    search.add_argument(
        "name", nargs="?", metavar="TEXT", help="words the display name contains (any case)"
    )
    search.add_argument("--id", dest="session_id", metavar="SESSION_ID", help="exact session id")
    search.add_argument(
        "--status",
        action="append",
        choices=sorted(STATUS_QUERIES),
        help="only sessions in this state (repeatable: any of them)",
    )
    search.add_argument(
        "--metadata",
        action="append",
        type=_key_value,
        metavar="KEY=VALUE",
        help="user metadata that must match exactly (repeatable: all of them)",
    )
    search.add_argument(
        "--owner", choices=sorted(OWNERS), default="own", help="whose sessions (default own)"
    )
    search.add_argument(
        "--limit", type=limit_argument, default=20, help="how many (default 20, 0 = all)"
    )
    search.set_defaults(handler=search_sessions)


def add_auth_commands(commands: Any, leaf: argparse.ArgumentParser) -> None:
    auth = commands.add_parser("auth", help="credentials")
    sub = auth.add_subparsers(dest="auth_command", metavar="COMMAND", required=True)
    whoami = sub.add_parser("whoami", parents=[leaf], help="who the API key belongs to")
    whoami.set_defaults(handler=who_am_i)
    status = sub.add_parser(
        "status", parents=[leaf], help="whether credentials are set and Tinker accepts them"
    )
    status.set_defaults(handler=auth_status)
    for name, summary in (
        ("login", "store an API key as this machine's default credential"),
        ("logout", "remove the stored default API key"),
    ):
        command = sub.add_parser(
            name, parents=[leaf], help=summary, description=auth_login.DESCRIPTIONS[name]
        )
        command.set_defaults(handler=getattr(auth_login, name))


def _key_value(text: str) -> tuple[str, str]:
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _method(rest: Any, name: str) -> Any:
    method = getattr(rest, name, None)
    if method is None:
        raise CliError(f"this SDK's RestClient has no {name}() (it needs a 0.38 service)")
    return method


def _type(name: str) -> Any:
    from tinker import types

    found = getattr(types, name, None)
    if found is None:
        raise CliError(f"this SDK has no tinker.types.{name} (it needs a 0.38 service)")
    return found


def search_sessions(ctx: Context, args: argparse.Namespace) -> None:
    """List the sessions that match every given criterion, newest first."""
    search = _method(ctx.rest(), "search_sessions")
    request_type = _type("SessionSearchRequest")
    criteria: dict[str, Any] = {
        "session_id": args.session_id,
        "display_name": args.name or None,
        "user_metadata": dict(args.metadata or []),
        "owner": _type(OWNERS[args.owner])(),
    }
    if args.status:
        criteria["statuses"] = [_type(STATUS_QUERIES[s])() for s in dict.fromkeys(args.status)]
    found: list[Any] = []
    cursor = None
    progress = ctx.progress("Searching sessions")
    while args.limit == 0 or len(found) < args.limit:
        wanted = SEARCH_PAGE_SIZE if args.limit == 0 else args.limit - len(found)
        size = min(SEARCH_PAGE_SIZE, wanted)
        page = search_page(search, request_type(**criteria, limit=size, cursor=cursor))
        found.extend(page.sessions)
        progress.update(len(found), None)
        cursor = page.next_cursor
        if cursor is None:
            break
    progress.finish()
    if args.limit:
        found = found[: args.limit]
    if ctx.json:
        ctx.out_json({"sessions": [_summary_json(s) for s in found]})
        return
    rows = [
        (
            s.session_id,
            printable(s.display_name or "-"),
            format_time(s.created_at),
            describe_status(s.status),
            str(s.checkpoints_count),
            format_size(getattr(s, "checkpoint_storage_bytes", None)),
        )
        for s in found
    ]
    more = " (more match: raise --limit)" if cursor is not None else ""
    title = f"{len(found)} session{'' if len(found) == 1 else 's'}{more}"
    headers = ("Session ID", "Name", "Created", "Status", "Checkpoints", "Storage")
    ctx.out(table(title, headers, rows))


def describe_status(status: Any) -> str:
    """'active', 'cancelled', 'failed (user)', 'finished (success)' or '-' when unknown."""
    if status is None:
        return "-"
    kind = status.type
    if kind == "failed":
        return f"failed ({status.category})"
    if kind == "client_finished":
        return f"finished ({status.reason.type})"
    return str(kind)


def _summary_json(summary: Any) -> dict[str, Any]:
    from tinker.cli.render import to_jsonable

    return {
        "session_id": summary.session_id,
        "display_name": summary.display_name,
        "created_at": to_jsonable(summary.created_at),
        "status": describe_status(summary.status),
        "checkpoints_count": summary.checkpoints_count,
        "user_metadata": to_jsonable(summary.user_metadata),
    }


def who_am_i(ctx: Context, args: argparse.Namespace) -> None:
    """Show the user and organization the credential belongs to."""
    try:
        identity = _method(ctx.rest(), "whoami")().result()
    except RuntimeError as exc:  # the credential carries no identity (no JWT auth)
        raise CliError(str(exc)) from exc
    fields = {"email": identity.email, "user": identity.user_urn, "organization": identity.org_urn}
    if ctx.json:
        ctx.out_json(fields)
        return
    rows = [
        ("Email", identity.email or "-"),
        ("User", identity.user_urn),
        ("Organization", identity.org_urn),
    ]
    ctx.out(property_table(None, rows))
