"""`tinker local serve ...`: run the embedded server in the foreground.

The options are those of `python -m tinker.local serve`; they are passed through unchanged so
the two commands can never disagree.
"""

from __future__ import annotations

import argparse
from typing import Any

from tinker.cli.context import Context

__all__ = ["add_local_commands", "serve_local"]


def add_local_commands(commands: Any, leaf: argparse.ArgumentParser) -> None:
    local = commands.add_parser("local", help="the embedded Tinker-compatible server")
    sub = local.add_subparsers(dest="local_command", metavar="COMMAND", required=True)
    serve = sub.add_parser(
        "serve",
        add_help=False,  # `--help` goes to the server's own parser with the rest
        help="run a local server in the foreground (options: see `tinker local serve --help`)",
    )
    serve.set_defaults(handler=serve_local, passthrough=True)


def serve_local(ctx: Context, args: argparse.Namespace) -> int:
    """Delegate to the server's command line with the arguments given after `serve`.

    Returns the server's exit status (0 when stopped, 130 after Ctrl-C, 2 when it cannot start).
    """
    from tinker.local.__main__ import main as server_main

    return server_main(["serve", *args.extra])
