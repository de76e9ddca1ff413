"""The embedded Tinker-compatible server: the whole API offline, training a tiny model on the CPU.

`serve()` starts one on background threads and returns at once; `shared_server()` gives the
process-wide instance behind `base_url="local"`; `python -m tinker.local serve` runs one in the
foreground.
"""

from __future__ import annotations

import atexit
import pathlib
import threading
from typing import TYPE_CHECKING

from tinker.local.server import settings
from tinker.local.server.faults import FaultRule, Faults
from tinker.local.server.settings import EngineConfig

if TYPE_CHECKING:
    from tinker.local.compute.backend import Backend
    from tinker.local.server.app import LocalServer

__all__ = ["EngineConfig", "FaultRule", "Faults", "LocalServer", "serve", "shared_server"]

_shared: LocalServer | None = None
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
) -> LocalServer:
    """Start a local server on background threads and return it (port 0 picks a free port).

    `data_dir` defaults to $TINKER_LOCAL_DATA_DIR or the user cache directory; `faults` takes a
    Faults or a spec string such as "train.5xx=0.1,seed=1". `config`, when given, replaces the
    timing arguments. Larger bodies than `max_body_bytes` are refused with 413; a connection
    that sends nothing for `idle_connection_seconds` (e.g. a stalled partial request) is closed.
    """
    from tinker.local.server.app import LocalServer

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
    return LocalServer(
        host=host,
        port=port,
        data_dir=directory,
        api_key=api_key,
        faults=faults,
        config=config,
        backend=backend,
        max_body_bytes=max_body_bytes,
        idle_connection_seconds=idle_connection_seconds,
    )


def shared_server() -> LocalServer:
    """The process-wide local server (started on first use, closed at exit)."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared.closed:
            _shared = serve()
            atexit.register(_shared.close)
        return _shared


def __getattr__(name: str) -> object:
    if name == "LocalServer":
        from tinker.local.server.app import LocalServer

        return LocalServer
    raise AttributeError(f"module 'tinker.local' has no attribute {name!r}")
