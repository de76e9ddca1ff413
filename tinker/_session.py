"""Sessions: opening one on the service, and the per-process registry that re-attaches to it.

`open_session` runs the start-up handshake (tinker._handshake: the protocol era and what the
server switches on), creates a session (`POST /api/v1/create_session` with the tags, user
metadata and SDK version; transport retries only), logs the messages the service sends back,
and starts its Runtime on the negotiated server config. Every open Runtime of the process is
registered under (server URL, session_id), with base_url="local" resolved to the embedded
server's address: a pickled Runtime, or a client handle holding one, re-attaches in another
process to the same session (on the same server and protocol era) without creating a new one,
and in this process to the very same Runtime. After `os.fork()`
the child gives every registered Runtime fresh locks and pools at once.

At interpreter exit, as soon as the main thread is done (before the standard library joins the
threads of its executors, which would run their queued work first), every open Runtime is
closed: pending operations fail with ClientClosedError, one log line counts them, and then the
embedded server of base_url="local" stops. While other threads of the program still run, this
waits until they have ended.
"""

from __future__ import annotations

import atexit
import concurrent.futures.thread  # noqa: F401  (its exit hook must be registered before ours)
import hashlib
import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

import attrs

from tinker._calls import ApiCall, CallRunner
from tinker._handshake import negotiate
from tinker._retry import TRANSPORT, RetryEnv, RetryExecutor
from tinker._runtime import Runtime, RuntimeOptions, codec_of, log_abandoned
from tinker._transport import Traffic, Transport, close_local_server, resolve_base_url
from tinker.config import LEGACY_SERVER, PROTOCOL_SDK_VERSION, ClientConfig, ServerConfig
from tinker.errors import APIResponseValidationError

__all__ = ["attach", "open_session", "sessionless"]

logger = logging.getLogger(__name__)

_registry: dict[tuple[str, str], Runtime] = {}
_registry_lock = threading.Lock()

_SERVER_MESSAGES = (
    ("info_message", logging.INFO),
    ("warning_message", logging.WARNING),
    ("error_message", logging.ERROR),
)


def open_session(
    config: ClientConfig,
    *,
    user_metadata: Mapping[str, Any] | None = None,
    options: RuntimeOptions | None = None,
    labels: Mapping[str, str] | None = None,
) -> Runtime:
    """Create a session on the service (blocking, transport retries only) and run it.

    `labels` are further session fields sent only when set (`project_id`, `display_name`)."""
    config.apply_log_level()
    options = options or RuntimeOptions()
    transport = Transport(config, adapter_factory=options.http_adapter, clock=options.clock)
    try:
        runner = CallRunner(
            transport,
            executor=RetryExecutor(sleep=options.sleep or time.sleep, metrics=transport.metrics),
            env=RetryEnv(max_retries=config.max_retries, deadline=config.submit_retry_seconds),
        )
        server = negotiate(runner)
        runner.codec = codec_of(server)
        session_id = _create_session(runner, config, server, user_metadata, labels or {})
    except BaseException:
        transport.close()
        raise
    runtime = Runtime(
        config,
        session_id,
        options=options,
        transport=transport,
        new_session=True,
        on_close=_forget,
        server=server,
    )
    with _registry_lock:
        _registry[(transport.base_url, session_id)] = runtime
    return runtime


def _create_session(
    runner: CallRunner,
    config: ClientConfig,
    server: ServerConfig,
    user_metadata: Mapping[str, Any] | None,
    labels: Mapping[str, str],
) -> str:
    sdk_version = config.sdk_version
    if sdk_version == PROTOCOL_SDK_VERSION:
        sdk_version = server.sdk_version
    body: dict[str, Any] = {
        "tags": list(config.tags),
        "user_metadata": dict(user_metadata or {}),
        "sdk_version": sdk_version,
        **labels,
    }
    if server.current:
        body["type"] = "create_session"
    data = runner.call(
        ApiCall(
            sdk_method=None,  # background traffic
            traffic=Traffic.SESSION,
            method="POST",
            path="/api/v1/create_session",
            body=body,
            retry=TRANSPORT,
        )
    )
    session_id = data.get("session_id") if isinstance(data, dict) else None
    if not isinstance(session_id, str):
        raise APIResponseValidationError(
            f"create_session answered without a session_id: {data!r}", body=data
        )
    for key, level in _SERVER_MESSAGES:
        message = data.get(key)
        if message:
            logger.log(level, "%s", message)
    return session_id


def attach(
    config: ClientConfig,
    session_id: str,
    *,
    options: RuntimeOptions | None = None,
    server: ServerConfig = LEGACY_SERVER,
) -> Runtime:
    """The open Runtime of this process for the session, or a new one (no new session) on the
    server config the session was negotiated with."""
    key = (resolve_base_url(config), session_id)
    with _registry_lock:
        existing = _registry.get(key)
        if existing is not None and not existing.closed:
            return existing
        runtime = Runtime(config, session_id, options=options, on_close=_forget, server=server)
        _registry[key] = runtime
    return runtime


def sessionless(config: ClientConfig) -> Runtime:
    """The process-wide runtime without a session for (server, API key): REST and admin calls
    share it; it has no heartbeat nor telemetry and stays open until exit."""
    config = attrs.evolve(config, telemetry=False)
    digest = hashlib.sha256((config.api_key or "").encode()).hexdigest()
    key = (resolve_base_url(config), f"sessionless:{digest}")
    with _registry_lock:
        existing = _registry.get(key)
        if existing is not None and not existing.closed:
            return existing
        runtime = Runtime(config, "", options=RuntimeOptions(heartbeat=False))
        _registry[key] = runtime
    return runtime


def _forget(runtime: Runtime) -> None:
    """Drop a closed runtime from the registry (unless another one took its place)."""
    key = (runtime.transport.base_url, runtime.session_id)
    with _registry_lock:
        if _registry.get(key) is runtime:
            del _registry[key]


def _after_fork_in_child() -> None:
    global _registry_lock
    _registry_lock = threading.Lock()
    for runtime in list(_registry.values()):
        runtime._after_fork_in_child()


def _close_all_at_exit() -> None:
    """The first exit hook: close everything now, unless threads of the program still run
    (they may still use their clients: then the last exit hook does it)."""
    main = threading.main_thread()
    if any(t.is_alive() and not t.daemon and t is not main for t in threading.enumerate()):
        return
    _close_all()


def _close_all() -> None:
    """Close every open Runtime (one log line for all they abandoned), then the embedded
    server they may have used."""
    abandoned = 0
    for runtime in list(_registry.values()):
        try:
            abandoned += runtime.shutdown()
        except Exception:
            logger.debug("closing a runtime at exit failed", exc_info=True)
    log_abandoned(abandoned, "the program exited")
    close_local_server()


os.register_at_fork(after_in_child=_after_fork_in_child)
# Hooks of `threading` run when the main thread ends, last registered first: before those of
# concurrent.futures (imported above) and before other threads are joined; atexit runs later.
getattr(threading, "_register_atexit", atexit.register)(_close_all_at_exit)
atexit.register(_close_all)
