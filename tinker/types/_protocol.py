"""Plumbing of the 0.38 protocol: the start-up handshake, the JWT exchange, the batch
completion poller, cancelling futures, finishing sessions and joining sampling sessions.

Every field and default is a protocol fact (docs/architecture.md, protocol facts). Answers
whose discriminator the reader needs (`state` of a completion, `status` of a metadata-only
answer) always send it.
"""

from __future__ import annotations

from typing import ClassVar, Literal, Union

import attrs

from tinker.types._base import WireModel, wire

__all__ = [
    "AuthTokenResponse",
    "CancelFutureRequest",
    "ClientConfigRequest",
    "ClientConfigResponse",
    "ClientDynamicConfigResponse",
    "FutureCompleteMetadata",
    "FutureCompletion",
    "FutureFailed",
    "FutureFinished",
    "FuturesRetrieveRequest",
    "FuturesRetrieveResponse",
    "JoinSamplingSessionRequest",
    "JoinSamplingSessionResponse",
    "SamplingSessionFuturesTarget",
    "SessionFinishReason",
    "SessionFinishRequest",
]


@wire
@attrs.frozen(kw_only=True)
class ClientConfigRequest(WireModel):
    """Body of POST /api/v1/client/config and /api/v1/client/dynamic_config."""

    sdk_version: str


@wire
@attrs.define(kw_only=True)
class ClientConfigResponse(WireModel):
    """What the server switches on for a client; every field may be absent (its default)."""

    pjwt_auth_enabled: bool = False
    credential_default_source: str = "api_key"
    sample_dispatch_bytes_semaphore_size: int = 10 * 1024 * 1024
    inflight_response_bytes_semaphore_size: int = 50 * 1024 * 1024
    parallel_fwdbwd_chunks: bool = True
    proto_compress_fwdbwd: bool = False
    fwdbwd_max_chunk_len: int = 1024
    fwdbwd_max_chunk_bytes_count: int = 5_000_000
    fwdbwd_dispatch_bytes_semaphore_size: int = 50_000_000
    billing_exception_max_pause_duration_sec: int = 3600
    sample_no_retries: bool = False
    sample_enable_stuck_detection: bool = True
    sample_max_concurrent_requests: int = 2000
    use_pyqwest_transport: bool = True
    sample_use_retrieve_futures: bool = False
    custom_loss_server_side: bool = False
    sample_join_sampling_session: bool = False


@wire
@attrs.define(kw_only=True)
class ClientDynamicConfigResponse(WireModel):
    """Settings a client refetches every `refresh_interval_sec` (at least 10 s)."""

    refresh_interval_sec: int = 300
    sample_cancel_enabled: bool = False
    sample_cancel_max_batch_size: int = 64


@wire
@attrs.define(kw_only=True)
class AuthTokenResponse(WireModel):
    """Answer of POST /api/v1/auth/token: a short-lived JWT to send as X-API-Key."""

    jwt: str


@wire
@attrs.frozen(kw_only=True)
class SessionFinishReason(WireModel):
    """Why a client ended its session."""

    type: Literal["success", "errored", "interrupted"]


@wire
@attrs.frozen(kw_only=True)
class SessionFinishRequest(WireModel):
    """Body of POST /api/v1/sessions/{session_id}/finish (`detail` is sent even when null)."""

    reason: SessionFinishReason
    detail: str | None = None


@wire
@attrs.frozen(kw_only=True)
class CancelFutureRequest(WireModel):
    """Body of POST /api/v1/cancel_future: stop work nobody waits for any more."""

    request_id: str


@wire
@attrs.define(kw_only=True)
class FutureCompleteMetadata(WireModel):
    """A retrieve_future answer that announces a large result without sending it: the client
    reserves `response_payload_size` bytes, then polls again without `allow_metadata_only`."""

    _always_sent: ClassVar[frozenset[str]] = frozenset({"status"})
    status: Literal["complete_metadata"] = "complete_metadata"
    response_payload_size: int | None = None


@wire
@attrs.frozen(kw_only=True)
class SamplingSessionFuturesTarget(WireModel):
    """The futures one client of a sampling session waits for (clone 0 is the original)."""

    _always_sent: ClassVar[frozenset[str]] = frozenset({"type"})
    type: Literal["sampling_session"] = "sampling_session"
    sampling_session_id: str
    cloned_sampler_id: int


@wire
@attrs.frozen(kw_only=True)
class FuturesRetrieveRequest(WireModel):
    """Body of POST /api/v1/retrieve_futures: a long poll (`timeout` absent) or an ack-only
    poll (`timeout` 0) for the completions after `prev_cursor`."""

    target: SamplingSessionFuturesTarget
    prev_cursor: int = 0
    timeout: float | None = None
    retrieved_request_ids: list[str] = attrs.field(factory=list)


@wire
@attrs.define(kw_only=True)
class FutureFinished(WireModel):
    """A completion whose result is ready (its size when known)."""

    _always_sent: ClassVar[frozenset[str]] = frozenset({"state"})
    state: Literal["finished"] = "finished"
    request_id: str
    response_payload_uncompressed_size: int | None = None


@wire
@attrs.define(kw_only=True)
class FutureFailed(WireModel):
    """A completion whose request failed (retrieve_future answers the error)."""

    _always_sent: ClassVar[frozenset[str]] = frozenset({"state"})
    state: Literal["failed"] = "failed"
    request_id: str


FutureCompletion = Union[FutureFinished, FutureFailed]


@wire
@attrs.define(kw_only=True)
class FuturesRetrieveResponse(WireModel):
    """Answer of retrieve_futures: new completions and the cursor to send back."""

    completions: list[FutureCompletion]
    cursor: int


@wire
@attrs.frozen(kw_only=True)
class JoinSamplingSessionRequest(WireModel):
    """Body of POST /api/v1/join_sampling_session (sent by a copied SamplingClient)."""

    sampling_session_id: str
    type: Literal["join_sampling_session"] = "join_sampling_session"


@wire
@attrs.define(kw_only=True)
class JoinSamplingSessionResponse(WireModel):
    """The copy's clone id: unique among the sampling session's clients, from 1."""

    client_counter: int
    type: Literal["join_sampling_session"] | None = None
