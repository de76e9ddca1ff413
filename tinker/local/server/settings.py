"""Timing and capacity settings of the local server's engine."""

from __future__ import annotations

import os

import attrs


@attrs.frozen
class EngineConfig:
    """Timing and capacity knobs; the defaults suit interactive use, tests shrink them."""

    long_poll_seconds: float = 20.0
    seq_gap_seconds: float = 10.0
    result_grace_seconds: float = 600.0
    result_max_age_seconds: float = 3600.0
    session_idle_seconds: float | None = 3600.0
    sample_workers: int = attrs.field(factory=lambda: max(2, min(4, os.cpu_count() or 2)))
    max_pending_samples: int = 4096
    max_cached_samplers: int = 8  # built samplers (merged weights: ~14 MB each for "small")
    max_ephemeral_samplers: int = 256  # adapter snapshots of ephemeral samplers (small)
    maintenance_seconds: float = 1.0
    archive_url_seconds: float = 900.0
    max_lora_rank: int = 128
