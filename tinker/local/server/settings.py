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
ATTACH_WAIT_SECONDS = 10.0  # base_url="local": wait this long for another process's server URL

# The HTTP transport.
MAX_BODY_BYTES = 64 * 1024 * 1024  # larger request bodies are refused with 413 (before reading)
IDLE_CONNECTION_SECONDS = 120.0  # a connection silent this long (e.g. a stalled body) is closed
REQUEST_DEADLINE_SECONDS = 60.0  # headers + body of one request must arrive within this
MAX_CONNECTIONS = 256  # connections served at once (one thread each); more wait in the backlog
LISTEN_BACKLOG = 1024  # connections the kernel queues while the server is at MAX_CONNECTIONS
LINGER_SECONDS = 10.0  # how long an unread body is drained after an early answer (401, 404, 413)

# Request bodies and query strings: what any field may hold (server.validation checks them).
MAX_JSON_DEPTH = 32  # nesting of JSON arrays and objects
MAX_NUMBER_CHARS = 100  # digits (and sign, point, exponent) of one JSON number literal
MAX_STRING_CHARS = 65_536  # characters of any string (no NUL, no lone surrogate)
MAX_ID_CHARS = 512  # characters of ids, model names, paths and checkpoint names
MAX_PAGE = 1000  # entries per page of a list endpoint (a larger `limit` gives this many)
MAX_TTL_SECONDS = 100 * 365 * 86_400  # a checkpoint ttl_seconds (100 years)

# Bodies of the 0.38 protocol: a zstd request body may expand to at most this many bytes (it is
# refused with 400 past it), and a finished result larger than INLINE_RESULT_BYTES is first
# announced without its payload to clients that allow that (allow_metadata_only).
MAX_DECOMPRESSED_BODY_BYTES = MAX_BODY_BYTES
MAX_TENSOR_VALUES = 16 * 1024 * 1024  # values of one (densified) tensor of a protobuf body
INLINE_RESULT_BYTES = 4 * 1024 * 1024

# What client/config and client/dynamic_config tell 0.38 clients (the protocol's own defaults,
# except that chunks of forward_backward must fit MAX_BODY_BYTES).
SAMPLE_DISPATCH_BYTES = 10 * 1024 * 1024
INFLIGHT_RESPONSE_BYTES = 50 * 1024 * 1024
FWDBWD_MAX_CHUNK_LEN = 1024
FWDBWD_MAX_CHUNK_BYTES = 5_000_000
FWDBWD_DISPATCH_BYTES = 50_000_000
BILLING_MAX_PAUSE_SECONDS = 3600
SAMPLE_MAX_CONCURRENT_REQUESTS = 2000
DYNAMIC_CONFIG_REFRESH_SECONDS = 300
SAMPLE_CANCEL_BATCH = 64

# JWT auth (when enabled and the server has an API key): tokens live this long, signed with a
# secret kept in this file of the data directory (created on first use, mode 0600).
JWT_LIFETIME_SECONDS = 3600
JWT_SECRET_FILE = "jwt-secret"

# Sampling: a request may ask for at most MAX_NUM_SAMPLES continuations, and
# num_samples x (prompt tokens + max_tokens) at most MAX_SAMPLE_TOKENS: that product is the
# number of token positions its KV cache holds (8 KiB each on tinker-local/small, 1 KiB on tiny),
# so one request holds at most 256 MiB.
MAX_NUM_SAMPLES = 128
MAX_SAMPLE_TOKENS = 32_768

# The engine (the defaults of EngineConfig's fields that serve() also takes one by one).
LONG_POLL_SECONDS = 20.0  # one retrieve_future waits this long before answering 408
BATCH_POLL_SECONDS = 30.0  # one retrieve_futures waits this long for a completion
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
    batch_poll_seconds: float = BATCH_POLL_SECONDS
    #: Results larger than this are first announced metadata-only (when the poll allows it).
    inline_result_bytes: int = INLINE_RESULT_BYTES
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
