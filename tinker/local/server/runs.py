"""Training runs: creation (create_model, or load_weights that creates the run from a
checkpoint) and the ordered training operations on a run's trainer.

Each loaded run has a queue that executes its operations strictly in seq_id order
(server.ordering), so chunks of one forward_backward submitted concurrently and out of order
run in order. Request ids are deterministic (`<model_id>:<seq_id>`, `<model_id>:0` for the
creation), so a retried submit returns the same future instead of running twice. A run's
optimizer family (AdamW or Dimuon) is fixed at creation; each optim_step's parameters are
checked against it when submitted. Custom losses created with create_custom_loss belong to
their session.
"""

from __future__ import annotations

import itertools
import logging
import pathlib
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from tinker import _wire, types
from tinker.local.compute.backend import Trainer
from tinker.local.server import responses
from tinker.local.server.batches import TrainingBatch
from tinker.local.server.context import EngineContext
from tinker.local.server.http_errors import BadRequest, NotFound
from tinker.local.server.ordering import OrderedQueue
from tinker.local.server.outcomes import JobValue
from tinker.local.server.paths import CheckpointRef, loadable_path, validate_name
from tinker.local.server.results import ForwardResult
from tinker.local.server.samplers import Samplers
from tinker.local.server.store import RunRow, expiry_time, now

logger = logging.getLogger(__name__)

ADAMW: Mapping[str, Any] = {"type": "adamw"}
CUSTOM = "custom"


@attrs.define
class _Run:
    row: RunRow
    queue: OrderedQueue
    trainer: Trainer | None = None
    inflight: Any = None  # the backend's in-flight weights of this run, once published


@attrs.frozen
class CheckpointSource:
    """A checkpoint to create a run from, and whether its optimizer state comes along."""

    path: str
    with_optimizer: bool


class TrainingRuns:
    """The training runs loaded in this process and their operation queues (thread-safe)."""

    def __init__(self, context: EngineContext, samplers: Samplers) -> None:
        self._ctx = context
        self._store = context.store
        self._backend = context.backend
        self._samplers = samplers
        self._lock = threading.Lock()
        self._runs: dict[str, _Run] = {}
        self._losses: dict[str, Any] = {}  # loss_id -> compiled custom loss
        self._cycle = itertools.count(1)

    def close(self) -> None:
        """Unload every run (queued operations fail)."""
        with self._lock:
            runs = list(self._runs.values())
            self._runs.clear()
        for run in runs:
            run.queue.close()

    def unload_sessions(self, session_ids: list[str]) -> None:
        """Unload the runs (and forget the custom losses) of ended sessions; their metadata
        and checkpoints stay."""
        ended = set(session_ids)
        with self._lock:
            runs = [run for run in self._runs.values() if run.row.session_id in ended]
            for run in runs:
                del self._runs[run.row.run_id]
            for loss_id in [i for i in self._losses if _session_of_loss(i) in ended]:
                del self._losses[loss_id]
        for run in runs:
            run.queue.close()

    # creation

    def create_model(
        self,
        session_id: str,
        model_seq_id: int,
        base_model: str,
        lora: types.LoraConfig,
        user_metadata: Mapping[str, Any] | None,
        optimizer_config: Mapping[str, Any] | None = None,
    ) -> types.UntypedAPIFuture:
        """Start creating a training run; the future resolves to CreateModelResponse."""
        self._ctx.sessions.require(session_id)
        self._ctx.known_model(base_model)
        self._check_lora(lora)
        optimizer = self._ctx.check(lambda: self._backend.check_optimizer_config(optimizer_config))
        stamp = now()
        row = RunRow(
            f"{session_id}:train:{model_seq_id}",
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
            optimizer_config=optimizer,
        )

        def build(run: _Run) -> types.CreateModelResponse:
            run.trainer = self._new_trainer(row)
            logger.debug("created training run %s (%s, rank %d)", row.run_id, base_model, lora.rank)
            return types.CreateModelResponse(model_id=row.run_id)

        return self._start(row, build)

    def create_from_checkpoint(
        self,
        session_id: str,
        model_seq_id: int,
        source: CheckpointSource,
        *,
        base_model: str | None,
        user_metadata: Mapping[str, Any] | None,
        optimizer_config: Mapping[str, Any] | None,
    ) -> types.UntypedAPIFuture:
        """Create-via-load (0.38): a run `<session>:train:<model_seq_id>` with the LoRA
        settings, weights and (optionally) optimizer state of a checkpoint; the future
        resolves to LoadWeightsResponse."""
        self._ctx.sessions.require(session_id)
        ref = loadable_path(source.path)
        if self._store.get_checkpoint(ref) is None:
            raise NotFound(f"Checkpoint {source.path!r} not found.")
        origin = self.run_row(ref.run_id)
        if base_model is not None and base_model != origin.base_model:
            raise BadRequest(
                f"Checkpoint {source.path!r} was trained on {origin.base_model!r}; it cannot be "
                f"loaded onto {base_model!r}."
            )
        if source.with_optimizer and optimizer_config is not None:
            raise BadRequest(
                "optimizer_config cannot be given when the optimizer state is restored (the "
                "checkpoint's optimizer is used)."
            )
        optimizer = self._ctx.check(lambda: self._backend.check_optimizer_config(optimizer_config))
        stamp = now()
        row = attrs.evolve(
            origin,
            run_id=f"{session_id}:train:{model_seq_id}",
            session_id=session_id,
            model_seq_id=model_seq_id,
            user_metadata=None if user_metadata is None else dict(user_metadata),
            created_at=stamp,
            last_request_at=stamp,
            corrupted=False,
            optimizer_config=optimizer,
        )

        def build(run: _Run) -> types.LoadWeightsResponse:
            self._check_optimizer_state(ref, source)
            data = self._store.read_checkpoint(ref, with_optimizer=source.with_optimizer)
            if data.optimizer is not None:
                restored = self._backend.state_optimizer_config(data.optimizer)
                run.row = attrs.evolve(run.row, optimizer_config=restored)
            trainer = self._new_trainer(run.row)
            trainer.load(data.adapter, data.optimizer)
            run.trainer = trainer
            logger.debug("created training run %s from %s", run.row.run_id, source.path)
            return types.LoadWeightsResponse(path=source.path)

        return self._start(row, build)

    def _check_lora(self, lora: types.LoraConfig) -> None:
        limit = self._ctx.config.max_lora_rank
        if not 1 <= lora.rank <= limit:
            raise BadRequest(f"lora_config.rank must be between 1 and {limit}, got {lora.rank}.")
        if not (lora.train_mlp or lora.train_attn or lora.train_unembed):
            raise BadRequest("At least one of train_mlp, train_attn, train_unembed must be true.")

    def _new_trainer(self, row: RunRow) -> Trainer:
        return self._backend.new_trainer(
            row.base_model,
            rank=row.lora_rank,
            seed=row.seed,
            train_mlp=row.train_mlp,
            train_attn=row.train_attn,
            train_unembed=row.train_unembed,
            optimizer=row.optimizer_config,
        )

    def _start(
        self, row: RunRow, build: Callable[[_Run], types.WireModel]
    ) -> types.UntypedAPIFuture:
        """Register a run and queue its creation as request `<run id>:0`; the run is recorded
        in the store once `build` has made its trainer."""
        request_id = f"{row.run_id}:0"
        if not self._ctx.futures.add(request_id):
            return responses.future(request_id, row.run_id)  # a retried creation
        run = _Run(row, OrderedQueue(row.run_id, gap_seconds=self._ctx.config.seq_gap_seconds))
        with self._lock:
            self._runs[row.run_id] = run

        def create() -> types.WireModel:
            try:
                result = build(run)
                self._store.add_run(run.row)
            except BaseException:
                with self._lock:
                    self._runs.pop(row.run_id, None)
                run.queue.close()
                raise
            return result

        run.queue.submit_unordered(lambda: self._ctx.run_job(request_id, create))
        return responses.future(request_id, row.run_id)

    # information

    def get_info(self, model_id: str) -> dict[str, Any]:
        """GetInfoResponse of a training run (also of earlier server processes), with the
        run's optimizer_config."""
        row = self.run_row(model_id)
        info = self._ctx.known_model(row.base_model)
        answer = types.GetInfoResponse(
            type="get_info",
            model_id=model_id,
            model_data=types.ModelData(
                arch=info.arch, model_name=row.base_model, tokenizer_id=info.tokenizer_id
            ),
            is_lora=True,
            lora_rank=row.lora_rank,
            model_name=row.base_model,
        )
        return {**_wire.unstructure(answer), "optimizer_config": optimizer_of(row)}

    # training operations

    def forward(self, batch: TrainingBatch) -> types.UntypedAPIFuture:
        """Queue forward (or forward_backward) on a batch; resolves to ForwardBackwardOutput."""
        if not batch.data:
            raise BadRequest("forward input data must contain at least one datum.")
        row = self.run_row(batch.model_id)
        custom_loss = self._custom_loss(row.session_id, batch)
        stability = self._samplers.stability(row.session_id)

        def work(trainer: Trainer) -> JobValue:
            datums = [
                self._backend.make_datum(
                    d.tokens,
                    d.inputs,
                    model_input_spans=d.model_input_spans,
                    loss_fn_input_spans=d.loss_fn_input_spans,
                )
                for d in batch.data
            ]
            run_op = trainer.forward if batch.forward_only else trainer.forward_backward
            result = run_op(
                datums,
                batch.loss_fn,
                batch.loss_fn_config,
                custom_loss=custom_loss,
                stability=stability,
            )
            if len(result.outputs) != len(batch.data):
                raise RuntimeError(
                    f"backend returned {len(result.outputs)} outputs for {len(batch.data)} datums"
                )
            tokens = sum(len(d.tokens) for d in batch.data)
            self._ctx.accounting.trained(row.session_id, row.base_model, tokens)
            return ForwardResult(result, {"clock_cycle:unique": float(next(self._cycle))})

        return self._submit(batch.model_id, batch.seq_id, work)

    def optim_step(
        self, model_id: str, seq_id: int | None, fields: Mapping[str, Any]
    ) -> types.UntypedAPIFuture:
        """Queue an optimizer step with `fields` (adam_params, or optimizer_params of the
        run's family); resolves to OptimStepResponse."""
        config = optimizer_of(self.run_row(model_id))
        params = self._ctx.check(lambda: self._backend.optim_params(config, fields))

        def work(trainer: Trainer) -> types.OptimStepResponse:
            metrics = trainer.optim_step(params)
            return types.OptimStepResponse(
                metrics={k: float(v) for k, v in (metrics or {}).items()}
            )

        return self._submit(model_id, seq_id, work)

    def save_weights(
        self,
        model_id: str,
        seq_id: int | None,
        name: str | None,
        ttl_seconds: float | None,
        *,
        overwrite: bool = True,
        user_metadata: Mapping[str, str] | None = None,
    ) -> types.UntypedAPIFuture:
        """Queue a training checkpoint (weights + optimizer); resolves to its tinker:// path.
        Without `overwrite` an existing checkpoint of the name is an error."""
        if name is None:
            name = f"checkpoint-{seq_id if seq_id is not None else uuid.uuid4().hex[:8]}"
        ref = CheckpointRef(model_id, "weights", validate_name(name))
        expires = expiry_time(ttl_seconds)

        def work(trainer: Trainer) -> types.SaveWeightsResponse:
            if not overwrite and self._store.get_checkpoint(ref) is not None:
                raise BadRequest(
                    f"Checkpoint {ref.tinker_path!r} already exists; save with overwrite=True "
                    "to replace it."
                )
            self._save(trainer, ref, expires, with_optimizer=True, user_metadata=user_metadata)
            return types.SaveWeightsResponse(path=ref.tinker_path)

        return self._submit(model_id, seq_id, work)

    def save_weights_for_sampler(
        self,
        model_id: str,
        seq_id: int | None,
        name: str | None,
        sampling_session_seq_id: int | None,
        ttl_seconds: float | None,
        *,
        inflight: bool = False,
        user_metadata: Mapping[str, str] | None = None,
    ) -> types.UntypedAPIFuture:
        """Named form: a sampler checkpoint; ephemeral form: a sampling session on a snapshot
        of the weights (or, `inflight`, on the run's in-flight weights, which every later
        in-flight save updates)."""
        if name is None and sampling_session_seq_id is None:
            raise BadRequest(
                "save_weights_for_sampler needs either a path (checkpoint name) or a "
                "sampling_session_seq_id."
            )
        if name is not None:
            ref = CheckpointRef(model_id, "sampler_weights", validate_name(name))
            expires = expiry_time(ttl_seconds)

            def save(trainer: Trainer) -> types.SaveWeightsForSamplerResponseInternal:
                self._save(trainer, ref, expires, with_optimizer=False, user_metadata=user_metadata)
                return types.SaveWeightsForSamplerResponseInternal(
                    path=ref.tinker_path, sampling_session_id=None
                )

            return self._submit(model_id, seq_id, save)
        run = self._loaded(model_id)
        row = run.row
        sampler_id = f"{row.session_id}:sample:{sampling_session_seq_id}"

        def snapshot(trainer: Trainer) -> types.SaveWeightsForSamplerResponseInternal:
            weights = trainer.snapshot()
            if not inflight:
                self._samplers.add_snapshot(sampler_id, row.session_id, row.base_model, weights)
            else:
                if run.inflight is None:
                    run.inflight = self._backend.inflight_target(weights)
                else:
                    run.inflight.publish(weights)
                self._samplers.add_inflight(
                    sampler_id, row.session_id, row.base_model, run.inflight
                )
            return types.SaveWeightsForSamplerResponseInternal(
                path=None, sampling_session_id=sampler_id
            )

        return self._submit(model_id, seq_id, snapshot)

    def save_weights_external(
        self,
        model_id: str,
        seq_id: int | None,
        name: str,
        ttl_seconds: float | None,
        age_encryption_recipients: Sequence[str] | None,
    ) -> types.UntypedAPIFuture:
        """Queue an export of the weights for other tools (a PEFT adapter directory, the
        backend's format) as checkpoint `external_weights/<name>`; resolves to its path and
        size."""
        if age_encryption_recipients:
            raise BadRequest(
                "age encryption of exported weights is not available on the local server; "
                "export without age_encryption_recipients."
            )
        ref = CheckpointRef(model_id, "external_weights", validate_name(name))
        expires = expiry_time(ttl_seconds)
        row = self.run_row(model_id)

        def work(trainer: Trainer) -> JobValue:
            adapter, config = trainer.adapter_tensors(), trainer.adapter_config()

            def export(directory: pathlib.Path) -> int:
                files = self._backend.export_external(directory, row.base_model, adapter, config)
                return files.size_bytes

            saved = self._store.save_files(ref, export, when=now(), expires_at=expires)
            self._ctx.accounting.checkpoint_saved(row.session_id, row.base_model, ref.tinker_path)
            return responses.exported(ref.tinker_path, saved.size_bytes)

        return self._submit(model_id, seq_id, work)

    def load_weights(
        self, model_id: str, seq_id: int | None, path: str, optimizer: bool
    ) -> types.UntypedAPIFuture:
        """Queue loading a checkpoint's weights (and optionally its optimizer state)."""
        ref = loadable_path(path)
        row = self.run_row(model_id)
        source = CheckpointSource(path, optimizer)

        def work(trainer: Trainer) -> types.LoadWeightsResponse:
            if self._store.get_checkpoint(ref) is None:
                raise NotFound(f"Checkpoint {path!r} not found.")
            origin = self._store.get_run(ref.run_id)
            if origin is not None and origin.base_model != row.base_model:
                raise BadRequest(
                    f"Checkpoint {path!r} is for base model {origin.base_model!r}, but this "
                    f"training run uses {row.base_model!r}."
                )
            self._check_optimizer_state(ref, source)
            data = self._store.read_checkpoint(ref, with_optimizer=optimizer)
            trainer.load(data.adapter, data.optimizer)
            return types.LoadWeightsResponse(path=path)

        return self._submit(model_id, seq_id, work)

    def _check_optimizer_state(self, ref: CheckpointRef, source: CheckpointSource) -> None:
        if source.with_optimizer and not self._store.checkpoint_has_optimizer(ref):
            raise BadRequest(
                f"Checkpoint {source.path!r} has no optimizer state (sampler checkpoints hold "
                "weights only); load it without the optimizer."
            )

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

    # custom losses

    def create_custom_loss(
        self,
        session_id: str,
        custom_loss_seq_id: int,
        name: str,
        inputs: Sequence[Mapping[str, Any]],
        graph: Mapping[str, Any],
    ) -> types.UntypedAPIFuture:
        """Compile an uploaded loss graph for the session; resolves to `{"loss_id"}`."""
        self._ctx.sessions.require(session_id)
        loss_id = f"{session_id}:loss:{custom_loss_seq_id}"
        request_id = f"{loss_id}:create"
        if not self._ctx.futures.add(request_id):
            return responses.future(request_id, None)

        def compile_loss() -> JobValue:
            compiled = self._backend.compile_custom_loss(name, inputs, graph)
            with self._lock:
                self._losses[loss_id] = compiled
            return responses.created_loss(loss_id)

        # Compiling only checks a small graph: it runs on the submitting thread.
        self._ctx.run_job(request_id, compile_loss)
        return responses.future(request_id, None)

    def _custom_loss(self, session_id: str, batch: TrainingBatch) -> Any:
        """The compiled loss a "custom" batch names (None for built-in losses)."""
        if batch.loss_fn != CUSTOM:
            return None
        loss_id = (batch.loss_fn_config or {}).get("loss_id")
        with self._lock:
            compiled = self._losses.get(loss_id) if isinstance(loss_id, str) else None
        if compiled is None or _session_of_loss(str(loss_id)) != session_id:
            raise BadRequest(
                f"loss_fn 'custom' needs loss_fn_config['loss_id'] naming a loss created with "
                f"create_custom_loss in this session; got {loss_id!r}."
            )
        return compiled

    # lookups

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
        row = self._store.get_run(model_id)
        if row is not None:
            self._ctx.sessions.require(row.session_id)  # Gone when its session has ended
            raise NotFound(
                f"Model {model_id!r} is not loaded in this server (it belongs to an earlier "
                "server process); create a training client from one of its checkpoints."
            )
        raise NotFound(f"Model {model_id!r} not found.")

    def _save(
        self,
        trainer: Trainer,
        ref: CheckpointRef,
        expires: float | None,
        *,
        with_optimizer: bool,
        user_metadata: Mapping[str, str] | None,
    ) -> None:
        optimizer = trainer.optimizer_tensors() if with_optimizer else None
        self._store.save_checkpoint(
            ref,
            trainer.adapter_tensors(),
            trainer.adapter_config(),
            optimizer,
            when=now(),
            expires_at=expires,
            user_metadata=user_metadata,
        )
        row = self.run_row(ref.run_id)
        self._ctx.accounting.checkpoint_saved(row.session_id, row.base_model, ref.tinker_path)

    def _submit(
        self,
        model_id: str,
        seq_id: int | None,
        work: Callable[[Trainer], JobValue],
    ) -> types.UntypedAPIFuture:
        run = self._loaded(model_id)
        self._ctx.sessions.require(run.row.session_id)
        request_id = f"{model_id}:{seq_id}" if seq_id is not None else f"{model_id}:{uuid.uuid4()}"
        if not self._ctx.futures.add(request_id):
            return responses.future(request_id, model_id)  # a retried submit

        def job() -> JobValue:
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


def optimizer_of(row: RunRow) -> dict[str, Any]:
    """A run's optimizer_config (runs from before optimizer choices used AdamW)."""
    return dict(row.optimizer_config or ADAMW)


def _session_of_loss(loss_id: str) -> str:
    return loss_id.split(":loss:", 1)[0]
