"""`tinker session export-trace`: a Perfetto trace of a session's requests
(RestClient.export_session_trace), downloaded to a file or shown as its signed URL."""

from __future__ import annotations

import argparse
import os
import pathlib
from typing import Any

from tinker.cli.context import Context
from tinker.cli.render import format_size, table

__all__ = ["TRACE_SUFFIX", "add_export_trace_command", "export_trace", "trace_destination"]

TRACE_SUFFIX = ".pftrace"


def add_export_trace_command(sessions: Any, leaf: argparse.ArgumentParser) -> None:
    export = sessions.add_parser(
        "export-trace", parents=[leaf], help="download a Perfetto trace of a session's requests"
    )
    export.add_argument("session_id", metavar="SESSION_ID")
    export.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help=f"file to write (default ./<session-id>{TRACE_SUFFIX}; in it if a directory/)",
    )
    export.add_argument("--url-only", action="store_true", help="print the download URL only")
    export.add_argument("--force", action="store_true", help="replace an existing file")
    export.set_defaults(handler=export_trace)


def trace_destination(session_id: str, output: str | None) -> pathlib.Path:
    """The file a session's trace goes to: --output, or `<session-id>.pftrace` in the current
    directory (or in --output when that is a directory or ends with a slash)."""
    default_name = session_id.replace("/", "_") + TRACE_SUFFIX
    if output is None:
        return pathlib.Path.cwd() / default_name
    chosen = pathlib.Path(output).absolute()
    if chosen.is_dir() or output.endswith(("/", os.sep)):
        return chosen / default_name
    return chosen


def export_trace(ctx: Context, args: argparse.Namespace) -> None:
    """Ask the service for the session's trace (it may take a while to build), then download
    it, or with --url-only print the signed URL (valid about an hour, no API key needed)."""
    from tinker.cli.external_download import download_file, refuse_existing

    destination = None if args.url_only else trace_destination(args.session_id, args.output)
    if destination is not None:
        refuse_existing(destination, args.force)  # before the export, which takes a while
    url = ctx.rest().export_session_trace(args.session_id).result()
    if destination is None:
        if ctx.json:
            ctx.out_json({"session_id": args.session_id, "url": url})
        else:
            ctx.out(url)
        return
    progress = ctx.progress("Downloading", unit="bytes")
    try:
        size = download_file(
            url,
            destination,
            name=f"the trace of {args.session_id}",
            force=args.force,
            progress=lambda done: progress.update(done, None),
        )
    finally:
        progress.finish()
    if ctx.json:
        ctx.out_json(
            {
                "session_id": args.session_id,
                "destination": str(destination),
                "file_size_bytes": size,
            }
        )
        return
    headers = ("Session ID", "Size", "Downloaded to")
    ctx.out(table(None, headers, [(args.session_id, format_size(size), str(destination))]))
