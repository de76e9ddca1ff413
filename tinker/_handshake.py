"""The start-up handshake: which protocol era the server speaks and what it switches on.

Before a session is created the client asks `POST /api/v1/client/config` (required by a 0.38
server) and `POST /api/v1/client/dynamic_config` (a 404 there means the defaults). A server
that answers 404 to `client/config` predates the handshake: it gets the 0.5.1 protocol
(`LEGACY_SERVER`). The result is one `ServerConfig` value the runtime acts on. When the config
turns JWT auth on, the transport sends access tokens from the exchange instead of the API key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from tinker import _wire, types
from tinker._auth import JwtCredential, looks_like_jwt
from tinker._calls import ApiCall, CallRunner
from tinker._retry import TRANSPORT
from tinker._transport import Traffic, Transport
from tinker.config import CURRENT_SDK_VERSION, LEGACY_SERVER, ServerConfig
from tinker.errors import NotFoundError

__all__ = ["ask_for_access_tokens", "negotiate", "refresh_dynamic", "use_access_tokens"]

logger = logging.getLogger(__name__)

DYNAMIC_CONFIG_TIMEOUT = 10.0


def negotiate(runner: CallRunner) -> ServerConfig:
    """Ask the server for its config (transport retries only); LEGACY_SERVER when it does
    not know the handshake."""
    client = _client_config(runner.call)
    if client is None or not client.pjwt_auth_enabled:
        runner.transport.config.check_key_needed()  # a credential command alone is not enough
    if client is None:
        logger.debug("the server does not know client/config: speaking the 0.5.1 protocol")
        return LEGACY_SERVER
    if client.pjwt_auth_enabled:
        use_access_tokens(runner.transport, client)
    try:
        dynamic = runner.call(_dynamic_config_call())
    except NotFoundError:
        dynamic = types.ClientDynamicConfigResponse()
    server = ServerConfig.from_answers(client, dynamic)
    logger.debug("negotiated with the server: %s", server)
    return server


def ask_for_access_tokens(call: Callable[[ApiCall], Any], transport: Transport) -> bool:
    """Whether the server's `client/config` turns JWT auth on (for a runtime that skipped the
    handshake); when it does, `transport` sends access tokens from then on."""
    client = _client_config(call)
    if client is None or not client.pjwt_auth_enabled:
        return False
    use_access_tokens(transport, client)
    return True


def _client_config(call: Callable[[ApiCall], Any]) -> types.ClientConfigResponse | None:
    """The server's `client/config` answer (sent with the API key itself: an exchange comes
    after), or None from a server that predates the handshake."""
    body = {"sdk_version": CURRENT_SDK_VERSION}
    try:
        answer: types.ClientConfigResponse = call(
            _config_call("/api/v1/client/config", body, types.ClientConfigResponse)
        )
    except NotFoundError:
        return None
    return answer


def refresh_dynamic(runner: CallRunner, server: ServerConfig) -> ServerConfig:
    """`server` with the switches of a fresh `client/dynamic_config` answer (one attempt; an
    error is raised to the caller, which keeps the old values)."""
    call = _dynamic_config_call()
    reply = runner.transport.send(call.encode(runner.codec)).raise_for_status()
    answer = _wire.structure(reply.json(), types.ClientDynamicConfigResponse)
    return server.with_dynamic(answer)


def _dynamic_config_call() -> ApiCall:
    return _config_call(
        "/api/v1/client/dynamic_config",
        {"sdk_version": CURRENT_SDK_VERSION},
        types.ClientDynamicConfigResponse,
        timeout=DYNAMIC_CONFIG_TIMEOUT,
    )


def use_access_tokens(
    transport: Transport, client: types.ClientConfigResponse | None = None
) -> None:
    """Make `transport` send access tokens from `POST /api/v1/auth/token` (fetched with the
    API key, or the credential command's output, on first use and before expiry) as
    X-API-Key; `client` is the server's config answer (its preferred credential source). An
    API key that is itself a token is sent as it is: there is nothing to exchange."""
    key = transport.config.api_key
    if key is not None and looks_like_jwt(key):
        return
    if client is not None:
        transport.exchange_with_command = client.credential_default_source == "credential_cmd"

    def exchange() -> str:
        call = ApiCall(
            traffic=Traffic.SESSION,
            method="POST",
            path="/api/v1/auth/token",
            body={},
            sdk_method=None,
        )
        reply = transport.send(call.encode(), authenticate=False).raise_for_status()
        answer = _wire.structure(reply.json(), types.AuthTokenResponse)
        return answer.jwt

    transport.credential = JwtCredential(exchange)


def _config_call(
    path: str, body: dict[str, str], result: type[object], *, timeout: float | None = None
) -> ApiCall:
    return ApiCall(
        sdk_method=None,  # background traffic
        traffic=Traffic.SESSION,
        method="POST",
        path=path,
        body=body,
        result=result,
        retry=TRANSPORT,
        timeout=timeout,
    )
