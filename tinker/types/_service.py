"""Session requests and answers: create_session, heartbeat, capabilities, health."""

from __future__ import annotations

from typing import Any, Literal

import attrs

from tinker.types._base import WireModel, wire

__all__ = [
    "CreateSessionRequest",
    "CreateSessionResponse",
    "GetServerCapabilitiesResponse",
    "HealthResponse",
    "SessionHeartbeatRequest",
    "SessionHeartbeatResponse",
    "SupportedModel",
]


@wire
@attrs.frozen(kw_only=True)
class CreateSessionRequest(WireModel):
    """Body of POST /api/v1/create_session."""

    tags: list[str]
    user_metadata: dict[str, Any] | None
    sdk_version: str
    project_id: str | None = None
    display_name: str | None = None
    type: Literal["create_session"] = "create_session"


@wire
@attrs.define(kw_only=True)
class CreateSessionResponse(WireModel):
    """Answer of create_session, with optional messages for the user."""

    type: Literal["create_session"] = "create_session"
    info_message: str | None = None
    warning_message: str | None = None
    error_message: str | None = None
    session_id: str


@wire
@attrs.frozen(kw_only=True)
class SessionHeartbeatRequest(WireModel):
    """Body of POST /api/v1/session_heartbeat."""

    session_id: str
    type: Literal["session_heartbeat"] = "session_heartbeat"


@wire
@attrs.define(kw_only=True)
class SessionHeartbeatResponse(WireModel):
    """Answer of session_heartbeat (`{}` is valid)."""

    type: Literal["session_heartbeat"] = "session_heartbeat"


@wire
@attrs.define(kw_only=True)
class SupportedModel(WireModel):
    """One base model the server can train or sample."""

    model_name: str | None = None
    max_context_length: int | None = None
    trainable: bool | None = None
    sampleable: bool | None = None


@wire
@attrs.define(kw_only=True)
class GetServerCapabilitiesResponse(WireModel):
    """Answer of GET /api/v1/get_server_capabilities."""

    supported_models: list[SupportedModel]


@wire
@attrs.define(kw_only=True)
class HealthResponse(WireModel):
    """Answer of GET /api/v1/healthz."""

    status: Literal["ok"]
