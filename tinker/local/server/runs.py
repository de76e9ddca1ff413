"""Training runs: create_model and the ordered training operations on a run's LoRA trainer.

Each loaded run has a queue that executes its operations strictly in seq_id order
(server.ordering). Request ids are deterministic (`<model_id>:<seq_id>`, `<model_id>:0` for
create_model), so a retried submit returns the same future instead of running twice.
"""

from __future__ import annotations

import itertools
import logging
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from tinker import types
from tinker.local.compute.backend import Trainer
from tinker.local.server import responses
from tinker.local.server.context import EngineContext
from tinker.local.server.http_errors import BadRequest, NotFound
from tinker.local.server.ordering import OrderedQueue
from tinker.local.server.paths import CheckpointRef, parse_tinker_path, validate_name
from tinker.local.server.samplers import Samplers
from tinker.local.server.store import RunRow, expiry_time, now

logger = logging.getLogger(__name__)


@attrs.frozen
class DatumInput:
    """One training example: input tokens (int64, N) and its named loss inputs."""

    tokens: np.ndarray
    inputs: Mapping[str, np.ndarray]


@attrs.define
class _Run:
    row: RunRow
    queue: OrderedQueue
    trainer: Trainer | None = None


class TrainingRuns:
    """The training runs loaded in this process and their operation queues (thread-safe)."""

    def __init__(self, context: EngineContext, samplers: Samplers) -> None:
        self._ctx = context
        self._store = context.store
        self._backend = context.backend
        self._samplers = samplers
        self._lock = threading.Lock()
        self._runs: dict[str, _Run] = {}
        self._cycle = itertools.count(1)

    def close(self) -> None:
        """Unload every run (queued operations fail)."""
        with self._lock:
            runs = list(self._runs.values())
            self._runs.clear()
        for run in runs:
            run.queue.close()

    def unload_sessions(self, session_ids: list[str]) -> None:
        """Unload the runs of ended sessions (their metadata and checkpoints stay)."""
        ended = set(session_ids)
        with self._lock:
            runs = [run for run in self._runs.values() if run.row.session_id in ended]
            for run in runs:
                del self._runs[run.row.run_id]
        for run in runs:
            run.queue.close()

    def create_model(
        self,
        session_id: str,
        model_seq_id: int,
        base_model: str,
        lora: types.LoraConfig,
        user_metadata: Mapping[str, Any] | None,
    ) -> types.UntypedAPIFuture:
        """Start creating a training run; the future resolves to CreateModelResponse."""
        self._ctx.sessions.require(session_id)
        self._ctx.known_model(base_model)
        if not 1 <= lora.rank <= self._ctx.config.max_lora_rank:
            raise BadRequest(
                f"lora_config.rank must be between 1 and {self._ctx.config.max_lora_rank}, "
                f"got {lora.rank}."
            )
        if not (lora.train_mlp or lora.train_attn or lora.train_unembed):
            raise BadRequest("At least one of train_mlp, train_attn, train_unembed must be true.")
        run_id = f"{session_id}:train:{model_seq_id}"
        request_id = f"{run_id}:0"
        if not self._ctx.futures.add(request_id):
            return responses.future(request_id, run_id)  # a retried create_model
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
        run = _Run(row, OrderedQueue(run_id, gap_seconds=self._ctx.config.seq_gap_seconds))
        with self._lock:
            self._runs[run_id] = run

        def build() -> types.CreateModelResponse:
            try:
                run.trainer = self._backend.new_trainer(
                    base_model,
                    rank=lora.rank,
                    seed=lora.seed,
                    train_mlp=lora.train_mlp,
                    train_attn=lora.train_attn,
                    train_unembed=lora.train_unembed,
                )
                self._store.add_run(row)
            except BaseException:
                with self._lock:
                    self._runs.pop(run_id, None)
                run.queue.close()
                raise
            logger.debug("created training run %s (%s, rank %d)", run_id, base_model, lora.rank)
            return types.CreateModelResponse(model_id=run_id)

        run.queue.submit_unordered(lambda: self._ctx.run_job(request_id, build))
        return responses.future(request_id, run_id)

    def get_info(self, model_id: str) -> types.GetInfoResponse:
        """GetInfoResponse of a training run (also for runs of earlier server processes)."""
        row = self.run_row(model_id)
        info = self._ctx.known_model(row.base_model)
        return types.GetInfoResponse(
            type="get_info",
            model_id=model_id,
            model_data=types.ModelData(
                arch=info.arch, model_name=row.base_model, tokenizer_id=info.tokenizer_id
            ),
            is_lora=True,
            lora_rank=row.lora_rank,
            model_name=row.base_model,
        )

    def forward(
        self,
        model_id: str,
        seq_id: int | None,
        data: Sequence[DatumInput],
        loss_fn: str,
        loss_fn_config: Mapping[str, float] | None,
        *,
        backward: bool,
    ) -> types.UntypedAPIFuture:
        """Queue forward (or forward_backward) on a batch; resolves to ForwardBackwardOutput."""
        if not data:
            raise BadRequest("forward input data must contain at least one datum.")

        def work(trainer: Trainer) -> types.ForwardBackwardOutput:
            datums = [self._backend.make_datum(d.tokens, d.inputs) for d in data]
            run_op = trainer.forward_backward if backward else trainer.forward
            result = run_op(datums, loss_fn, loss_fn_config)
            if len(result.outputs) != len(data):
                raise RuntimeError(
                    f"backend returned {len(result.outputs)} outputs for {len(data)} datums"
                )
            return responses.forward_output(
                result, {"clock_cycle:unique": float(next(self._cycle))}
            )

        return self._submit(model_id, seq_id, work)

    def optim_step(
        self, model_id: str, seq_id: int | None, adam: types.AdamParams
    ) -> types.UntypedAPIFuture:
        """Queue an Adam step over the accumulated gradients; resolves to OptimStepResponse."""

        def work(trainer: Trainer) -> types.OptimStepResponse:
            metrics = trainer.optim_step(
                learning_rate=adam.learning_rate,
                beta1=adam.beta1,
                beta2=adam.beta2,
                eps=adam.eps,
                weight_decay=adam.weight_decay,
                grad_clip_norm=adam.grad_clip_norm,
            )
            return types.OptimStepResponse(
                metrics={k: float(v) for k, v in (metrics or {}).items()}
            )

        return self._submit(model_id, seq_id, work)

    def save_weights(
        self, model_id: str, seq_id: int | None, name: str | None, ttl_seconds: float | None
    ) -> types.UntypedAPIFuture:
        """Queue a training checkpoint (weights + optimizer); resolves to its tinker:// path."""
        if name is None:
            name = f"checkpoint-{seq_id if seq_id is not None else uuid.uuid4().hex[:8]}"
        ref = CheckpointRef(model_id, "weights", validate_name(name))
        expires = expiry_time(ttl_seconds)

        def work(trainer: Trainer) -> types.SaveWeightsResponse:
            self._save(trainer, ref, expires, with_optimizer=True)
            return types.SaveWeightsResponse(path=ref.tinker_path)

        return self._submit(model_id, seq_id, work)

    def save_weights_for_sampler(
        self,
        model_id: str,
        seq_id: int | None,
        name: str | None,
        sampling_session_seq_id: int | None,
        ttl_seconds: float | None,
    ) -> types.UntypedAPIFuture:
        """Named form: a sampler checkpoint; ephemeral form: a sampling session on a snapshot."""
        if name is None and sampling_session_seq_id is None:
            raise BadRequest(
                "save_weights_for_sampler needs either a path (checkpoint name) or a "
                "sampling_session_seq_id."
            )
        if name is not None:
            ref = CheckpointRef(model_id, "sampler_weights", validate_name(name))
            expires = expiry_time(ttl_seconds)

            def save(trainer: Trainer) -> types.SaveWeightsForSamplerResponseInternal:
                self._save(trainer, ref, expires, with_optimizer=False)
                return types.SaveWeightsForSamplerResponseInternal(
                    path=ref.tinker_path, sampling_session_id=None
                )

            return self._submit(model_id, seq_id, save)
        row = self.run_row(model_id)
        sampler_id = f"{row.session_id}:sample:{sampling_session_seq_id}"

        def snapshot(trainer: Trainer) -> types.SaveWeightsForSamplerResponseInternal:
            self._samplers.add_snapshot(
                sampler_id, row.session_id, row.base_model, trainer.snapshot()
            )
            return types.SaveWeightsForSamplerResponseInternal(
                path=None, sampling_session_id=sampler_id
            )

        return self._submit(model_id, seq_id, snapshot)

    def load_weights(
        self, model_id: str, seq_id: int | None, path: str, optimizer: bool
    ) -> types.UntypedAPIFuture:
        """Queue loading a checkpoint's weights (and optionally its optimizer state)."""
        ref = parse_tinker_path(path)
        row = self.run_row(model_id)

        def work(trainer: Trainer) -> types.LoadWeightsResponse:
            if self._store.get_checkpoint(ref) is None:
                raise NotFound(f"Checkpoint {path!r} not found.")
            source = self._store.get_run(ref.run_id)
            if source is not None and source.base_model != row.base_model:
                raise BadRequest(
                    f"Checkpoint {path!r} is for base model {source.base_model!r}, but this "
                    f"training run uses {row.base_model!r}."
                )
            if optimizer and not self._store.checkpoint_has_optimizer(ref):
                raise BadRequest(
                    f"Checkpoint {path!r} has no optimizer state (sampler checkpoints hold "
                    "weights only); load it without the optimizer."
                )
            data = self._store.read_checkpoint(ref, with_optimizer=optimizer)
            trainer.load(data.adapter, data.optimizer)
            return types.LoadWeightsResponse(path=path)

        return self._submit(model_id, seq_id, work)

    def unload_model(self, model_id: str) -> types.UntypedAPIFuture:
        """Drop a run's in-memory state after its current job; resolves to UnloadModelResponse."""
        run = self._loaded(model_id)
        request_id = f"{model_id}:unload"
        if not self._ctx.futures.add(request_id):
            return responses.future(request_id, model_id)

        def unload() -> types.UnloadModelResponse:
            with self._lock:
                self._runs.pop(model_id, None)
            run.queue.close()
            return types.UnloadModelResponse(model_id=model_id, type="unload_model")

        run.queue.submit_unordered(lambda: self._ctx.run_job(request_id, unload))
        return responses.future(request_id, model_id)

    def run_row(self, model_id: str) -> RunRow:
        """The run's record, loaded or not; NotFound if unknown."""
        with self._lock:
            run = self._runs.get(model_id)
        if run is not None:
            return run.row
        row = self._store.get_run(model_id)
        if row is None:
            raise NotFound(f"Model {model_id!r} not found.")
        return row

    def _loaded(self, model_id: str) -> _Run:
        with self._lock:
            run = self._runs.get(model_id)
        if run is not None:
            return run
        if self._store.get_run(model_id) is not None:
            raise NotFound(
                f"Model {model_id!r} is not loaded in this server (it belongs to an ended "
                "session or an earlier server process); create a training client from one of "
                "its checkpoints."
            )
        raise NotFound(f"Model {model_id!r} not found.")

    def _save(
        self, trainer: Trainer, ref: CheckpointRef, expires: float | None, *, with_optimizer: bool
    ) -> None:
        optimizer = trainer.optimizer_tensors() if with_optimizer else None
        self._store.save_checkpoint(
            ref,
            trainer.adapter_tensors(),
            trainer.adapter_config(),
            optimizer,
            when=now(),
            expires_at=expires,
        )

    def _submit(
        self, model_id: str, seq_id: int | None, work: Callable[[Trainer], types.WireModel]
    ) -> types.UntypedAPIFuture:
        run = self._loaded(model_id)
        self._ctx.sessions.touch(run.row.session_id)
        request_id = f"{model_id}:{seq_id}" if seq_id is not None else f"{model_id}:{uuid.uuid4()}"
        if not self._ctx.futures.add(request_id):
            return responses.future(request_id, model_id)  # a retried submit

        def job() -> types.WireModel:
            if run.trainer is None:
                raise NotFound(f"Model {model_id!r} is not loaded.")
            self._store.touch_run(model_id, now())
            return work(run.trainer)

        def abandon() -> None:
            message = f"Model {model_id!r} was unloaded before this request ran."
            self._ctx.fail(request_id, message, "user")

        if seq_id is None:
            run.queue.submit_unordered(lambda: self._ctx.run_job(request_id, job), abandon)
        else:
            run.queue.submit(seq_id, lambda: self._ctx.run_job(request_id, job), abandon)
        return responses.future(request_id, model_id)
