"""Every default and limit of the local server, written once.

serve(), `python -m tinker.local serve` (and so `tinker local serve`), the HTTP transport and
the engine take their defaults from here; docs/local-server.md lists the ones users set.
"""

from __future__ import annotations

import os
import pathlib

import attrs

# Where to listen and what to require.
HOST = "127.0.0.1"  # loopback: the server is for this machine unless told otherwise
PORT = 0  # serve(): any free port
CLI_PORT = 8000  # python -m tinker.local serve
API_KEY_ENV = "TINKER_LOCAL_API_KEY"  # the command line's --api-key default
DATA_DIR_ENV = "TINKER_LOCAL_DATA_DIR"

# The HTTP transport.
MAX_BODY_BYTES = 64 * 1024 * 1024  # larger request bodies are refused with 413
IDLE_CONNECTION_SECONDS = 120.0  # a connection silent this long (e.g. a stalled body) is closed
LISTEN_BACKLOG = 128  # connections the kernel queues before the server accepts them

# The engine (the defaults of EngineConfig's fields that serve() also takes one by one).
LONG_POLL_SECONDS = 20.0  # one retrieve_future waits this long before answering 408
SEQ_GAP_SECONDS = 10.0  # a run waits this long for a missing seq_id, then goes on
SESSION_IDLE_SECONDS = 3600.0  # a session without any request this long is ended

# LoRA: the rank a create_model without lora_config gets (the SDKs' own default), and the
# largest rank accepted (the local models are at most 256 wide; larger ranks only cost memory).
DEFAULT_LORA_RANK = 32
MAX_LORA_RANK = 128


def default_data_dir() -> pathlib.Path:
    """$TINKER_LOCAL_DATA_DIR, else <user cache dir>/tinker-sync/local."""
    explicit = os.environ.get(DATA_DIR_ENV)
    if explicit:
        return pathlib.Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(pathlib.Path.home() / ".cache")
    return pathlib.Path(cache).expanduser() / "tinker-sync" / "local"


def _default_sample_workers() -> int:
    return max(2, min(4, os.cpu_count() or 2))


@attrs.frozen
class EngineConfig:
    """Timing and capacity knobs of the engine; the defaults suit interactive use, tests shrink
    them."""

    long_poll_seconds: float = LONG_POLL_SECONDS
    seq_gap_seconds: float = SEQ_GAP_SECONDS
    session_idle_seconds: float | None = SESSION_IDLE_SECONDS  # None: sessions never expire
    #: A delivered result is kept this long for a client that polls again (a lost response).
    result_grace_seconds: float = 600.0
    #: A result nobody fetched is kept this long.
    result_max_age_seconds: float = 3600.0
    #: Threads that run samples (numpy releases the GIL while it multiplies).
    sample_workers: int = attrs.field(factory=_default_sample_workers)
    #: Queued samples beyond this answer 429 (back-pressure the client honours).
    max_pending_samples: int = 4096
    #: Built samplers kept (merged weights: about 14 MB each for "small").
    max_cached_samplers: int = 8
    #: Adapter snapshots of ephemeral samplers kept (small).
    max_ephemeral_samplers: int = 256
    #: How often expired results, idle sessions, expired checkpoints and links are swept.
    maintenance_seconds: float = 1.0
    #: How long a checkpoint archive download link works.
    archive_url_seconds: float = 900.0
    max_lora_rank: int = MAX_LORA_RANK
