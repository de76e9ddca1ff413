"""Samplers: sampling sessions on base models, checkpoints or in-memory snapshots, and asample.

Samples run on a small thread pool (numpy releases the GIL). Built samplers (merged weights)
live in a small LRU cache; ephemeral samplers keep only their adapter snapshot. Too many queued
samples answer 429: back-pressure, which clients answer by backing off and resubmitting.
"""

from __future__ import annotations

import collections
import hashlib
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs

from tinker import types
from tinker.local.compute.backend import DEFAULT_MAX_TOKENS, Sampler
from tinker.local.server import responses, settings
from tinker.local.server.context import EngineContext
from tinker.local.server.http_errors import BadRequest, Gone, NotFound, TooManyRequests
from tinker.local.server.paths import parse_tinker_path
from tinker.local.server.store import CheckpointRow, SamplerRow, now


@attrs.frozen
class SampleSpec:
    """Everything one asample call asks for, with the protocol's defaults applied."""

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


class Samplers:
    """Sampling sessions and the sample worker pool (thread-safe)."""

    def __init__(self, context: EngineContext) -> None:
        self._ctx = context
        self._store = context.store
        self._backend = context.backend
        self._lock = threading.Lock()
        self._snapshots: collections.OrderedDict[str, Any] = collections.OrderedDict()
        self._built: collections.OrderedDict[str, Sampler] = collections.OrderedDict()
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
        if self._store.get_sampler(sampler_id) is not None:
            raise BadRequest(f"Sampler id {sampler_id!r} is already in use.")
        self._store.add_sampler(
            SamplerRow(sampler_id, session_id, base_model, None, "ephemeral", now())
        )
        with self._lock:
            self._snapshots[sampler_id] = weights
            while len(self._snapshots) > self._ctx.config.max_ephemeral_samplers:
                self._snapshots.popitem(last=False)

    def forget_sessions(self, session_ids: list[str]) -> None:
        """Drop the in-memory weights of ended sessions' ephemeral samplers."""
        ended = set(session_ids)
        with self._lock:
            for sampler_id in [s for s in self._snapshots if _session_of(s) in ended]:
                del self._snapshots[sampler_id]
                self._built.pop(sampler_id, None)

    def get(self, sampler_id: str) -> SamplerRow:
        """The sampler's record; NotFound if unknown."""
        row = self._store.get_sampler(sampler_id)
        if row is None:
            raise NotFound(f"Sampler {sampler_id!r} not found.")
        return row

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
        future. The key is part of it because SDKs take a new seq_id for every sampling attempt
        anyway, while copies of one sampling client in several processes (pickled) count their
        seq_ids from 0 each: same seq_id, different requests.

        Answers 429 (TooManyRequests) when too many samples are queued: deliberate
        back-pressure that the client answers by backing off and resubmitting.
        """
        if not spec.prompt:
            raise BadRequest("The prompt must contain at least one token.")
        _check_size(spec)
        if sampler_id is not None:
            row = self.get(sampler_id)
            if row.source == "checkpoint" and row.model_path is not None:
                self._checkpoint_row(row.model_path)
            self._ctx.sessions.touch(row.session_id)
            key = sampler_id
            suffix = str(seq_id) if seq_id is not None else uuid.uuid4().hex
            if idempotency_key:
                suffix += ":" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:12]
            request_id = f"{sampler_id}:{suffix}"
        else:
            resolved_base, _ = self._source(base_model, model_path)
            row = SamplerRow("", "", resolved_base, model_path, "direct", now())
            key = f"direct:{model_path or resolved_base}"
            request_id = f"sample:{uuid.uuid4().hex}"
        with self._lock:
            if self._pending >= self._ctx.config.max_pending_samples:
                raise TooManyRequests(f"{self._pending} samples are queued; back off and resubmit.")
            if not self._ctx.futures.add(request_id):
                return responses.future(request_id, None)  # a retried submit
            self._pending += 1

        def job() -> types.SampleResponse:
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
            )
            return responses.sample_output(result)

        def execute() -> None:
            try:
                self._ctx.run_job(request_id, job)
            finally:
                with self._lock:
                    self._pending -= 1

        self._pool.submit(execute)
        return responses.future(request_id, None)

    def _source(self, base_model: str | None, model_path: str | None) -> tuple[str, str]:
        if model_path is None:
            if base_model is None:
                raise BadRequest("Give base_model or model_path to sample from.")
            self._ctx.known_model(base_model)
            return base_model, "base"
        ref = parse_tinker_path(model_path)
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
        """A built sampler from the LRU cache, or built now from a snapshot, checkpoint or base.

        A checkpoint's sampler is cached per saved version: after the checkpoint is saved
        again the next sample loads the new weights; after it is deleted, samples fail.
        """
        if row.source != "ephemeral" and row.model_path is not None:
            key = f"{key}@{self._checkpoint_row(row.model_path).directory}"
        with self._lock:
            cached = self._built.get(key)
            if cached is not None:
                self._built.move_to_end(key)
                return cached
            snapshot = self._snapshots.get(key)
        if snapshot is not None:
            sampler = self._backend.snapshot_sampler(snapshot)
        elif row.source == "ephemeral":
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
