"""Stability information for `stable_reinforce`: what samplers record per sequence, the store
that keeps it, and how a training datum's provenance spans find it again.

A sampler asked to `record_stability_info` returns, with every sequence, a `SequenceRecord`:
the request's prompt, the sampled tokens and, per sampled token, its log-probability under the
distribution it was actually drawn from (the behaviour policy: tempered by the request's
temperature and renormalised over the top_k / top_p support; 0.0 under greedy decoding, which
draws with probability 1). These are computed in float64 from the sampler's own logits, so
they are exact where the float32 `logprobs` a client sends back are rounded, and correct where
those (tempered but not renormalised) differ from the true sampling probability.

The server keeps one `StabilityStore` per session and puts each record under the sequence's
`sequence_id`. Records expire as the service documents: they can be trained on for one day
after sampling, and each training request that uses one restarts its day. The store is also
bounded in count (least recently used records go first) so that memory stays bounded.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from tinker.local.compute.errors import UserInputError

Array = npt.NDArray[Any]

#: Seconds a record stays usable after its last use (one day, as the service documents).
RECORD_TTL_SECONDS = 86_400.0
#: Records kept per store before the least recently used is dropped.
MAX_RECORDS = 100_000
PROMPT = "prompt"
SAMPLED = "sampled"


@attrs.frozen
class ProvenanceSpan:
    """A run of datum positions copied from a recorded sequence: `kind` "prompt" (positions
    offset..offset+length of that request's prompt) or "sampled" (of its sampled tokens)."""

    kind: str
    sequence_id: str
    offset: int
    length: int

    def __attrs_post_init__(self) -> None:
        if self.kind not in (PROMPT, SAMPLED):
            raise UserInputError(f"provenance span kind must be prompt or sampled: {self.kind!r}")
        if not self.sequence_id:
            raise UserInputError("provenance span sequence_id must not be empty")
        if self.offset < 0 or self.length < 0:
            raise UserInputError(
                f"provenance span offset and length must be >= 0 (got {self.offset}, {self.length})"
            )


@attrs.frozen
class SequenceRecord:
    """What a sampler records for one sequence (module docstring)."""

    prompt: Array
    tokens: Array
    behaviour_logprobs: Array
    temperature: float
    top_k: int
    top_p: float


class StabilityStore:
    """Sequence records by sequence_id, expiring RECORD_TTL_SECONDS after their last use;
    thread-safe."""

    def __init__(
        self,
        *,
        ttl_seconds: float = RECORD_TTL_SECONDS,
        max_records: int = MAX_RECORDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_seconds
        self._max = max_records
        self._clock = clock
        self._records: OrderedDict[str, tuple[float, SequenceRecord]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            self._purge(self._clock())
            return len(self._records)

    def put(self, sequence_id: str, record: SequenceRecord) -> None:
        """Keep `record` under `sequence_id` (replacing an older one of that id)."""
        with self._lock:
            now = self._clock()
            self._purge(now)
            self._records[sequence_id] = (now, record)
            self._records.move_to_end(sequence_id)
            while len(self._records) > self._max:
                self._records.popitem(last=False)

    def use(self, sequence_id: str) -> SequenceRecord:
        """The record of `sequence_id`, restarting its expiry; UserInputError if unknown."""
        with self._lock:
            now = self._clock()
            self._purge(now)
            entry = self._records.get(sequence_id)
            if entry is None:
                raise UserInputError(
                    f"sequence_id {sequence_id!r} has no stability record in this session "
                    "(sample with record_stability_info=True in the same session; records "
                    "expire one day after their last use)"
                )
            self._records[sequence_id] = (now, entry[1])
            self._records.move_to_end(sequence_id)
            return entry[1]

    def _purge(self, now: float) -> None:
        """Drop expired records (the oldest-used come first, so stop at the first live one)."""
        while self._records:
            sequence_id, (used, _record) = next(iter(self._records.items()))
            if now - used < self._ttl:
                return
            del self._records[sequence_id]


@attrs.frozen
class Behaviour:
    """Per datum position: the recorded behaviour log-prob, and whether it was sampled."""

    logprobs: Array
    sampled: Array


def resolve_behaviour(
    index: int, targets: Array, spans: Sequence[ProvenanceSpan] | None, store: StabilityStore
) -> Behaviour:
    """Behaviour log-probs of a datum's target tokens from its loss_fn_input spans.

    The spans must tile the targets; each span's tokens must equal the recorded ones. Sampled
    positions get their recorded log-prob; prompt positions are not actions of the policy and
    get sampled = False.
    """
    where = f"datum {index}"
    if spans is None:
        raise UserInputError(
            f"{where}: stable_reinforce needs provenance spans naming the sampled sequences "
            "(Datum.with_provenance)"
        )
    total = sum(span.length for span in spans)
    if total != len(targets):
        raise UserInputError(
            f"{where}: loss_fn_input spans cover {total} positions, target_tokens has "
            f"{len(targets)}"
        )
    logprobs = np.zeros(len(targets), dtype=np.float64)
    sampled = np.zeros(len(targets), dtype=bool)
    position = 0
    for span in spans:
        record = store.use(span.sequence_id)
        source = record.tokens if span.kind == SAMPLED else record.prompt
        stop = span.offset + span.length
        if stop > len(source):
            raise UserInputError(
                f"{where}: span [{span.offset}, {stop}) lies outside the {len(source)} "
                f"{span.kind} tokens of sequence {span.sequence_id!r}"
            )
        chunk = slice(position, position + span.length)
        if not np.array_equal(targets[chunk], source[span.offset : stop]):
            raise UserInputError(
                f"{where}: target_tokens[{position}:{position + span.length}] differ from the "
                f"{span.kind} tokens [{span.offset}:{stop}] of sequence {span.sequence_id!r}"
            )
        if span.kind == SAMPLED:
            logprobs[chunk] = record.behaviour_logprobs[span.offset : stop]
            sampled[chunk] = True
        position += span.length
    return Behaviour(logprobs, sampled)
