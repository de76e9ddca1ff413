"""Who a credential belongs to (`RestClient.whoami`), read from the claims of its access token.

The identity comes from the JWT the server issued in the exchange (or an API key that is itself
a token of the identity provider, issuer `passport-...`); no request asks for it. A runtime
that skipped the start-up handshake (the shared one without a session) first asks the server's
`client/config` whether it uses access tokens, once: from then on it sends them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinker._auth import looks_like_jwt, token_claims
from tinker._handshake import ask_for_access_tokens

if TYPE_CHECKING:
    from tinker import types
    from tinker._runtime import Runtime

__all__ = ["ORGANIZATION_URN_PREFIX", "identity_of", "whoami"]

ORGANIZATION_URN_PREFIX = "tml:organization:"
_PROVIDER_ISSUER_PREFIX = "passport-"


def whoami(runtime: Runtime) -> types.WhoamiResponse:
    """The identity behind `runtime`'s credential; RuntimeError when the server does not use
    access tokens and the credential is a plain API key (it carries no identity)."""
    token = _identity_token(runtime)
    if token is None:
        raise RuntimeError(
            "whoami needs an access token: this server does not use JWT auth and the "
            "credential is a plain API key, which carries no identity"
        )
    return identity_of(token)


def identity_of(token: str) -> types.WhoamiResponse:
    """The user (`sub`), organization (`org_id`) and email claims of an access token."""
    from tinker import types

    claims = token_claims(token)
    user, organization = claims.get("sub"), claims.get("org_id")
    if not isinstance(user, str) or not user or not isinstance(organization, str):
        raise RuntimeError("the access token names no user (sub) or organization (org_id)")
    email = claims.get("email")
    return types.WhoamiResponse(
        user_urn=user,
        org_urn=ORGANIZATION_URN_PREFIX + organization,
        email=email if isinstance(email, str) and email else None,
    )


def _identity_token(runtime: Runtime) -> str | None:
    """The token that names the caller: the provider's token given as the key, the exchanged
    access token, or (with JWT auth on) a key that is itself a token; None for a plain key."""
    key = runtime.config.api_key
    key_is_token = key is not None and looks_like_jwt(key)
    if key is not None and key_is_token:
        issuer = token_claims(key).get("iss")
        if isinstance(issuer, str) and issuer.startswith(_PROVIDER_ISSUER_PREFIX):
            return key
    transport = runtime.transport
    if transport.credential is not None:
        return transport.credential.token()
    jwt_auth = runtime.server.jwt_auth
    if not jwt_auth and not runtime.session_id:  # the handshake was skipped: ask now
        jwt_auth = ask_for_access_tokens(runtime.call, transport)
    if transport.credential is not None:
        return transport.credential.token()
    return key if jwt_auth and key_is_token else None
