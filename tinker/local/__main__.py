"""`python -m tinker.local serve`: run a local Tinker server in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from tinker.local.server import settings


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (one sub-command, `serve`)."""
    parser = argparse.ArgumentParser(prog="python -m tinker.local")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run a local Tinker-compatible server")
    serve.add_argument(
        "--host", default=settings.HOST, help=f"address to bind (default {settings.HOST})"
    )
    serve.add_argument(
        "--port",
        type=int,
        default=settings.CLI_PORT,
        help=f"port (default {settings.CLI_PORT}; 0 picks a free one)",
    )
    serve.add_argument(
        "--data-dir",
        default=None,
        help="where runs and checkpoints are kept "
        f"(default ${settings.DATA_DIR_ENV} or ~/.cache/tinker-sync/local)",
    )
    serve.add_argument(
        "--api-key",
        default=os.environ.get(settings.API_KEY_ENV) or None,
        help="require this X-API-Key on requests "
        f"(default ${settings.API_KEY_ENV}; none: no check)",
    )
    serve.add_argument(
        "--long-poll-seconds",
        type=float,
        default=settings.LONG_POLL_SECONDS,
        help=f"retrieve_future wait bound (default {settings.LONG_POLL_SECONDS:g})",
    )
    serve.add_argument(
        "--max-connections",
        type=int,
        default=settings.MAX_CONNECTIONS,
        help=f"connections served at once (default {settings.MAX_CONNECTIONS})",
    )
    serve.add_argument(
        "--public-url",
        default=None,
        help="the URL clients reach this server at, for the links it hands out "
        "(default: http://<host>:<port>)",
    )
    serve.add_argument(
        "--protocol",
        default="both",
        help='protocol eras and 0.38 features: "both" (default), "0.5.1" or "0.38", then '
        'optional <feature>=on|off, e.g. "both,jwt_auth=on" (features: zstd, '
        "retrieve_futures, join_sampling_session, jwt_auth, parallel_chunks, sample_cancel, "
        "custom_loss_server_side, pyqwest)",
    )
    serve.add_argument("--faults", default=None, help='fault spec, e.g. "train.5xx=0.1,seed=1"')
    serve.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server; returns the exit status (130 after Ctrl-C)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from tinker.local import serve

    stop = threading.Event()
    interrupted = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        interrupted.set()
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    try:
        server = serve(
            host=args.host,
            port=args.port,
            data_dir=args.data_dir,
            api_key=args.api_key,
            faults=args.faults,
            long_poll_seconds=args.long_poll_seconds,
            max_connections=args.max_connections,
            public_url=args.public_url,
            protocol=args.protocol,
        )
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"tinker.local: cannot start the server: {exc}\n")
        return 2
    sys.stdout.write(f"Tinker local server: {server.url}\nData directory: {server.data_dir}\n")
    sys.stdout.flush()
    with server:
        while not stop.wait(0.5):
            pass
    return 130 if interrupted.is_set() else 0


if __name__ == "__main__":
    sys.exit(main())
