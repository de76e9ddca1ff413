"""`tinker auth status`: is a credential configured here, and does the service accept it (one
unretried capabilities request, the check `tinker.auth.raise_if_tinker_not_accessible` makes,
on the command line's --base-url/--api-key when given)."""

from __future__ import annotations

import argparse

from tinker.cli.context import Context
from tinker.cli.failures import describe, redact

__all__ = ["auth_status"]


def auth_status(ctx: Context, args: argparse.Namespace) -> None:
    """Print whether credentials are available and whether Tinker is accessible with them."""
    from tinker import auth
    from tinker._access import check_access
    from tinker.config import ClientConfig
    from tinker.errors import TinkerError

    connection = ctx.connection
    available = connection.api_key is not None or auth.tinker_has_credentials()
    problem: str | None = None
    try:
        check_access(
            lambda: ClientConfig.from_env(
                base_url=connection.base_url,
                api_key=connection.api_key,
                telemetry=False,
                require_api_key=False,
            )
        )
    except TinkerError as exc:
        headline, detail = describe(exc)
        problem = redact(
            headline if detail is None else f"{headline}: {detail}", (connection.api_key,)
        )
    if ctx.json:
        ctx.out_json(
            {"credentials_available": available, "accessible": problem is None, "error": problem}
        )
        return
    ctx.out(f"Credentials available: {'yes' if available else 'no'}")
    ctx.out(f"Tinker accessible: {'yes' if problem is None else 'no'}")
    if problem is not None:
        ctx.out(f"  {problem}")
