"""`tinker checkpoint ...`: list, info, publish, unpublish, delete, download, push-hf, set-ttl."""

from __future__ import annotations

import argparse
import pathlib
from typing import Any

from tinker.cli import checkpoint_delete, push_hf
from tinker.cli.checkpoint_lookup import (
    checkpoint_count,
    find_checkpoint,
    parse_tinker_path,
    user_checkpoints,
)
from tinker.cli.context import CliError, Context
from tinker.cli.paging import limit_argument, more_note, positive_argument
from tinker.cli.render import format_size, format_time, format_timestamp, property_table, table

__all__ = ["add_checkpoint_commands"]


def add_checkpoint_commands(commands: Any, leaf: argparse.ArgumentParser) -> None:
    group = commands.add_parser("checkpoint", help="checkpoints")
    sub = group.add_subparsers(dest="checkpoint_command", metavar="COMMAND", required=True)

    listing = sub.add_parser("list", parents=[leaf], help="list checkpoints")
    listing.add_argument("--run-id", help="only this training run's checkpoints (not paginated)")
    listing.add_argument(
        "--limit",
        type=limit_argument,
        default=20,
        help="how many checkpoints without --run-id (default 20, 0 = all)",
    )
    listing.set_defaults(handler=list_checkpoints)

    for name, handler, text in (
        ("info", checkpoint_info, "show one checkpoint"),
        ("publish", publish, "make a checkpoint public"),
        ("unpublish", unpublish, "make a checkpoint private"),
    ):
        command = sub.add_parser(name, parents=[leaf], help=text)
        command.add_argument("tinker_path", metavar="TINKER_PATH")
        command.set_defaults(handler=handler)

    checkpoint_delete.add_delete_command(sub, leaf)

    fetching = sub.add_parser("download", parents=[leaf], help="download and extract a checkpoint")
    fetching.add_argument("tinker_path", metavar="TINKER_PATH")
    fetching.add_argument(
        "-o", "--output", metavar="DIR", help="parent directory (default: current directory)"
    )
    fetching.add_argument("--force", action="store_true", help="replace an existing directory")
    fetching.set_defaults(handler=download)
    push_hf.add_push_hf_command(sub, leaf)

    ttl = sub.add_parser("set-ttl", parents=[leaf], help="set or remove a checkpoint's expiry")
    ttl.add_argument("tinker_path", metavar="TINKER_PATH")
    choice = ttl.add_mutually_exclusive_group(required=True)
    choice.add_argument("--ttl", type=positive_argument, metavar="SECONDS", help="expire after")
    choice.add_argument("--remove", action="store_true", help="never expire")
    ttl.set_defaults(handler=set_ttl)


def list_checkpoints(ctx: Context, args: argparse.Namespace) -> None:
    """One run's checkpoints with --run-id, else all of the user's, newest first."""
    if args.run_id is not None:
        checkpoints = list(ctx.rest().list_checkpoints(args.run_id).result().checkpoints)
        if ctx.json:
            ctx.out_json({"run_id": args.run_id, "checkpoints": checkpoints})
            return
        title = f"{checkpoint_count(len(checkpoints))} for training run {args.run_id}"
    else:
        checkpoints, total = user_checkpoints(ctx, args.limit)
        if ctx.json:
            ctx.out_json({"checkpoints": checkpoints})
            return
        title = checkpoint_count(len(checkpoints)) + more_note(len(checkpoints), total)
    rows = [
        (
            c.checkpoint_id,
            c.checkpoint_type,
            format_size(c.size_bytes),
            "Yes" if c.public else "No",
            format_time(c.time),
            c.tinker_path,
        )
        for c in checkpoints
    ]
    headers = ("Checkpoint ID", "Type", "Size", "Public", "Created", "Path")
    ctx.out(table(title, headers, rows))


def _info_table(checkpoint: Any) -> str:
    run_id, _ = parse_tinker_path(checkpoint.tinker_path)
    rows = [
        ("Checkpoint ID", checkpoint.checkpoint_id),
        ("Type", checkpoint.checkpoint_type),
        ("Tinker Path", checkpoint.tinker_path),
        ("Size", format_size(checkpoint.size_bytes)),
        ("Public", "Yes" if checkpoint.public else "No"),
        ("Created", format_time(checkpoint.time)),
        ("Training Run ID", run_id),
    ]
    expires = getattr(checkpoint, "expires_at", None)
    if expires is not None:
        rows.append(("Expires", format_timestamp(expires)))
    return property_table(f"Checkpoint {checkpoint.tinker_path}", rows)


def checkpoint_info(ctx: Context, args: argparse.Namespace) -> None:
    """Show one checkpoint's details."""
    checkpoint = find_checkpoint(ctx.rest(), args.tinker_path)
    if ctx.json:
        ctx.out_json(checkpoint)
    else:
        ctx.out(_info_table(checkpoint))


def publish(ctx: Context, args: argparse.Namespace) -> None:
    """Make a checkpoint loadable by other users."""
    parse_tinker_path(args.tinker_path)
    ctx.rest().publish_checkpoint_from_tinker_path(args.tinker_path).result()
    _confirm(ctx, f"Published {args.tinker_path}", tinker_path=args.tinker_path, public=True)


def unpublish(ctx: Context, args: argparse.Namespace) -> None:
    """Make a public checkpoint private again."""
    parse_tinker_path(args.tinker_path)
    ctx.rest().unpublish_checkpoint_from_tinker_path(args.tinker_path).result()
    _confirm(ctx, f"Unpublished {args.tinker_path}", tinker_path=args.tinker_path, public=False)


def _confirm(ctx: Context, text: str, **fields: Any) -> None:
    """Say what a changing command did: `text`, or `fields` as a JSON object."""
    if ctx.json:
        ctx.out_json(fields)
    else:
        ctx.out(text)


def download(ctx: Context, args: argparse.Namespace) -> None:
    """Download a checkpoint under --output (see checkpoint_fetch for how)."""
    from tinker.cli.checkpoint_fetch import fetch_checkpoint

    parse_tinker_path(args.tinker_path)
    parent = pathlib.Path(args.output or pathlib.Path.cwd()).absolute()
    fetched = fetch_checkpoint(ctx, args.tinker_path, parent, force=args.force)
    if ctx.json:
        ctx.out_json(
            {
                "checkpoint_path": args.tinker_path,
                "destination": str(fetched.destination),
                "file_size_bytes": fetched.received,
            }
        )
        return
    headers = ("Checkpoint Path", "Size", "Downloaded to")
    if fetched.archived:
        headers = ("Checkpoint Path", "Archive Size", "Extracted to")
    row = (args.tinker_path, format_size(fetched.received), str(fetched.destination))
    ctx.out(table(None, headers, [row]))


def set_ttl(ctx: Context, args: argparse.Namespace) -> None:
    """Set (--ttl SECONDS) or remove (--remove) a checkpoint's time to live."""
    parse_tinker_path(args.tinker_path)
    rest = ctx.rest()
    setter = getattr(rest, "set_checkpoint_ttl_from_tinker_path", None)
    if setter is None:
        raise CliError("this SDK's RestClient cannot set checkpoint TTLs")
    ttl = None if args.remove else args.ttl
    setter(args.tinker_path, ttl).result()
    text = (
        f"Removed the expiry of {args.tinker_path}: it is kept until deleted"
        if ttl is None
        else f"{args.tinker_path} now expires in {ttl} seconds"
    )
    _confirm(ctx, text, tinker_path=args.tinker_path, ttl_seconds=ttl)
