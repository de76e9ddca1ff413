"""The local server's engine: sessions, training runs, samplers and server-side futures.

Training operations of one run execute in seq_id order on that run's queue (ordering.py);
samples run on a small thread pool. Every submit returns a deterministic request_id
(`<model_id>:<seq_id>`, `<sampler_id>:<seq_id>`), so a retried submit gets the same future
instead of running twice. Results are fetched with a bounded long-poll (results.py).
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs
import numpy as np

from tinker import types
from tinker.local import payloads
from tinker.local.backend import Backend, ModelInfo, Sampler, Trainer
from tinker.local.ordering import OrderedQueue
from tinker.local.paths import CheckpointRef, parse_tinker_path, validate_name
from tinker.local.results import JSONDict, ResultStore
from tinker.local.status import BadRequest, Gone, HTTPError, NotFound, TooManyRequests
from tinker.local.store import RunRow, SamplerRow, SessionRow, Store, now

logger = logging.getLogger(__name__)


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


@attrs.frozen
class DatumInput:
    """One training example: input tokens (int64, N) and its named loss inputs."""

    tokens: np.ndarray
    inputs: Mapping[str, np.ndarray]


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


@attrs.frozen
class Submitted:
    """The UntypedAPIFuture answer of a submit."""

    request_id: str
    model_id: str | None = None


@attrs.define
class _Run:
    row: RunRow
    queue: OrderedQueue
    trainer: Trainer | None = None


class Engine:
    """All server state except HTTP: thread-safe, shared by the request handler threads."""

    def __init__(self, store: Store, backend: Backend, config: EngineConfig | None = None) -> None:
        self.store = store
        self.backend = backend
        self.config = config or EngineConfig()
        self.results = ResultStore(
            delivered_grace_seconds=self.config.result_grace_seconds,
            undelivered_seconds=self.config.result_max_age_seconds,
        )
        self._lock = threading.RLock()
        self._session_seen: dict[str, float] = {}
        self._session_saved: dict[str, float] = {}
        self._runs: dict[str, _Run] = {}
        self._ephemeral: collections.OrderedDict[str, Any] = collections.OrderedDict()
        self._samplers: collections.OrderedDict[str, Sampler] = collections.OrderedDict()
        self._archives: dict[str, tuple[CheckpointRef, float]] = {}
        self._pending_samples = 0
        self._cycle = itertools.count(1)
        self._pool = ThreadPoolExecutor(
            max_workers=self.config.sample_workers, thread_name_prefix="tinker-local-sample"
        )
        self._stop = threading.Event()
        self._maintenance = threading.Thread(
            target=self._maintain, name="tinker-local-maintenance", daemon=True
        )
        self._maintenance.start()

    def close(self) -> None:
        """Stop background work: queues, sample pool, maintenance, waiting polls."""
        self._stop.set()
        with self._lock:
            runs = list(self._runs.values())
            self._runs.clear()
        for run in runs:
            run.queue.close()
        self.results.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._maintenance.join(timeout=5.0)

    # models

    def model_names(self) -> list[str]:
        """Names of the base models this server trains and samples."""
        return self.backend.model_names()

    def model_info(self, name: str) -> ModelInfo:
        """Catalogue entry, or BadRequest naming the known models."""
        try:
            return self.backend.model_info(name)
        except self.backend.user_errors as exc:
            raise BadRequest(str(exc)) from exc

    # sessions

    def create_session(
        self, tags: Sequence[str], user_metadata: Mapping[str, Any] | None, sdk_version: str | None
    ) -> str:
        """Register a new session and return its id (a UUID)."""
        session_id = str(uuid.uuid4())
        when = now()
        self.store.add_session(
            SessionRow(
                session_id,
                when,
                when,
                list(tags),
                None if user_metadata is None else dict(user_metadata),
                sdk_version,
                None,
            )
        )
        with self._lock:
            self._session_seen[session_id] = time.monotonic()
            self._session_saved[session_id] = when
        logger.debug("created session %s", session_id)
        return session_id

    def heartbeat(self, session_id: str) -> None:
        """Record that the session's client is alive."""
        self._require_session(session_id)

    def _require_session(self, session_id: str) -> None:
        """Mark the session active; NotFound if unknown or expired."""
        with self._lock:
            known = session_id in self._session_seen
        if not known:
            row = self.store.get_session(session_id)
            if row is None:
                raise NotFound(f"Session {session_id!r} not found.")
            if row.expired_at is not None:
                raise NotFound(f"Session {session_id!r} has expired; create a new session.")
        self._touch_session(session_id)

    def _touch_session(self, session_id: str) -> None:
        wall = now()
        with self._lock:
            self._session_seen[session_id] = time.monotonic()
            persist = wall - self._session_saved.get(session_id, 0.0) > 5.0
            if persist:
                self._session_saved[session_id] = wall
        if persist:
            self.store.touch_session(session_id, wall)

    def _expire_idle_sessions(self) -> None:
        limit = self.config.session_idle_seconds
        if limit is None:
            return
        cutoff = time.monotonic() - limit
        with self._lock:
            idle = [sid for sid, seen in self._session_seen.items() if seen < cutoff]
            for sid in idle:
                del self._session_seen[sid]
                self._session_saved.pop(sid, None)
            runs = [r for r in self._runs.values() if r.row.session_id in idle]
            for run in runs:
                del self._runs[run.row.run_id]
            for sampler_id in [s for s in self._ephemeral if _session_of(s) in idle]:
                del self._ephemeral[sampler_id]
        for run in runs:
            run.queue.close()
        for sid in idle:
            self.store.expire_session(sid, now())
            logger.info("session %s expired after %.0f s without activity", sid, limit)

    # training runs

    def create_model(
        self,
        session_id: str,
        model_seq_id: int,
        base_model: str,
        lora: types.LoraConfig,
        user_metadata: Mapping[str, Any] | None,
    ) -> Submitted:
        """Start creating a training run; the future resolves to {"model_id": ...}."""
        self._require_session(session_id)
        self.model_info(base_model)
        if not 1 <= lora.rank <= self.config.max_lora_rank:
            raise BadRequest(
                f"lora_config.rank must be between 1 and {self.config.max_lora_rank}, "
                f"got {lora.rank}."
            )
        if not (lora.train_mlp or lora.train_attn or lora.train_unembed):
            raise BadRequest("At least one of train_mlp, train_attn, train_unembed must be true.")
        run_id = f"{session_id}:train:{model_seq_id}"
        request_id = f"{run_id}:0"
        if not self.results.add(request_id):
            return Submitted(request_id, run_id)
        stamp = now()
        row = RunRow(
            run_id,
            session_id,
            model_seq_id,
            base_model,
            lora.rank,
            lora.seed,
            lora.train_mlp,
            lora.train_attn,
            lora.train_unembed,
            None if user_metadata is None else dict(user_metadata),
            stamp,
            stamp,
        )
        run = _Run(row, OrderedQueue(run_id, gap_seconds=self.config.seq_gap_seconds))
        with self._lock:
            self._runs[run_id] = run

        def build() -> JSONDict:
            try:
                run.trainer = self.backend.new_trainer(
                    base_model,
                    rank=lora.rank,
                    seed=lora.seed,
                    train_mlp=lora.train_mlp,
                    train_attn=lora.train_attn,
                    train_unembed=lora.train_unembed,
                )
                self.store.add_run(row)
            except BaseException:
                with self._lock:
                    self._runs.pop(run_id, None)
                run.queue.close()
                raise
            logger.debug("created training run %s (%s, rank %d)", run_id, base_model, lora.rank)
            return {"model_id": run_id}

        run.queue.submit_unordered(lambda: self._execute(request_id, build))
        return Submitted(request_id, run_id)

    def get_info(self, model_id: str) -> JSONDict:
        """GetInfoResponse of a training run (also for runs of earlier server processes)."""
        row = self._run_row(model_id)
        info = self.model_info(row.base_model)
        return {
            "model_id": model_id,
            "model_data": {
                "arch": info.arch,
                "model_name": row.base_model,
                "tokenizer_id": info.tokenizer_id,
            },
            "is_lora": True,
            "lora_rank": row.lora_rank,
            "model_name": row.base_model,
        }

    def forward(
        self,
        model_id: str,
        seq_id: int | None,
        data: Sequence[DatumInput],
        loss_fn: str,
        loss_fn_config: Mapping[str, float] | None,
        *,
        backward: bool,
    ) -> Submitted:
        """Queue forward (or forward_backward) on a batch; resolves to ForwardBackwardOutput."""
        if not data:
            raise BadRequest("forward input data must contain at least one datum.")

        def work(trainer: Trainer) -> JSONDict:
            datums = [self.backend.make_datum(d.tokens, d.inputs) for d in data]
            run_op = trainer.forward_backward if backward else trainer.forward
            result = run_op(datums, loss_fn, loss_fn_config)
            if len(result.outputs) != len(data):
                raise RuntimeError(
                    f"backend returned {len(result.outputs)} outputs for {len(data)} datums"
                )
            return payloads.forward_output(result, {"clock_cycle:unique": float(next(self._cycle))})

        return self._submit_training(model_id, seq_id, work)

    def optim_step(self, model_id: str, seq_id: int | None, adam: types.AdamParams) -> Submitted:
        """Queue an Adam step over the accumulated gradients; resolves to OptimStepResponse."""

        def work(trainer: Trainer) -> JSONDict:
            metrics = trainer.optim_step(
                learning_rate=adam.learning_rate,
                beta1=adam.beta1,
                beta2=adam.beta2,
                eps=adam.eps,
                weight_decay=adam.weight_decay,
                grad_clip_norm=adam.grad_clip_norm,
            )
            return {"metrics": {k: float(v) for k, v in (metrics or {}).items()}}

        return self._submit_training(model_id, seq_id, work)

    def save_weights(
        self, model_id: str, seq_id: int | None, name: str | None, ttl_seconds: float | None
    ) -> Submitted:
        """Queue a training checkpoint (weights + optimizer); resolves to {"path": tinker://...}."""
        ref = CheckpointRef(model_id, "weights", self._checkpoint_name(name, seq_id))
        expires = _expiry(ttl_seconds)

        def work(trainer: Trainer) -> JSONDict:
            self._save(trainer, ref, expires, with_optimizer=True)
            return {"path": ref.tinker_path}

        return self._submit_training(model_id, seq_id, work)

    def save_weights_for_sampler(
        self,
        model_id: str,
        seq_id: int | None,
        name: str | None,
        sampling_session_seq_id: int | None,
        ttl_seconds: float | None,
    ) -> Submitted:
        """Named form: a sampler checkpoint; ephemeral form: a sampling session on a snapshot."""
        if name is None and sampling_session_seq_id is None:
            raise BadRequest(
                "save_weights_for_sampler needs either a path (checkpoint name) or a "
                "sampling_session_seq_id."
            )
        if name is not None:
            ref = CheckpointRef(model_id, "sampler_weights", validate_name(name))
            expires = _expiry(ttl_seconds)

            def save(trainer: Trainer) -> JSONDict:
                self._save(trainer, ref, expires, with_optimizer=False)
                return {"path": ref.tinker_path, "sampling_session_id": None}

            return self._submit_training(model_id, seq_id, save)
        row = self._run_row(model_id)
        sampler_id = f"{row.session_id}:sample:{sampling_session_seq_id}"

        def snapshot(trainer: Trainer) -> JSONDict:
            if self.store.get_sampler(sampler_id) is not None:
                raise BadRequest(f"sampling_session_seq_id {sampling_session_seq_id} is in use.")
            weights = trainer.snapshot()
            self.store.add_sampler(
                SamplerRow(sampler_id, row.session_id, row.base_model, None, "ephemeral", now())
            )
            with self._lock:
                self._ephemeral[sampler_id] = weights
                while len(self._ephemeral) > self.config.max_ephemeral_samplers:
                    self._ephemeral.popitem(last=False)
            return {"path": None, "sampling_session_id": sampler_id}

        return self._submit_training(model_id, seq_id, snapshot)

    def load_weights(
        self, model_id: str, seq_id: int | None, path: str, optimizer: bool
    ) -> Submitted:
        """Queue loading a checkpoint's weights (and optionally its optimizer state)."""
        ref = parse_tinker_path(path)
        row = self._run_row(model_id)

        def work(trainer: Trainer) -> JSONDict:
            if self.store.get_checkpoint(ref) is None:
                raise NotFound(f"Checkpoint {path!r} not found.")
            source = self.store.get_run(ref.run_id)
            if source is not None and source.base_model != row.base_model:
                raise BadRequest(
                    f"Checkpoint {path!r} is for base model {source.base_model!r}, but this "
                    f"training run uses {row.base_model!r}."
                )
            if optimizer and not self.store.files.has_optimizer(ref):
                raise BadRequest(
                    f"Checkpoint {path!r} has no optimizer state (sampler checkpoints hold "
                    "weights only); load it without the optimizer."
                )
            data = self.store.files.read(ref, with_optimizer=optimizer)
            trainer.load(data.adapter, data.optimizer)
            return {"path": path}

        return self._submit_training(model_id, seq_id, work)

    def unload_model(self, model_id: str) -> Submitted:
        """Drop a run's in-memory state after its queued work; resolves to {"model_id": ...}."""
        run = self._loaded_run(model_id)
        request_id = f"{model_id}:unload"
        if not self.results.add(request_id):
            return Submitted(request_id, model_id)

        def unload() -> JSONDict:
            with self._lock:
                self._runs.pop(model_id, None)
            run.queue.close()
            return {"model_id": model_id, "type": "unload_model"}

        run.queue.submit_unordered(lambda: self._execute(request_id, unload))
        return Submitted(request_id, model_id)

    def _save(
        self, trainer: Trainer, ref: CheckpointRef, expires: float | None, *, with_optimizer: bool
    ) -> None:
        optimizer = trainer.optimizer_tensors() if with_optimizer else None
        self.store.save_checkpoint(
            ref,
            trainer.adapter_tensors(),
            trainer.adapter_config(),
            optimizer,
            when=now(),
            expires_at=expires,
        )

    def _checkpoint_name(self, name: str | None, seq_id: int | None) -> str:
        if name is None:
            return f"checkpoint-{seq_id if seq_id is not None else uuid.uuid4().hex[:8]}"
        return validate_name(name)

    def _run_row(self, model_id: str) -> RunRow:
        with self._lock:
            run = self._runs.get(model_id)
        if run is not None:
            return run.row
        row = self.store.get_run(model_id)
        if row is None:
            raise NotFound(f"Model {model_id!r} not found.")
        return row

    def _loaded_run(self, model_id: str) -> _Run:
        with self._lock:
            run = self._runs.get(model_id)
        if run is not None:
            return run
        if self.store.get_run(model_id) is not None:
            raise NotFound(
                f"Model {model_id!r} is not loaded in this server (it belongs to an ended "
                "session or an earlier server process); create a training client from one of "
                "its checkpoints."
            )
        raise NotFound(f"Model {model_id!r} not found.")

    def _submit_training(
        self, model_id: str, seq_id: int | None, work: Callable[[Trainer], JSONDict]
    ) -> Submitted:
        run = self._loaded_run(model_id)
        self._touch_session(run.row.session_id)
        request_id = f"{model_id}:{seq_id}" if seq_id is not None else f"{model_id}:{uuid.uuid4()}"
        if not self.results.add(request_id):
            return Submitted(request_id, model_id)

        def job() -> JSONDict:
            if run.trainer is None:
                raise NotFound(f"Model {model_id!r} is not loaded.")
            self.store.touch_run(model_id, now())
            return work(run.trainer)

        def execute() -> None:
            self._execute(request_id, job)

        def abandon() -> None:
            message = f"Model {model_id!r} was unloaded before this request ran."
            self.results.resolve(request_id, payloads.failure(message, "user"))

        if seq_id is None:
            run.queue.submit_unordered(execute, abandon)
        else:
            run.queue.submit(seq_id, execute, abandon)
        return Submitted(request_id, model_id)

    def _execute(self, request_id: str, fn: Callable[[], JSONDict]) -> None:
        """Run one job and store its result or its failure (user vs server category)."""
        try:
            payload = fn()
        except self.backend.user_errors as exc:
            payload = payloads.failure(str(exc), "user")
        except HTTPError as exc:
            category = "user" if exc.status < 500 else "server"
            payload = payloads.failure(str(exc), category)
        except Exception as exc:
            logger.exception("request %s failed", request_id)
            payload = payloads.failure(f"Internal error: {type(exc).__name__}: {exc}", "server")
        self.results.resolve(request_id, payload)

    # sampling

    def create_sampling_session(
        self, session_id: str, seq_id: int, base_model: str | None, model_path: str | None
    ) -> str:
        """Register a sampler on a base model or a checkpoint; returns `<session>:sample:<n>`."""
        self._require_session(session_id)
        sampler_id = f"{session_id}:sample:{seq_id}"
        existing = self.store.get_sampler(sampler_id)
        if existing is not None:
            return sampler_id
        resolved_base, source = self._sampler_source(base_model, model_path)
        self.store.add_sampler(
            SamplerRow(sampler_id, session_id, resolved_base, model_path, source, now())
        )
        return sampler_id

    def _sampler_source(self, base_model: str | None, model_path: str | None) -> tuple[str, str]:
        if model_path is None:
            if base_model is None:
                raise BadRequest("Give base_model or model_path to sample from.")
            self.model_info(base_model)
            return base_model, "base"
        ref = parse_tinker_path(model_path)
        if self.store.get_checkpoint(ref) is None:
            raise NotFound(f"Checkpoint {model_path!r} not found.")
        run = self.store.get_run(ref.run_id)
        if run is None:
            raise NotFound(f"Training run {ref.run_id!r} of {model_path!r} not found.")
        if base_model is not None and base_model != run.base_model:
            raise BadRequest(
                f"{model_path!r} was trained from {run.base_model!r}, not {base_model!r}."
            )
        return run.base_model, "checkpoint"

    def get_sampler(self, sampler_id: str) -> SamplerRow:
        """The sampler's record; NotFound if unknown."""
        row = self.store.get_sampler(sampler_id)
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
    ) -> Submitted:
        """Queue a sample on the worker pool; resolves to SampleResponse.

        Answers 429 (TooManyRequests) when too many samples are queued: deliberate
        back-pressure that the client answers by backing off and resubmitting.
        """
        if not spec.prompt:
            raise BadRequest("The prompt must contain at least one token.")
        if spec.num_samples < 1:
            raise BadRequest(f"num_samples must be at least 1, got {spec.num_samples}.")
        if sampler_id is not None:
            row = self.get_sampler(sampler_id)
            self._touch_session(row.session_id)
            key = sampler_id
            suffix = str(seq_id) if seq_id is not None else uuid.uuid4().hex
            request_id = f"{sampler_id}:{suffix}"
        else:
            resolved_base, _ = self._sampler_source(base_model, model_path)
            row = SamplerRow("", "", resolved_base, model_path, "direct", now())
            key = f"direct:{model_path or resolved_base}"
            request_id = f"sample:{uuid.uuid4().hex}"
        with self._lock:
            if self._pending_samples >= self.config.max_pending_samples:
                raise TooManyRequests(
                    f"{self._pending_samples} samples are queued; back off and resubmit."
                )
            if not self.results.add(request_id):
                return Submitted(request_id, None)
            self._pending_samples += 1

        def job() -> JSONDict:
            sampler = self._sampler_for(key, row)
            result = sampler.sample(
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
            return payloads.sample_output(result)

        def execute() -> None:
            try:
                self._execute(request_id, job)
            finally:
                with self._lock:
                    self._pending_samples -= 1

        self._pool.submit(execute)
        return Submitted(request_id, None)

    def _sampler_for(self, key: str, row: SamplerRow) -> Sampler:
        """A built sampler from the LRU cache, or built now from a snapshot, checkpoint or base."""
        with self._lock:
            cached = self._samplers.get(key)
            if cached is not None:
                self._samplers.move_to_end(key)
                return cached
            snapshot = self._ephemeral.get(key)
        if snapshot is not None:
            sampler = self.backend.snapshot_sampler(snapshot)
        elif row.source == "ephemeral":
            raise Gone(
                f"Sampler {key!r} held in-memory weights that are no longer kept (its session "
                "ended, the server restarted or newer samplers displaced it); save weights for "
                "the sampler again."
            )
        elif row.model_path is None:
            sampler = self.backend.base_sampler(row.base_model)
        else:
            data = self.store.files.read(parse_tinker_path(row.model_path), with_optimizer=False)
            sampler = self.backend.checkpoint_sampler(
                row.base_model, data.adapter, data.adapter_config
            )
        with self._lock:
            self._samplers[key] = sampler
            while len(self._samplers) > self.config.max_cached_samplers:
                self._samplers.popitem(last=False)
        return sampler

    # futures

    def retrieve(self, request_id: str, timeout: float | None = None) -> JSONDict | None:
        """The result or failure body, or None if still pending after the long-poll bound."""
        wait = self.config.long_poll_seconds if timeout is None else timeout
        return self.results.wait(request_id, wait)

    # checkpoints (REST)

    def weights_info(self, tinker_path: str) -> JSONDict:
        """WeightsInfoResponse for a checkpoint of this server (own or published)."""
        ref = parse_tinker_path(tinker_path)
        if self.store.get_checkpoint(ref) is None:
            raise NotFound(f"Checkpoint {tinker_path!r} not found.")
        run = self._run_row(ref.run_id)
        return {"base_model": run.base_model, "is_lora": True, "lora_rank": run.lora_rank}

    def delete_checkpoint(self, ref: CheckpointRef) -> None:
        """Delete a checkpoint's row and files; NotFound if it does not exist."""
        if not self.store.delete_checkpoint(ref):
            raise NotFound(f"Checkpoint {ref.tinker_path!r} not found.")

    def set_public(self, ref: CheckpointRef, public: bool) -> None:
        """Publish or unpublish (idempotent); NotFound if the checkpoint does not exist."""
        if not self.store.set_public(ref, public):
            raise NotFound(f"Checkpoint {ref.tinker_path!r} not found.")

    def set_ttl(self, ref: CheckpointRef, ttl_seconds: float | None) -> None:
        """Expire a checkpoint `ttl_seconds` from now, or never (None); NotFound if missing."""
        if not self.store.set_expiry(ref, _expiry(ttl_seconds)):
            raise NotFound(f"Checkpoint {ref.tinker_path!r} not found.")

    def archive_token(self, ref: CheckpointRef) -> tuple[str, float]:
        """A short-lived download token for a checkpoint's archive and its expiry (Unix time)."""
        if self.store.get_checkpoint(ref) is None:
            raise NotFound(f"Checkpoint {ref.tinker_path!r} not found.")
        token = secrets.token_urlsafe(24)
        expires = now() + self.config.archive_url_seconds
        with self._lock:
            self._archives[token] = (ref, expires)
        return token, expires

    def archive(self, token: str) -> tuple[CheckpointRef, bytes]:
        """The tar archive a download token points to; NotFound/Gone for bad or old tokens."""
        with self._lock:
            entry = self._archives.get(token)
        if entry is None:
            raise NotFound("Unknown archive link.")
        ref, expires = entry
        if now() > expires:
            raise Gone("This archive link has expired; ask for a new one.")
        return ref, self.store.files.archive(ref)

    # maintenance

    def _maintain(self) -> None:
        while not self._stop.wait(self.config.maintenance_seconds):
            try:
                self.maintain_once()
            except Exception:
                logger.exception("local server maintenance failed")

    def maintain_once(self) -> None:
        """Drop expired results, idle sessions, expired checkpoints and archive links."""
        self.results.sweep()
        self._expire_idle_sessions()
        wall = now()
        for ref in self.store.expired_checkpoints(wall):
            logger.info("deleting expired checkpoint %s", ref.tinker_path)
            self.store.delete_checkpoint(ref)
        with self._lock:
            for token in [t for t, (_, exp) in self._archives.items() if exp < wall]:
                del self._archives[token]


def _session_of(sampler_id: str) -> str:
    return sampler_id.split(":sample:", 1)[0]


def _expiry(ttl_seconds: float | None) -> float | None:
    if ttl_seconds is None:
        return None
    if ttl_seconds <= 0:
        raise BadRequest(f"ttl_seconds must be positive, got {ttl_seconds}.")
    return now() + ttl_seconds
