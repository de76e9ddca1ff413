"""`tinker checkpoint ...`: list, info, publish, unpublish, delete, download, set-ttl."""

from __future__ import annotations

import argparse
import pathlib
from typing import Any

from tinker import errors
from tinker.cli.context import CliError, Context, RestClientLike
from tinker.cli.failures import describe
from tinker.cli.paging import collect, limit_argument, more_note, positive_argument
from tinker.cli.render import format_size, format_time, format_timestamp, property_table, table

__all__ = ["add_checkpoint_commands", "parse_tinker_path"]

CHECKPOINT_PAGE_SIZE = 1000


def parse_tinker_path(path: str) -> tuple[str, str]:
    """(training_run_id, checkpoint_id) of `tinker://<run>/<weights|sampler_weights>/<name>`."""
    from tinker.types import ParsedCheckpointTinkerPath

    parsed = ParsedCheckpointTinkerPath.from_tinker_path(path)  # ValueError says what is wrong
    return parsed.training_run_id, parsed.checkpoint_id


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

    deleting = sub.add_parser("delete", parents=[leaf], help="delete checkpoints permanently")
    deleting.add_argument("tinker_paths", metavar="TINKER_PATH", nargs="+")
    deleting.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    deleting.set_defaults(handler=delete_checkpoints)

    fetching = sub.add_parser("download", parents=[leaf], help="download and extract a checkpoint")
    fetching.add_argument("tinker_path", metavar="TINKER_PATH")
    fetching.add_argument(
        "-o", "--output", metavar="DIR", help="parent directory (default: current directory)"
    )
    fetching.add_argument("--force", action="store_true", help="replace an existing directory")
    fetching.set_defaults(handler=download)

    ttl = sub.add_parser("set-ttl", parents=[leaf], help="set or remove a checkpoint's expiry")
    ttl.add_argument("tinker_path", metavar="TINKER_PATH")
    choice = ttl.add_mutually_exclusive_group(required=True)
    choice.add_argument("--ttl", type=positive_argument, metavar="SECONDS", help="expire after")
    choice.add_argument("--remove", action="store_true", help="never expire")
    ttl.set_defaults(handler=set_ttl)


def list_checkpoints(ctx: Context, args: argparse.Namespace) -> None:
    """One run's checkpoints with --run-id, else all of the user's, newest first."""
    rest = ctx.rest()
    if args.run_id is not None:
        checkpoints = list(rest.list_checkpoints(args.run_id).result().checkpoints)
        if ctx.json:
            ctx.out_json({"run_id": args.run_id, "checkpoints": checkpoints})
            return
        title = f"{_count(len(checkpoints))} for training run {args.run_id}"
    else:

        def fetch(limit: int, offset: int) -> tuple[list[Any], int | None]:
            response = rest.list_user_checkpoints(limit=limit, offset=offset).result()
            cursor = getattr(response, "cursor", None)
            return list(response.checkpoints), getattr(cursor, "total_count", None)

        progress = ctx.progress("Fetching checkpoints")
        checkpoints, total = collect(fetch, args.limit, CHECKPOINT_PAGE_SIZE, progress)
        if ctx.json:
            ctx.out_json({"checkpoints": checkpoints})
            return
        title = _count(len(checkpoints)) + more_note(len(checkpoints), total)
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


def _count(n: int) -> str:
    return f"{n} checkpoint{'' if n == 1 else 's'}"


def find_checkpoint(rest: RestClientLike, tinker_path: str) -> Any:
    """The Checkpoint at `tinker_path`, found by listing its run's checkpoints."""
    run_id, _ = parse_tinker_path(tinker_path)
    for checkpoint in rest.list_checkpoints(run_id).result().checkpoints:
        if checkpoint.tinker_path == tinker_path:
            return checkpoint
    raise CliError(f"checkpoint not found: {tinker_path}")


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


def delete_checkpoints(ctx: Context, args: argparse.Namespace) -> None:
    """Delete checkpoints after one confirmation (skipped with --yes); report failures together."""
    paths: list[str] = list(dict.fromkeys(args.tinker_paths))
    for path in paths:
        parse_tinker_path(path)
    rest = ctx.rest()
    if not args.yes and not _confirm_deletion(ctx, rest, paths):
        ctx.out("Deletion cancelled.")
        return
    failures: list[str] = []
    deleted: list[str] = []
    for path in paths:
        try:
            rest.delete_checkpoint_from_tinker_path(path).result()
        except Exception as exc:
            headline, detail = describe(exc)
            failures.append(f"  {path}: {headline}" + (f" ({detail})" if detail else ""))
        else:
            deleted.append(path)
    if deleted or ctx.json:
        _confirm(ctx, "\n".join(f"Deleted {path}" for path in deleted), deleted=deleted)
    if failures:
        ctx.err("\n".join(failures))
        raise CliError(f"failed to delete {len(failures)} of {len(paths)} checkpoints")


def _confirm_deletion(ctx: Context, rest: RestClientLike, paths: list[str]) -> bool:
    if not ctx.interactive:
        raise CliError(
            "refusing to delete without confirmation: standard input is not a terminal "
            "(pass --yes to delete anyway)"
        )
    for path in paths:
        try:
            ctx.out(_info_table(find_checkpoint(rest, path)))
        except Exception:  # the lookup is informative only; show the bare path instead
            ctx.out(path)
        ctx.out("")
    noun = "this checkpoint" if len(paths) == 1 else f"these {len(paths)} checkpoints"
    ctx.out(f"WARNING: {noun} will be permanently deleted. This cannot be undone.")
    try:
        answer = ctx.prompt("Proceed? [y/N]: ")
    except EOFError:
        answer = ""
    return answer.strip().lower() in ("y", "yes")


def download(ctx: Context, args: argparse.Namespace) -> None:
    """Download a checkpoint under --output: an external-weights checkpoint file by file, any
    other as an archive that is extracted, or (a training checkpoint on a service without
    archives) through a temporary external-weights export."""
    from tinker.checkpoints import checkpoint_dir_name, download_checkpoint
    from tinker.cli.external_download import (
        download_external_weights,
        download_training_checkpoint,
    )
    from tinker.training_client import TrainingClient
    from tinker.types import ParsedCheckpointTinkerPath

    parsed = ParsedCheckpointTinkerPath.from_tinker_path(args.tinker_path)
    progress = ctx.progress("Downloading", unit="bytes")
    received = [0]

    def report(done: int, total: int | None = None) -> None:
        received[0] = done
        progress.update(done, total)

    parent = pathlib.Path(args.output or pathlib.Path.cwd()).absolute()
    destination = parent / checkpoint_dir_name(args.tinker_path)
    # A 0.38 service has no archives: it exports a training checkpoint instead (when this
    # SDK can ask for that); older services and tinker.local serve archives.
    exportable = parsed.checkpoint_type == "training" and hasattr(
        TrainingClient, "save_weights_external"
    )
    archived = parsed.checkpoint_type != "external"
    try:
        if not archived:
            download_external_weights(
                ctx.rest(), args.tinker_path, destination, force=args.force, progress=report
            )
        else:
            try:
                download_checkpoint(
                    ctx.rest(), args.tinker_path, parent, force=args.force, progress=report
                )
            except errors.NotFoundError:
                if not exportable:
                    raise
                archived = False
                download_training_checkpoint(
                    ctx.clients.service_client(),
                    ctx.rest(),
                    args.tinker_path,
                    destination,
                    force=args.force,
                    progress=report,
                )
    finally:
        progress.finish()
    if ctx.json:
        ctx.out_json(
            {
                "checkpoint_path": args.tinker_path,
                "destination": str(destination),
                "file_size_bytes": received[0],
            }
        )
        return
    headers = ("Checkpoint Path", "Size", "Downloaded to")
    if archived:
        headers = ("Checkpoint Path", "Archive Size", "Extracted to")
    ctx.out(table(None, headers, [(args.tinker_path, format_size(received[0]), str(destination))]))


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
