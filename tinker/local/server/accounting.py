"""What the server records for the 0.38 billing and audit endpoints, in the store.

Usage: tokens trained (forward and forward_backward), prompt tokens prefilled (a prefix-cache
hit and the prefill of every sample after the first count as cached, as the service bills
them), tokens sampled and checkpoints saved, per session, base model and UTC hour. Nothing is
priced: the local server's costs are zero. Audit: checkpoint events (created, deleted,
published, unpublished, TTL set, copied) and project moves, with their details.
"""

from __future__ import annotations

import math
from typing import Any

from tinker.local.server.store import AuditRow, Store, UsageRow, now

HOUR = 3600.0
CHECKPOINTS, PROJECTS = "checkpoints", "projects"


def hour_of(timestamp: float) -> float:
    """The start of the UTC hour holding `timestamp`."""
    return math.floor(timestamp / HOUR) * HOUR


class Accounting:
    """Records usage and audit events as they happen (thread-safe: the store is)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def trained(self, session_id: str, base_model: str, tokens: int) -> None:
        """A forward or forward_backward over `tokens` input tokens."""
        self._use(session_id, base_model, "training", False, tokens)

    def sampled(
        self,
        session_id: str,
        base_model: str,
        *,
        prompt_tokens: int,
        num_samples: int,
        cache_hits: int,
        sampled_tokens: int,
    ) -> None:
        """A sample request: its prefill (once per sample) and the tokens it generated."""
        cached = cache_hits + prompt_tokens * (num_samples - 1)
        self._use(session_id, base_model, "sampling_prefill", True, cached)
        self._use(session_id, base_model, "sampling_prefill", False, prompt_tokens - cache_hits)
        self._use(session_id, base_model, "sampling_sample", False, sampled_tokens)

    def checkpoint_saved(self, session_id: str, base_model: str, tinker_path: str) -> None:
        """A checkpoint was written (counted, and logged)."""
        self._use(session_id, base_model, "checkpoint", False, 1)
        self.audit(CHECKPOINTS, "checkpoint_created", tinker_path=tinker_path)

    def audit(self, category: str, event: str, **details: Any) -> None:
        """Log an event of `category` (checkpoints, projects)."""
        self._store.add_audit(AuditRow(now(), category, event, details))

    def _use(self, session_id: str, base_model: str, kind: str, cached: bool, amount: int) -> None:
        if amount > 0 and session_id:
            row = UsageRow(hour_of(now()), session_id, base_model, kind, cached, amount)
            self._store.add_usage(row)
