"""A small, deterministic stand-in for the compute backend that follows its contract.

It lets the server tests exercise ordering, futures and persistence without the numpy model:
the "model" is one adapter matrix, forward returns logprobs derived from the tokens and the
weights, forward_backward accumulates a gradient, optim_step applies it. Every call is logged
(thread-safe) so tests can assert execution order; `gate` can hold operations back. The 0.38
capabilities (custom losses, optimizer families, stability records, in-flight samplers, sample
extras, external exports, checkpoint copies) answer with simple, predictable values.
"""

from __future__ import annotations

import json
import pathlib
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from tinker.local.compute.backend import ModelInfo, SpanSpec
from tinker.local.compute.export import WrittenFiles, link_or_copy


class FakeUserError(ValueError):
    """Bad input as the fake backend sees it (category "user")."""


MODELS = {"fake/tiny": 16, "fake/small": 32}
FAILING_MAX_TOKENS = 13  # a sample asking for this many tokens fails (in its job)
OPTIMIZERS = {"adamw": {"type": "adamw"}, "dimuon": {"type": "dimuon", "version": 1}}


@attrs.frozen
class FakeDatum:
    tokens: np.ndarray
    inputs: Mapping[str, np.ndarray]
    model_input_spans: tuple[SpanSpec, ...] | None = None
    loss_fn_input_spans: tuple[SpanSpec, ...] | None = None


@attrs.frozen
class FakeParams:
    """Per-step optimizer params of either family."""

    family: str
    learning_rate: float


@attrs.frozen
class FakeTable:
    """A top-k table, target table or alternative tokens, as the protocols describe them."""

    token_ids: np.ndarray
    logprobs: np.ndarray
    shape: tuple[int, int] = (0, 0)
    crow: np.ndarray | None = None
    col: np.ndarray | None = None

    @property
    def tokens(self) -> np.ndarray:
        return self.token_ids

    @property
    def values(self) -> np.ndarray:
        return self.logprobs


@attrs.frozen
class FakeLoss:
    loss_fn_output_type: str
    outputs: list[dict[str, np.ndarray]]
    metrics: dict[str, float]


@attrs.frozen
class FakeSequence:
    tokens: list[int]
    logprobs: list[float]
    stop_reason: str
    topk_logprobs: FakeTable | None = None
    stability: dict[str, list[int]] | None = None


@attrs.frozen
class FakeSample:
    sequences: list[FakeSequence]
    prompt_logprobs: list[float | None] | None
    topk_prompt_logprobs: list[list[tuple[int, float]] | None] | None
    prompt_cache_hit_tokens: int = 0
    target_prompt_logprobs: FakeTable | None = None
    prompt_alt_tokens: FakeTable | None = None


class FakeStore:
    """Stability records by sequence id."""

    def __init__(self) -> None:
        self.records: dict[str, Any] = {}

    def put(self, sequence_id: str, record: Any) -> None:
        self.records[sequence_id] = record


class FakeInflight:
    """The newest published snapshot and its version."""

    def __init__(self, snapshot: tuple[str, dict[str, np.ndarray]]) -> None:
        self.snapshot = snapshot
        self.version = 0

    def publish(self, snapshot: tuple[str, dict[str, np.ndarray]]) -> int:
        self.snapshot = snapshot
        self.version += 1
        return self.version


class FakeTrainer:
    """One adapter tensor pair; gradients accumulate until optim_step."""

    def __init__(
        self, backend: FakeBackend, base_model: str, rank: int, seed: int | None, optimizer: str
    ) -> None:
        self._backend = backend
        self.optimizer = optimizer
        self.base_model = base_model
        self.rank = rank
        self.lora_alpha = 32.0
        rng = np.random.default_rng(seed or 0)
        width = MODELS[base_model]
        self.weights = {
            "base_model.model.model.layers.0.mlp.up_proj.lora_A.weight": rng.standard_normal(
                (rank, width)
            ).astype(np.float32),
            "base_model.model.model.layers.0.mlp.up_proj.lora_B.weight": np.zeros(
                (width, rank), np.float32
            ),
        }
        self.grad = {name: np.zeros_like(w) for name, w in self.weights.items()}
        self.moments = {name: np.zeros_like(w) for name, w in self.weights.items()}
        self.steps = 0

    def _logprobs(self, datum: FakeDatum) -> np.ndarray:
        scale = float(np.abs(self.weights[next(iter(self.weights))]).mean())
        return (-0.1 * (datum.inputs["target_tokens"] % 5) - scale).astype(np.float32)

    def forward(
        self,
        data: Sequence[FakeDatum],
        loss_fn: str,
        loss_fn_config: Mapping[str, Any] | None,
        *,
        custom_loss: Any = None,
        stability: Any = None,
    ) -> FakeLoss:
        self._backend.record("forward")
        return self._loss(data, loss_fn, loss_fn_config, custom_loss)

    def forward_backward(
        self,
        data: Sequence[FakeDatum],
        loss_fn: str,
        loss_fn_config: Mapping[str, Any] | None,
        *,
        custom_loss: Any = None,
        stability: Any = None,
    ) -> FakeLoss:
        self._backend.record("forward_backward")
        result = self._loss(data, loss_fn, loss_fn_config, custom_loss)
        for grad in self.grad.values():
            grad += 1.0
        return result

    def _loss(
        self,
        data: Sequence[FakeDatum],
        loss_fn: str,
        config: Mapping[str, Any] | None,
        custom_loss: Any,
    ) -> FakeLoss:
        if config and "explode" in config:
            raise RuntimeError("the fake backend exploded")
        if loss_fn == "custom" and custom_loss is None:
            raise FakeUserError("loss_fn 'custom' needs a compiled custom loss")
        if loss_fn not in ("cross_entropy", "custom"):
            raise FakeUserError(f"fake backend only knows cross_entropy, not {loss_fn!r}")
        outputs = []
        total = 0.0
        for index, datum in enumerate(data):
            if "target_tokens" not in datum.inputs:
                raise FakeUserError(f"datum {index}: missing target_tokens")
            logprobs = self._logprobs(datum)
            if config and "diverge" in config:  # what a run whose weights became NaN returns
                logprobs = np.full_like(logprobs, np.nan)
            weights = datum.inputs.get("weights", np.ones_like(logprobs))
            loss = -(weights * logprobs)
            total += float(loss.sum())
            outputs.append({"logprobs": logprobs, "elementwise_loss": loss.astype(np.float32)})
        return FakeLoss("CrossEntropyLossReturn", outputs, {"loss:sum": total})

    def optim_step(self, params: Any = None, **adam: float) -> dict[str, float] | None:
        self._backend.record("optim_step")
        if params is not None and params.family != self.optimizer:
            raise FakeUserError(f"this run uses {self.optimizer}, got {params.family} params")
        learning_rate = (
            params.learning_rate if params is not None else adam.get("learning_rate", 1e-4)
        )
        for name, weight in self.weights.items():
            weight -= learning_rate * self.grad[name]
            self.grad[name][...] = 0.0
        self.steps += 1
        return {"step": float(self.steps)}

    def adapter_tensors(self) -> dict[str, np.ndarray]:
        return {name: w.copy() for name, w in self.weights.items()}

    def optimizer_tensors(self) -> dict[str, np.ndarray]:
        tensors = {f"{name}.exp_avg": m.copy() for name, m in self.moments.items()}
        tensors["step"] = np.array([self.steps], np.int64)
        if self.optimizer == "dimuon":
            tensors["dimuon.version"] = np.array([1], np.int64)
        return tensors

    def load(
        self, adapter: Mapping[str, np.ndarray], optimizer: Mapping[str, np.ndarray] | None
    ) -> None:
        self._backend.record("load")
        for name, weight in self.weights.items():
            if name not in adapter or adapter[name].shape != weight.shape:
                raise FakeUserError(f"checkpoint does not fit this model: {name}")
        for name in self.weights:
            self.weights[name] = np.array(adapter[name], np.float32)
        self.steps = int(optimizer["step"][0]) if optimizer is not None else 0

    def adapter_config(self) -> dict[str, Any]:
        return {"r": self.rank, "lora_alpha": self.lora_alpha, "base_model": self.base_model}

    def optimizer_config(self) -> dict[str, Any]:
        return dict(OPTIMIZERS[self.optimizer])

    def snapshot(self) -> tuple[str, dict[str, np.ndarray]]:
        return self.base_model, self.adapter_tensors()


class FakeSampler:
    """Continues a prompt with tokens shifted by a weight-dependent offset (read from the
    in-flight target at each request when there is one); a prompt seen before is reported
    as a whole-prompt cache hit."""

    def __init__(self, backend: FakeBackend, offset: int, inflight: FakeInflight | None = None):
        self._backend = backend
        self._offset = offset
        self._inflight = inflight
        self._seen: set[tuple[int, ...]] = set()

    @property
    def offset(self) -> int:
        if self._inflight is not None:
            return _offset(self._inflight.snapshot[1])
        return self._offset

    def sample(
        self,
        prompt: Sequence[int],
        *,
        num_samples: int = 1,
        max_tokens: int | None = None,
        stop: str | Sequence[str] | Sequence[int] | None = None,
        prompt_logprobs: bool = False,
        topk_prompt_logprobs: int = 0,
        topk_sample_logprobs: int = 0,
        target_prompt_logprobs: FakeTable | None = None,
        prompt_alt_tokens_k: int = 0,
        prompt_logprobs_last_n: int | None = None,
        record_stability_info: bool = False,
        **_: Any,
    ) -> FakeSample:
        self._backend.record("sample")
        if max_tokens == FAILING_MAX_TOKENS:
            raise FakeUserError(f"the fake sampler refuses max_tokens={FAILING_MAX_TOKENS}")
        key = tuple(prompt)
        hit = len(prompt) if key in self._seen else 0
        self._seen.add(key)
        stops = {s for s in (stop or []) if isinstance(s, int)}
        sequences = []
        for index in range(num_samples):
            tokens: list[int] = []
            reason = "length"
            for step in range(max_tokens if max_tokens is not None else 4):
                token = (prompt[-1] + self.offset + index + step + 1) % 256
                tokens.append(token)
                if token in stops:
                    reason = "stop"
                    break
            topk = None
            if topk_sample_logprobs:
                shape = (len(tokens), topk_sample_logprobs)
                topk = FakeTable(np.ones(shape, np.int64), np.full(shape, -0.5))
            record = {"prompt": list(prompt), "tokens": tokens} if record_stability_info else None
            sequences.append(FakeSequence(tokens, [-0.5] * len(tokens), reason, topk, record))
        first = len(prompt) - prompt_logprobs_last_n if prompt_logprobs_last_n else 1
        rows = len(prompt) - 1
        return FakeSample(
            sequences,
            [None] * first + [-1.0] * (len(prompt) - first) if prompt_logprobs else None,
            [None] * first + [[(1, -0.1), (2, -2.0)][:topk_prompt_logprobs]] * (len(prompt) - first)
            if topk_prompt_logprobs
            else None,
            hit,
            None
            if target_prompt_logprobs is None
            else attrs.evolve(
                target_prompt_logprobs,
                logprobs=np.where(target_prompt_logprobs.token_ids >= 0, -1.0, 0.0),
            ),
            FakeTable(
                np.full((rows, prompt_alt_tokens_k), 1, np.int64),
                np.full((rows, prompt_alt_tokens_k), -0.5),
            )
            if prompt_alt_tokens_k
            else None,
        )


class FakeBackend:
    """Backend protocol implementation with a call log and a gate for holding work back."""

    user_errors: tuple[type[BaseException], ...] = (FakeUserError,)

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.trainers: list[FakeTrainer] = []
        self._lock = threading.Lock()
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()  # set whenever an operation starts (before the gate)

    def record(self, call: str) -> None:
        self.entered.set()
        self.gate.wait(30)
        with self._lock:
            self.calls.append(call)

    def model_names(self) -> list[str]:
        return sorted(MODELS)

    def model_info(self, name: str) -> ModelInfo:
        if name not in MODELS:
            raise FakeUserError(f"Unknown base model {name!r}; known models: {sorted(MODELS)}")
        return ModelInfo(name, "fake", f"/tokenizers/{name}")

    def make_datum(
        self,
        tokens: np.ndarray,
        inputs: Mapping[str, np.ndarray],
        *,
        model_input_spans: Sequence[SpanSpec] | None = None,
        loss_fn_input_spans: Sequence[SpanSpec] | None = None,
    ) -> FakeDatum:
        return FakeDatum(
            tokens,
            inputs,
            None if model_input_spans is None else tuple(model_input_spans),
            None if loss_fn_input_spans is None else tuple(loss_fn_input_spans),
        )

    def target_table(
        self,
        shape: tuple[int, int],
        values: np.ndarray,
        crow: np.ndarray | None = None,
        col: np.ndarray | None = None,
    ) -> FakeTable:
        return FakeTable(np.asarray(values), np.zeros(np.shape(values)), shape, crow, col)

    def check_sample(
        self,
        base_model: str,
        prompt_length: int,
        *,
        prompt_logprobs: bool,
        topk_prompt_logprobs: int,
        topk_sample_logprobs: int,
        target_prompt_logprobs: FakeTable | None,
        prompt_alt_tokens_k: int,
        prompt_logprobs_last_n: int | None,
    ) -> None:
        for name, width in (
            ("topk_prompt_logprobs", topk_prompt_logprobs),
            ("topk_sample_logprobs", topk_sample_logprobs),
            ("prompt_alt_tokens_k", prompt_alt_tokens_k),
        ):
            if not 0 <= width <= 8:
                raise FakeUserError(f"{name} must be in 0..8, got {width}")
        if prompt_logprobs_last_n is not None:
            if not prompt_logprobs:
                raise FakeUserError("prompt_logprobs_last_n requires prompt_logprobs")
            if not 1 <= prompt_logprobs_last_n <= prompt_length - 1:
                raise FakeUserError(f"prompt_logprobs_last_n must be in 1..{prompt_length - 1}")
        if target_prompt_logprobs is not None and target_prompt_logprobs.shape[0] != (
            prompt_length - 1
        ):
            raise FakeUserError(f"target_prompt_logprobs must have {prompt_length - 1} rows")

    def check_optimizer_config(self, config: Mapping[str, Any] | None) -> dict[str, Any]:
        kind = "adamw" if config is None else config.get("type")
        if kind not in OPTIMIZERS:
            raise FakeUserError(f"optimizer type {kind!r} is not supported")
        return dict(OPTIMIZERS[kind])

    def optim_params(self, optimizer_config: Mapping[str, Any], fields: Mapping[str, Any]) -> Any:
        family = self.check_optimizer_config(optimizer_config)["type"]
        if fields.get("type", family) != family:
            raise FakeUserError(f"{fields.get('type')} params for a {family} run")
        return FakeParams(family, float(fields.get("learning_rate", 1e-4)))

    def state_optimizer_config(self, optimizer_tensors: Mapping[str, np.ndarray]) -> dict[str, Any]:
        return dict(OPTIMIZERS["dimuon" if "dimuon.version" in optimizer_tensors else "adamw"])

    def new_trainer(
        self,
        base_model: str,
        *,
        rank: int,
        seed: int | None,
        train_mlp: bool,
        train_attn: bool,
        train_unembed: bool,
        optimizer: Mapping[str, Any] | None = None,
    ) -> FakeTrainer:
        self.record("create_model")
        family = self.check_optimizer_config(optimizer)["type"]
        trainer = FakeTrainer(self, base_model, rank, seed, family)
        self.trainers.append(trainer)
        return trainer

    def compile_custom_loss(
        self, name: str, inputs: Sequence[Mapping[str, Any]], graph: Mapping[str, Any]
    ) -> tuple[str, list[str]]:
        if not graph.get("nodes"):
            raise FakeUserError("custom loss graph has no nodes")
        return name, [str(item["name"]) for item in inputs]

    def new_stability_store(self) -> FakeStore:
        return FakeStore()

    def base_sampler(self, base_model: str) -> FakeSampler:
        return FakeSampler(self, 0)

    def snapshot_sampler(self, snapshot: tuple[str, dict[str, np.ndarray]]) -> FakeSampler:
        return FakeSampler(self, _offset(snapshot[1]))

    def checkpoint_sampler(
        self, base_model: str, adapter: Mapping[str, np.ndarray], adapter_config: Mapping[str, Any]
    ) -> FakeSampler:
        return FakeSampler(self, _offset(adapter))

    def inflight_target(self, snapshot: tuple[str, dict[str, np.ndarray]]) -> FakeInflight:
        return FakeInflight(snapshot)

    def inflight_sampler(self, target: FakeInflight) -> FakeSampler:
        return FakeSampler(self, 0, target)

    def export_external(
        self,
        directory: pathlib.Path,
        base_model: str,
        adapter: Mapping[str, np.ndarray],
        adapter_config: Mapping[str, Any],
    ) -> WrittenFiles:
        from safetensors.numpy import save

        directory.mkdir(parents=True)
        files = {
            "adapter_model.safetensors": save(
                {k: np.ascontiguousarray(v) for k, v in adapter.items()}
            ),
            "adapter_config.json": json.dumps(dict(adapter_config)).encode(),
        }
        for name, content in files.items():
            (directory / name).write_bytes(content)
        return WrittenFiles({name: len(content) for name, content in files.items()})

    def copy_checkpoint(self, source: pathlib.Path, destination: pathlib.Path) -> WrittenFiles:
        return link_or_copy(source, destination)


def _offset(adapter: Mapping[str, np.ndarray]) -> int:
    return round(sum(float(np.abs(a).sum()) for a in adapter.values())) % 7
