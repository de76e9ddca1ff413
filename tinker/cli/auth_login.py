"""`tinker auth login` and `tinker auth logout`: keep a default API key in the credentials file
(tinker._credential_file), checked with and revoked at the service's `auth/apikey/me`
(tinker.cli.api_keys), on the command line's --base-url when given.

Login takes the key from a hidden prompt, or from standard input when that is not a terminal
(scripts, CI). The key itself is never printed.
"""

from __future__ import annotations

import argparse
import os
import socket
import urllib.parse
from typing import TextIO

from tinker._credential_file import (
    GENERATED,
    StoredKey,
    credentials_file,
    read_credentials,
    write_credentials,
)
from tinker.cli.context import CliError, Context, is_terminal
from tinker.cli.render import hyperlink, printable

__all__ = ["DESCRIPTIONS", "key_page_url", "login", "logout", "new_key_url"]

# `tinker auth login --help` / `logout --help`
DESCRIPTIONS = {
    "login": (
        "Store an API key as the default credential of this machine (~/.tinker/credentials.json). "
        "Prints the console page that creates a key, asks for the key without echoing it, checks "
        "it with the service and prints whose it is. When standard input is not a terminal the "
        "key is read from it instead, e.g. `printenv MY_KEY | tinker auth login`."
    ),
    "logout": (
        "Remove the default API key from ~/.tinker/credentials.json. A key the service generated "
        "for the CLI is also revoked there; a key you pasted keeps working until you delete it "
        "in the console (the link is printed)."
    ),
}


def new_key_url() -> str:
    """The console page that creates a key, named after this machine (`tinker-cli-<host>`)."""
    from tinker.types._training import CONSOLE_URL

    host = socket.gethostname().split(".", 1)[0] or "unknown"
    name = urllib.parse.quote(f"tinker-cli-{host}", safe="")
    return f"{CONSOLE_URL}/keys?new_key=true&key_name={name}"


def key_page_url(key_id: str) -> str:
    """The console page of one key (where it is deleted)."""
    from tinker.types._training import CONSOLE_URL

    return f"{CONSOLE_URL}/keys/{urllib.parse.quote(key_id, safe='')}"


def login(ctx: Context, args: argparse.Namespace) -> None:
    """Check a key with the service and store it as the default (refused when one is stored)."""
    from tinker.cli.api_keys import describe_key  # requests loads only for this command

    if ctx.connection.api_key is not None:
        raise CliError(
            "tinker auth login reads the key from its prompt or from standard input, "
            "not from --api-key"
        )
    path = credentials_file()
    credentials = read_credentials(path)
    current = credentials.default_key()
    if current is not None:
        raise CliError(
            f"Already logged in: the default key {_label(current)} is stored in {path}; "
            "run `tinker auth logout` first"
        )
    base_url, verify_tls = _service(ctx)
    key = _read_key(ctx)
    stored = describe_key(base_url, key, verify_tls=verify_tls)
    write_credentials(credentials.with_default(stored), path)
    if os.environ.get("TINKER_API_KEY"):
        ctx.err("Note: TINKER_API_KEY is set; clients use it instead of the stored key.")
    if ctx.json:
        ctx.out_json(
            {
                "email": stored.email,
                "organization": stored.organization,
                "key_id": stored.key_id,
                "key_name": stored.name,
                "credentials_file": str(path),
            }
        )
        return
    ctx.out(_logged_in(stored))
    ctx.out(f"Stored the key {_label(stored)} as the default in {path}.")


def logout(ctx: Context, args: argparse.Namespace) -> None:
    """Remove the default key (revoking it on the service when the service generated it)."""
    from tinker.cli.api_keys import revoke_key

    path = credentials_file()
    credentials = read_credentials(path)
    stored = credentials.default_key()
    if stored is None:
        raise CliError(f"Not logged in: no default key is stored in {path}")
    revoked: bool | None = None
    if stored.type == GENERATED:
        base_url, verify_tls = _service(ctx)
        try:
            revoke_key(base_url, stored.key, verify_tls=verify_tls)
            revoked = True
        except CliError as exc:
            revoked = False
            ctx.err(f"Warning: the key was not revoked on the service: {exc}")
    write_credentials(credentials.without(stored.key_id), path)
    delete_url = None if revoked else key_page_url(stored.key_id)
    if ctx.json:
        ctx.out_json(
            {
                "key_id": stored.key_id,
                "key_name": stored.name,
                "type": stored.type,
                "revoked": revoked,
                "delete_url": delete_url,
                "credentials_file": str(path),
            }
        )
        return
    ctx.out(f"Logged out: removed the key {_label(stored)} from {path}.")
    if revoked:
        ctx.out("The service has revoked the key.")
    if delete_url is not None:
        link = hyperlink(delete_url, terminal=is_terminal(ctx.stdout))
        ctx.out(f"The key works until you delete it in the Tinker console: {link}")


def _service(ctx: Context) -> tuple[str, bool]:
    """The service URL (--base-url, else TINKER_BASE_URL, else the hosted service; `local`
    starts the in-process server) and whether TLS is verified, as every command resolves them."""
    from tinker._transport import resolve_base_url
    from tinker.config import ClientConfig

    config = ClientConfig.from_env(
        base_url=ctx.connection.base_url, telemetry=False, require_api_key=False
    )
    return resolve_base_url(config), config.verify_tls


def _read_key(ctx: Context) -> str:
    """The key from the hidden prompt (after the console link), or from standard input when
    that is not a terminal; a CliError when there is none or it cannot be a header value."""
    if ctx.interactive:
        guide: TextIO = ctx.stderr if ctx.json else ctx.stdout  # JSON mode keeps stdout clean
        link = hyperlink(new_key_url(), terminal=is_terminal(guide))
        print(f"Create an API key in the Tinker console: {link}", file=guide, flush=True)
        try:
            key = ctx.secret_prompt("API key (input hidden): ").strip()
        except EOFError:
            key = ""
        if not key:
            raise CliError("No API key entered")
    else:
        key = ctx.stdin.read().strip()
        if not key:
            raise CliError(
                "No API key on standard input: pipe the key in, or run tinker auth login in a "
                "terminal to be prompted for it"
            )
    if not key.isascii() or any(c.isspace() or not c.isprintable() for c in key):
        raise CliError("The API key contains spaces or control characters; give the key alone")
    return key


def _label(stored: StoredKey) -> str:
    """'"name" (id 7)', or 'id 7' for a key without a name."""
    if stored.name:
        return f'"{printable(stored.name)}" (id {printable(stored.key_id)})'
    return f"id {printable(stored.key_id)}"


def _logged_in(stored: StoredKey) -> str:
    email, organization = stored.email, stored.organization
    who = f" as {printable(email)}" if email else ""
    where = f" (organization {printable(organization)})" if organization else ""
    return f"Logged in{who}{where}."
