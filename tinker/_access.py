"""Whether a service accepts a config's credential: one `GET /api/v1/get_server_capabilities`
on a connection of its own, sent once (no retries, no pause on billing answers).

Shared by `tinker.auth.raise_if_tinker_not_accessible` and `tinker auth status`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tinker.errors import TinkerError

if TYPE_CHECKING:
    from tinker.config import ClientConfig

__all__ = ["CAPABILITIES_PATH", "check_access"]

CAPABILITIES_PATH = "/api/v1/get_server_capabilities"


def check_access(build_config: Callable[[], ClientConfig]) -> None:
    """Return if the service of the config `build_config()` makes answers its credential, else
    raise: TinkerError (no credential), AuthenticationError, BillingError, APIConnectionError,
    another status error; anything else (a bad setting included) comes wrapped in a
    TinkerError."""
    from tinker._calls import ApiCall
    from tinker._transport import Traffic, Transport

    try:
        config = build_config()
        config.check_api_key()
        transport = Transport(config)
        try:
            call = ApiCall(traffic=Traffic.SESSION, method="GET", path=CAPABILITIES_PATH)
            transport.send(call.encode()).raise_for_status()
        finally:
            transport.close()
    except TinkerError:
        raise
    except Exception as exc:
        raise TinkerError(f"could not check access to Tinker: {type(exc).__name__}: {exc}") from exc
