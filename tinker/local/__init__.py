"""The embedded Tinker-compatible server: the whole API offline, training a tiny model on the CPU.

`serve()` starts one on background threads and returns at once; `shared_server()` gives the
process-wide instance behind `base_url="local"`; `python -m tinker.local serve` runs one in the
foreground.
"""

from __future__ import annotations

import atexit
import logging
import pathlib
import threading
import time
from typing import TYPE_CHECKING

from tinker.local.server import settings
from tinker.local.server.data_lock import DataDirectoryInUse
from tinker.local.server.faults import FaultRule, Faults
from tinker.local.server.protocol import ProtocolOptions
from tinker.local.server.settings import EngineConfig

if TYPE_CHECKING:
    from tinker.local.compute.backend import Backend
    from tinker.local.server.app import AttachedServer, LocalServer

__all__ = [
    "AttachedServer",
    "DataDirectoryInUse",
    "EngineConfig",
    "FaultRule",
    "Faults",
    "LocalServer",
    "ProtocolOptions",
    "close_shared_server",
    "serve",
    "shared_server",
]

logger = logging.getLogger(__name__)

_shared: LocalServer | AttachedServer | None = None
_shared_lock = threading.Lock()


def serve(
    *,
    host: str = settings.HOST,
    port: int = settings.PORT,
    data_dir: str | pathlib.Path | None = None,
    api_key: str | None = None,
    faults: Faults | str | None = None,
    long_poll_seconds: float = settings.LONG_POLL_SECONDS,
    seq_gap_seconds: float = settings.SEQ_GAP_SECONDS,
    session_idle_seconds: float | None = settings.SESSION_IDLE_SECONDS,
    config: EngineConfig | None = None,
    backend: Backend | None = None,
    max_body_bytes: int = settings.MAX_BODY_BYTES,
    idle_connection_seconds: float = settings.IDLE_CONNECTION_SECONDS,
    request_deadline_seconds: float = settings.REQUEST_DEADLINE_SECONDS,
    max_connections: int = settings.MAX_CONNECTIONS,
    public_url: str | None = None,
    protocol: ProtocolOptions | str = "both",
) -> LocalServer:
    """Start a local server on background threads and return it (port 0 picks a free port).

    `data_dir` defaults to $TINKER_LOCAL_DATA_DIR or the user cache directory; only one server
    at a time may use it (a second one raises DataDirectoryInUse naming the first). `faults`
    takes a Faults or a spec string such as "train.5xx=0.1,seed=1". `config`, when given,
    replaces the timing arguments. Larger bodies than `max_body_bytes` are refused with 413; a
    connection that sends nothing for `idle_connection_seconds` is closed, and so is one whose
    request (headers and body) takes longer than `request_deadline_seconds`. At most
    `max_connections` are served at once. Download links are built from `public_url` (default:
    the server's own address). `protocol` says which protocol eras are spoken ("both", "0.5.1"
    or "0.38") and switches single 0.38 features, e.g. "both,jwt_auth=on,zstd=off" or a
    ProtocolOptions (JWT auth needs `api_key`). Each start also puts the local models'
    tokenizers in the Hugging Face cache (`tinker.local.hub_cache`; TINKER_LOCAL_HF_CACHE=0
    turns that off), so `AutoTokenizer.from_pretrained("tinker-local/tiny")` works offline.
    """
    from tinker.local import hub_cache
    from tinker.local.server.app import LocalServer
    from tinker.local.server.http import ServerOptions
    from tinker.local.server.protocol import coerce

    if isinstance(faults, str):
        faults = Faults.parse(faults)
    if config is None:
        config = EngineConfig(
            long_poll_seconds=long_poll_seconds,
            seq_gap_seconds=seq_gap_seconds,
            session_idle_seconds=session_idle_seconds,
        )
    if backend is None:
        from tinker.local.compute.backend import NumpyBackend

        backend = NumpyBackend()
    directory = (
        pathlib.Path(data_dir).expanduser() if data_dir is not None else settings.default_data_dir()
    )
    options = ServerOptions(
        api_key=api_key,
        faults=faults,
        max_body_bytes=max_body_bytes,
        idle_connection_seconds=idle_connection_seconds,
        request_deadline_seconds=request_deadline_seconds,
        max_connections=max_connections,
        public_url=public_url,
    )
    server = LocalServer(
        host=host,
        port=port,
        data_dir=directory,
        config=config,
        backend=backend,
        options=options,
        protocol=coerce(protocol),
    )
    hub_cache.publish_quietly()  # so that transformers finds the tokenizers by model name
    return server


def shared_server() -> LocalServer | AttachedServer:
    """The local server behind `base_url="local"`: started in this process on first use (and
    closed at exit), or, when another process already serves the default data directory, that
    process's server (one server per data directory)."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared.closed:
            _shared = _start_or_attach()
            atexit.register(_shared.close)
        return _shared


def close_shared_server() -> None:
    """Close the server behind `base_url="local"` if this process has one (starts nothing)."""
    with _shared_lock:
        shared = _shared
    if shared is not None:
        shared.close()


def _start_or_attach() -> LocalServer | AttachedServer:
    from tinker.local.server.app import AttachedServer

    deadline = time.monotonic() + settings.ATTACH_WAIT_SECONDS
    while True:
        try:
            return serve()
        except DataDirectoryInUse as in_use:
            if in_use.url is not None and in_use.pid is not None:
                logger.info(
                    "using the local server of process %d at %s (it serves %s)",
                    in_use.pid,
                    in_use.url,
                    in_use.data_dir,
                )
                return AttachedServer(in_use.url, in_use.data_dir, in_use.pid)
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)  # the other server is starting: its URL comes next


def __getattr__(name: str) -> object:
    if name in ("AttachedServer", "LocalServer"):
        from tinker.local.server import app

        return getattr(app, name)
    raise AttributeError(f"module 'tinker.local' has no attribute {name!r}")
