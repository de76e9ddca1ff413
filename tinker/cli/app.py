"""The `tinker` command line: argument parsing, dispatch, error reporting and exit codes."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from tinker.cli import (
    billing_commands,
    checkpoint_commands,
    doctor_command,
    info_commands,
    local_commands,
    model_commands,
    sample_command,
    search_commands,
)
from tinker.cli.context import ClientFactory, CliError, Connection, Context, is_terminal
from tinker.cli.failures import describe, hint, redact

__all__ = ["build_parser", "main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130

# A command either returns nothing (success) or its own exit status.
Handler = Callable[[Context, argparse.Namespace], "int | None"]


def _common_options(*, suppress: bool) -> argparse.ArgumentParser:
    """Options accepted both before and after the subcommand.

    On subcommands the defaults are suppressed so that a value given before the subcommand is
    kept unless it is repeated after it.
    """
    default: Any = argparse.SUPPRESS if suppress else None
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-f",
        "--format",
        dest="output_format",
        choices=("table", "json"),
        default=default if suppress else "table",
        help="output format (default: table)",
    )
    common.add_argument(
        "--base-url",
        default=default,
        help="service URL, or 'local' for the in-process server (env TINKER_BASE_URL)",
    )
    common.add_argument("--api-key", default=default, help="API key (env TINKER_API_KEY)")
    return common


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (cheap: no SDK modules are imported)."""
    parser = argparse.ArgumentParser(
        prog="tinker",
        description=(
            "Manage Tinker training runs, checkpoints and sessions; report usage; sample; "
            "serve locally."
        ),
        parents=[_common_options(suppress=False)],
    )
    leaf = _common_options(suppress=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    version = commands.add_parser("version", parents=[leaf], help="print the SDK version")
    version.set_defaults(handler=info_commands.version)

    info_commands.add_run_commands(commands, leaf)
    checkpoint_commands.add_checkpoint_commands(commands, leaf)
    info_commands.add_session_commands(commands, leaf)
    sample_command.add_sample_command(commands, leaf)
    local_commands.add_local_commands(commands, leaf)
    search_commands.add_auth_commands(commands, leaf)
    model_commands.add_model_commands(commands, leaf)
    billing_commands.add_billing_commands(commands, leaf)
    doctor_command.add_doctor_command(commands, leaf)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    client_factory: ClientFactory | None = None,
    context: Context | None = None,
) -> int:
    """Run the CLI and return its exit code (0 ok, 1 error, 130 interrupted)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "passthrough", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    ctx = context if context is not None else Context()
    ctx.output_format = args.output_format
    ctx.connection = Connection(base_url=args.base_url, api_key=args.api_key)
    if client_factory is not None:
        ctx.client_factory = client_factory
    _configure_logging()
    handler: Handler = args.handler
    secrets = ctx.secrets
    try:
        status = handler(ctx, args)
        ctx.stdout.flush()  # a closed pipe shows here, not at interpreter exit
    except BrokenPipeError:
        _discard_output(ctx)  # the reader (e.g. `| head`) has all it wanted
        return EXIT_OK
    except KeyboardInterrupt:
        ctx.err("\nInterrupted.")
        return EXIT_INTERRUPTED
    except Exception as exc:
        _report(ctx, exc, secrets)
        return EXIT_ERROR
    finally:
        _close_quietly(ctx)
    return EXIT_OK if status is None else status


def _report(ctx: Context, exc: Exception, secrets: tuple[str | None, ...]) -> None:
    headline, detail = describe(exc)
    if _wants_traceback(ctx) and not isinstance(exc, CliError):  # our own messages say it all
        ctx.err(redact("".join(traceback.format_exception(exc)).rstrip(), secrets))
    ctx.err(redact(f"Error: {headline}", secrets))
    if detail is not None and detail != headline:
        ctx.err(redact(f"  {detail}", secrets))
    advice = hint(exc)
    if advice is not None:
        ctx.err(f"  Hint: {advice}")


def _wants_traceback(ctx: Context) -> bool:
    if os.environ.get("TINKER_LOG", "").lower() == "debug":
        return True
    return is_terminal(ctx.stderr)


def _discard_output(ctx: Context) -> None:
    """Point stdout at /dev/null, so that nothing written later (or flushed at exit) fails."""
    try:
        fileno = ctx.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (tests), nothing to redirect
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fileno)
    finally:
        os.close(devnull)


def _close_quietly(ctx: Context) -> None:
    try:
        ctx.close()
    except Exception:  # closing must not turn a success into a failure
        logging.getLogger(__name__).debug("closing clients failed", exc_info=True)


def _configure_logging() -> None:
    level = os.environ.get("TINKER_LOG", "").lower()
    if level in ("debug", "info"):
        logging.basicConfig(stream=sys.stderr, level=level.upper())
