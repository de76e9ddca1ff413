"""Samplers: sampling sessions on base models, checkpoints, in-memory snapshots or a training
run's in-flight weights, and asample.

Samples run on a small thread pool (numpy releases the GIL). Built samplers (merged weights)
live in a small LRU cache; ephemeral samplers keep only their adapter snapshot. Too many queued
samples answer 429: back-pressure, which clients answer by backing off and resubmitting (0.38
clients with the same seq_id). Every sample gets one sequence id per requested sample; with
record_stability_info the sampler's records go to the session's stability store under those
ids (what stable_reinforce training reads). A queued sample can be cancelled (cancel_future).
Copies of a sampling client (pickled, or from a handle) number their seq_ids from
1_000_000_000 x their clone id; join_sampling_session hands out those clone ids.
"""

from __future__ import annotations

import collections
import hashlib
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs
import numpy as np

from tinker import types
from tinker.local.compute.backend import DEFAULT_MAX_TOKENS, Sampler, StabilityRecords
from tinker.local.server import responses, settings
from tinker.local.server.context import EngineContext
from tinker.local.server.futures import Target
from tinker.local.server.http_errors import (
    BadRequest,
    Gone,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
)
from tinker.local.server.outcomes import JobValue
from tinker.local.server.paths import loadable_path, parse_tinker_path
from tinker.local.server.results import SampleResult
from tinker.local.server.store import CheckpointRow, SamplerRow, now

#: seq_ids of a copy of a sampling client start at this times its clone id.
CLONE_STRIDE = 1_000_000_000


@attrs.frozen
class SampleSpec:
    """Everything one asample call asks for, with the protocol's defaults applied;
    `target_prompt_logprobs` is the backend's target table."""

    prompt: list[int]
    num_samples: int = 1
    max_tokens: int | None = None
    temperature: float = 1.0
    top_k: int = -1
    top_p: float = 1.0
    stop: str | list[str] | list[int] | None = None
    seed: int | None = None
    prompt_logprobs: bool = False
    topk_prompt_logprobs: int = 0
    topk_sample_logprobs: int = 0
    target_prompt_logprobs: Any = None
    prompt_alt_tokens_k: int = 0
    prompt_logprobs_last_n: int | None = None
    record_stability_info: bool = False


class Samplers:
    """Sampling sessions, their sessions' stability stores and the sample worker pool."""

    def __init__(self, context: EngineContext) -> None:
        self._ctx = context
        self._store = context.store
        self._backend = context.backend
        self._lock = threading.Lock()
        self._snapshots: collections.OrderedDict[str, Any] = collections.OrderedDict()
        self._inflight: dict[str, Any] = {}  # sampler id -> a training run's in-flight weights
        self._built: collections.OrderedDict[str, Sampler] = collections.OrderedDict()
        self._stability: dict[str, StabilityRecords] = {}  # session id -> records
        self._pending = 0
        self._pool = ThreadPoolExecutor(
            max_workers=context.config.sample_workers, thread_name_prefix="tinker-local-sample"
        )

    def close(self) -> None:
        """Stop taking samples; queued ones are dropped."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def create_session(
        self, session_id: str, seq_id: int, base_model: str | None, model_path: str | None
    ) -> str:
        """Register a sampler on a base model or a checkpoint; returns `<session>:sample:<n>`."""
        self._ctx.sessions.require(session_id)
        sampler_id = f"{session_id}:sample:{seq_id}"
        if self._store.get_sampler(sampler_id) is not None:
            return sampler_id  # a retried create_sampling_session
        resolved_base, source = self._source(base_model, model_path)
        self._store.add_sampler(
            SamplerRow(sampler_id, session_id, resolved_base, model_path, source, now())
        )
        return sampler_id

    def add_snapshot(self, sampler_id: str, session_id: str, base_model: str, weights: Any) -> None:
        """Register an ephemeral sampler on in-memory weights (save_weights_for_sampler)."""
        self._add_ephemeral(sampler_id, session_id, base_model, "ephemeral")
        with self._lock:
            self._snapshots[sampler_id] = weights
            while len(self._snapshots) > self._ctx.config.max_ephemeral_samplers:
                self._snapshots.popitem(last=False)

    def add_inflight(self, sampler_id: str, session_id: str, base_model: str, target: Any) -> None:
        """Register a sampler that reads a training run's in-flight weights at each request."""
        self._add_ephemeral(sampler_id, session_id, base_model, "inflight")
        with self._lock:
            self._inflight[sampler_id] = target

    def _add_ephemeral(
        self, sampler_id: str, session_id: str, base_model: str, source: str
    ) -> None:
        if self._store.get_sampler(sampler_id) is not None:
            raise BadRequest(f"Sampler id {sampler_id!r} is already in use.")
        self._store.add_sampler(SamplerRow(sampler_id, session_id, base_model, None, source, now()))

    def forget_sessions(self, session_ids: list[str]) -> None:
        """Drop the in-memory weights, stability records and completion logs of ended
        sessions."""
        ended = set(session_ids)
        with self._lock:
            held = [*self._snapshots, *self._inflight]
            for sampler_id in [s for s in held if _session_of(s) in ended]:
                self._snapshots.pop(sampler_id, None)
                self._inflight.pop(sampler_id, None)
                self._built.pop(sampler_id, None)
            for session_id in ended:
                self._stability.pop(session_id, None)
        samplers = [s for sid in ended for s in self._store.samplers_of_session(sid)]
        self._ctx.futures.forget_targets(samplers)

    def stability(self, session_id: str) -> StabilityRecords:
        """The session's stability store (created on first use)."""
        with self._lock:
            records = self._stability.get(session_id)
            if records is None:
                records = self._stability[session_id] = self._backend.new_stability_store()
            return records

    def get(self, sampler_id: str) -> SamplerRow:
        """The sampler's record; NotFound if unknown."""
        row = self._store.get_sampler(sampler_id)
        if row is None:
            raise NotFound(f"Sampler {sampler_id!r} not found.")
        return row

    def join(self, sampler_id: str) -> int:
        """A new clone id for a copy of a sampling client (1, 2, ...; the original is 0)."""
        row = self.get(sampler_id)
        self._ctx.sessions.require(row.session_id)
        clone = self._store.join_sampler(sampler_id)
        if clone is None:
            raise NotFound(f"Sampler {sampler_id!r} not found.")
        return clone

    def sample(
        self,
        sampler_id: str | None,
        seq_id: int | None,
        spec: SampleSpec,
        *,
        base_model: str | None = None,
        model_path: str | None = None,
        idempotency_key: str | None = None,
    ) -> types.UntypedAPIFuture:
        """Queue a sample on the worker pool; resolves to SampleResponse.

        A repeat of (sampler, seq_id, idempotency key) is a transport retry and gets the same
        future. The key is part of it because 0.5.1 clients take a new seq_id for every
        sampling attempt anyway, while their copies of one sampling client (pickled) count
        their seq_ids from 0 each: same seq_id, different requests.

        Answers 429 (TooManyRequests) when too many samples are queued: deliberate
        back-pressure that the client answers by backing off and resubmitting.
        """
        if not spec.prompt:
            raise BadRequest("The prompt must contain at least one token.")
        _check_size(spec)
        target = None
        if sampler_id is not None:
            row = self.get(sampler_id)
            if row.source == "checkpoint" and row.model_path is not None:
                self._checkpoint_row(row.model_path)
            self._ctx.sessions.require(row.session_id)
            key = sampler_id
            suffix = str(seq_id) if seq_id is not None else uuid.uuid4().hex
            if idempotency_key:
                suffix += ":" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:12]
            request_id = f"{sampler_id}:{suffix}"
            target = Target(sampler_id, (seq_id or 0) // CLONE_STRIDE)
        else:
            resolved_base, _ = self._source(base_model, model_path)
            row = SamplerRow("", "", resolved_base, model_path, "direct", now())
            key = f"direct:{model_path or resolved_base}"
            request_id = f"sample:{uuid.uuid4().hex}"
        self._check_options(row.base_model, spec)
        sequence_ids = [f"{request_id}/{index}" for index in range(spec.num_samples)]
        with self._lock:
            if self._pending >= self._ctx.config.max_pending_samples:
                raise TooManyRequests(f"{self._pending} samples are queued; back off and resubmit.")
            if not self._ctx.futures.add(request_id, target=target):
                return responses.future(request_id, None, sequence_ids)  # a retried submit
            self._pending += 1
        records = None
        if spec.record_stability_info and row.session_id:
            records = self.stability(row.session_id)

        def job() -> JobValue:
            result = self._sampler_for(key, row).sample(
                spec.prompt,
                num_samples=spec.num_samples,
                max_tokens=spec.max_tokens,
                temperature=spec.temperature,
                top_k=spec.top_k,
                top_p=spec.top_p,
                stop=spec.stop,
                seed=spec.seed,
                prompt_logprobs=spec.prompt_logprobs,
                topk_prompt_logprobs=spec.topk_prompt_logprobs,
                topk_sample_logprobs=spec.topk_sample_logprobs,
                target_prompt_logprobs=spec.target_prompt_logprobs,
                prompt_alt_tokens_k=spec.prompt_alt_tokens_k,
                prompt_logprobs_last_n=spec.prompt_logprobs_last_n,
                record_stability_info=spec.record_stability_info,
            )
            if records is not None:
                for sequence_id, sequence in zip(sequence_ids, result.sequences, strict=True):
                    records.put(sequence_id, sequence.stability)
            self._ctx.accounting.sampled(
                row.session_id,
                row.base_model,
                prompt_tokens=len(spec.prompt),
                num_samples=spec.num_samples,
                cache_hits=result.prompt_cache_hit_tokens,
                sampled_tokens=sum(len(sequence.tokens) for sequence in result.sequences),
            )
            return SampleResult(result)

        def execute() -> None:
            try:
                self._ctx.run_job(request_id, job)
            finally:
                self._done()

        try:
            queued = self._pool.submit(execute)
        except RuntimeError:  # the pool shut down between the checks above and now
            self._done()
            raise ServiceUnavailable("The server is shutting down.") from None

        def cancel() -> bool:
            if not queued.cancel():
                return False  # already running: it finishes
            self._done()
            self._ctx.fail(request_id, "The sample was cancelled by the client.", "user")
            return True

        self._ctx.futures.set_cancel(request_id, cancel)
        return responses.future(request_id, None, sequence_ids)

    def _done(self) -> None:
        with self._lock:
            self._pending -= 1

    def _check_options(self, base_model: str, spec: SampleSpec) -> None:
        """The request's sampling options, checked before anything is queued (400)."""
        self._ctx.check(
            lambda: self._backend.check_sample(
                base_model,
                len(spec.prompt),
                prompt_logprobs=spec.prompt_logprobs,
                topk_prompt_logprobs=spec.topk_prompt_logprobs,
                topk_sample_logprobs=spec.topk_sample_logprobs,
                target_prompt_logprobs=spec.target_prompt_logprobs,
                prompt_alt_tokens_k=spec.prompt_alt_tokens_k,
                prompt_logprobs_last_n=spec.prompt_logprobs_last_n,
            )
        )

    def target_table(self, tokens: types.TensorData) -> Any:
        """A request's target_prompt_logprobs (checked 2-D int64 by its type) as the backend's
        table: dense, or CSR when the tensor is sparse."""
        rows, width = tokens.shape if tokens.shape is not None else tokens.to_numpy().shape
        crow, col = tokens.sparse_crow_indices, tokens.sparse_col_indices
        if crow is None or col is None:
            dense = tokens.to_numpy()
            return self._ctx.check(lambda: self._backend.target_table((rows, width), dense))
        crow_array, col_array = np.asarray(crow, np.int64), np.asarray(col, np.int64)
        return self._ctx.check(
            lambda: self._backend.target_table((rows, width), tokens.values, crow_array, col_array)
        )

    def _source(self, base_model: str | None, model_path: str | None) -> tuple[str, str]:
        if model_path is None:
            if base_model is None:
                raise BadRequest("Give base_model or model_path to sample from.")
            self._ctx.known_model(base_model)
            return base_model, "base"
        ref = loadable_path(model_path)
        if self._store.get_checkpoint(ref) is None:
            raise NotFound(f"Checkpoint {model_path!r} not found.")
        run = self._store.get_run(ref.run_id)
        if run is None:
            raise NotFound(f"Training run {ref.run_id!r} of {model_path!r} not found.")
        if base_model is not None and base_model != run.base_model:
            raise BadRequest(
                f"{model_path!r} was trained from {run.base_model!r}, not {base_model!r}."
            )
        return run.base_model, "checkpoint"

    def _sampler_for(self, key: str, row: SamplerRow) -> Sampler:
        """A built sampler from the LRU cache, or built now from a snapshot, in-flight
        weights, checkpoint or base.

        A checkpoint's sampler is cached per saved version: after the checkpoint is saved
        again the next sample loads the new weights; after it is deleted, samples fail.
        """
        if row.source not in ("ephemeral", "inflight") and row.model_path is not None:
            key = f"{key}@{self._checkpoint_row(row.model_path).directory}"
        with self._lock:
            cached = self._built.get(key)
            if cached is not None:
                self._built.move_to_end(key)
                return cached
            snapshot = self._snapshots.get(key)
            inflight = self._inflight.get(key)
        if snapshot is not None:
            sampler = self._backend.snapshot_sampler(snapshot)
        elif inflight is not None:
            sampler = self._backend.inflight_sampler(inflight)
        elif row.source in ("ephemeral", "inflight"):
            raise Gone(
                f"Sampler {key!r} held in-memory weights that are no longer kept (its session "
                "ended, the server restarted or newer samplers displaced it); save weights for "
                "the sampler again."
            )
        elif row.model_path is None:
            sampler = self._backend.base_sampler(row.base_model)
        else:
            ref = parse_tinker_path(row.model_path)
            data = self._store.read_checkpoint(ref, with_optimizer=False)
            sampler = self._backend.checkpoint_sampler(
                row.base_model, data.adapter, data.adapter_config
            )
        with self._lock:
            self._built[key] = sampler
            while len(self._built) > self._ctx.config.max_cached_samplers:
                self._built.popitem(last=False)
        return sampler

    def _checkpoint_row(self, model_path: str) -> CheckpointRow:
        """The current row of a sampler's checkpoint; NotFound once it was deleted."""
        row = self._store.get_checkpoint(parse_tinker_path(model_path))
        if row is None:
            raise NotFound(
                f"Checkpoint {model_path!r} was deleted (or has expired), so samplers on it "
                "cannot sample any more; create a sampler on another checkpoint."
            )
        return row


def _check_size(spec: SampleSpec) -> None:
    """BadRequest when the request would hold more than MAX_SAMPLE_TOKENS in its KV cache."""
    max_tokens = DEFAULT_MAX_TOKENS if spec.max_tokens is None else spec.max_tokens
    held = spec.num_samples * (len(spec.prompt) + max_tokens)
    if held > settings.MAX_SAMPLE_TOKENS:
        raise BadRequest(
            f"num_samples x (prompt tokens + max_tokens) = {spec.num_samples} x "
            f"({len(spec.prompt)} + {max_tokens}) = {held} tokens is over the limit of "
            f"{settings.MAX_SAMPLE_TOKENS} per sample request; ask for fewer samples or tokens "
            "(or send several requests)."
        )


def _session_of(sampler_id: str) -> str:
    return sampler_id.split(":sample:", 1)[0]
