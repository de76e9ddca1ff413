"""A small, deterministic stand-in for the compute backend that follows its contract.

It lets the server tests exercise ordering, futures and persistence without the numpy model:
the "model" is one adapter matrix, forward returns logprobs derived from the tokens and the
weights, forward_backward accumulates a gradient, optim_step applies it. Every call is logged
(thread-safe) so tests can assert execution order; `gate` can hold operations back.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from tinker.local.compute.backend import ModelInfo


class FakeUserError(ValueError):
    """Bad input as the fake backend sees it (category "user")."""


MODELS = {"fake/tiny": 16, "fake/small": 32}


@attrs.frozen
class FakeDatum:
    tokens: np.ndarray
    inputs: Mapping[str, np.ndarray]


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


@attrs.frozen
class FakeSample:
    sequences: list[FakeSequence]
    prompt_logprobs: list[float | None] | None
    topk_prompt_logprobs: list[list[tuple[int, float]] | None] | None


class FakeTrainer:
    """One adapter tensor pair; gradients accumulate until optim_step."""

    def __init__(self, backend: FakeBackend, base_model: str, rank: int, seed: int | None) -> None:
        self._backend = backend
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
        self, data: Sequence[FakeDatum], loss_fn: str, loss_fn_config: Mapping[str, float] | None
    ) -> FakeLoss:
        self._backend.record("forward")
        return self._loss(data, loss_fn, loss_fn_config)

    def forward_backward(
        self, data: Sequence[FakeDatum], loss_fn: str, loss_fn_config: Mapping[str, float] | None
    ) -> FakeLoss:
        self._backend.record("forward_backward")
        result = self._loss(data, loss_fn, loss_fn_config)
        for grad in self.grad.values():
            grad += 1.0
        return result

    def _loss(
        self, data: Sequence[FakeDatum], loss_fn: str, config: Mapping[str, float] | None
    ) -> FakeLoss:
        if config and "explode" in config:
            raise RuntimeError("the fake backend exploded")
        if loss_fn != "cross_entropy":
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

    def optim_step(self, *, learning_rate: float = 1e-4, **_: float) -> dict[str, float] | None:
        self._backend.record("optim_step")
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

    def snapshot(self) -> tuple[str, dict[str, np.ndarray]]:
        return self.base_model, self.adapter_tensors()


class FakeSampler:
    """Continues a prompt with tokens shifted by a weight-dependent offset."""

    def __init__(self, backend: FakeBackend, offset: int) -> None:
        self._backend = backend
        self.offset = offset

    def sample(
        self,
        prompt: Sequence[int],
        *,
        num_samples: int = 1,
        max_tokens: int | None = None,
        stop: str | Sequence[str] | Sequence[int] | None = None,
        prompt_logprobs: bool = False,
        topk_prompt_logprobs: int = 0,
        **_: Any,
    ) -> FakeSample:
        self._backend.record("sample")
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
            sequences.append(FakeSequence(tokens, [-0.5] * len(tokens), reason))
        return FakeSample(
            sequences,
            [None] + [-1.0] * (len(prompt) - 1) if prompt_logprobs else None,
            [None] + [[(1, -0.1), (2, -2.0)][:topk_prompt_logprobs]] * (len(prompt) - 1)
            if topk_prompt_logprobs
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

    def make_datum(self, tokens: np.ndarray, inputs: Mapping[str, np.ndarray]) -> FakeDatum:
        return FakeDatum(tokens, inputs)

    def new_trainer(
        self,
        base_model: str,
        *,
        rank: int,
        seed: int | None,
        train_mlp: bool,
        train_attn: bool,
        train_unembed: bool,
    ) -> FakeTrainer:
        self.record("create_model")
        trainer = FakeTrainer(self, base_model, rank, seed)
        self.trainers.append(trainer)
        return trainer

    def base_sampler(self, base_model: str) -> FakeSampler:
        return FakeSampler(self, 0)

    def snapshot_sampler(self, snapshot: tuple[str, dict[str, np.ndarray]]) -> FakeSampler:
        return FakeSampler(self, _offset(snapshot[1]))

    def checkpoint_sampler(
        self, base_model: str, adapter: Mapping[str, np.ndarray], adapter_config: Mapping[str, Any]
    ) -> FakeSampler:
        return FakeSampler(self, _offset(adapter))


def _offset(adapter: Mapping[str, np.ndarray]) -> int:
    return round(sum(float(np.abs(a).sum()) for a in adapter.values())) % 7
