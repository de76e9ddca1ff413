"""The `tinker` command line (`tinker ...` or `python -m tinker.cli ...`).

Only argparse and the CLI's own light modules load at start; the SDK clients, requests and the
tokenizer are imported by the commands that need them, so `tinker --help` starts fast.
"""

from __future__ import annotations

from tinker.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
