"""`tinker model list`: the base models the service offers (RestClient.get_server_capabilities),
filtered by a case-insensitive substring; when nothing matches, the error names the caller's
organization (from RestClient.whoami, when the credential carries one)."""

from __future__ import annotations

import argparse
from typing import Any

from tinker.cli.context import CliError, Context
from tinker.cli.render import table

__all__ = ["add_model_commands", "list_models"]

HEADERS = ("Model", "Max Context", "Trainable", "Sampleable")


def add_model_commands(commands: Any, leaf: argparse.ArgumentParser) -> None:
    models = commands.add_parser("model", help="base models")
    sub = models.add_subparsers(dest="model_command", metavar="COMMAND", required=True)
    listing = sub.add_parser("list", parents=[leaf], help="the base models you can use")
    listing.add_argument(
        "substring", nargs="?", metavar="SUBSTRING", help="only names containing it (any case)"
    )
    listing.set_defaults(handler=list_models)


def list_models(ctx: Context, args: argparse.Namespace) -> None:
    """Print the models of the service, those whose name contains SUBSTRING when given."""
    rest: Any = ctx.rest()
    models = rest.get_server_capabilities().result().supported_models
    needle = (args.substring or "").lower()
    chosen = [m for m in models if needle in (m.model_name or "").lower()]
    if not chosen:
        raise CliError(_nothing_matches(rest, args.substring))
    if ctx.json:
        ctx.out_json(
            [
                {
                    "model_name": m.model_name,
                    "max_context_length": m.max_context_length,
                    "trainable": m.trainable,
                    "sampleable": m.sampleable,
                }
                for m in chosen
            ]
        )
        return
    rows = [
        (
            m.model_name or "-",
            "-" if m.max_context_length is None else str(m.max_context_length),
            _yes_no(m.trainable),
            _yes_no(m.sampleable),
        )
        for m in chosen
    ]
    ctx.out(table(None, HEADERS, rows))


def _yes_no(flag: bool | None) -> str:
    return "-" if flag is None else ("yes" if flag else "no")


def _nothing_matches(rest: Any, substring: str | None) -> str:
    """The error when no model matches, naming the organization when the credential has one."""
    what = "no models are available" if not substring else f"no model name contains {substring!r}"
    try:
        organization = rest.whoami().result().org_urn
    except Exception:  # no identity (plain API key, older service): say it without one
        return what
    return f"{what} for organization {organization}"
