"""LoRA training state for one model: forward / forward_backward with the Tinker losses,
gradient accumulation across calls, Adam(W) steps, and exact state round trips.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from tinker.local.compute.blas import limit_blas_threads
from tinker.local.compute.catalogue import ModelConfig, get_model_config, linear_shapes
from tinker.local.compute.errors import UserInputError
from tinker.local.compute.generation import SamplerWeights
from tinker.local.compute.lora import (
    LORA_ALPHA,
    LoraPair,
    adapted_modules,
    adapter_config,
    check_adapter_tensors,
    lora_pairs,
    merge_lora,
    peft_name,
)
from tinker.local.compute.losses import LossSpec, get_loss
from tinker.local.compute.optimizers import Adam, AdamParams
from tinker.local.compute.transformer import (
    Tape,
    Transformer,
    base_weights,
    log_softmax,
    seeded_rng,
)

Array = npt.NDArray[Any]

#: Padded tokens per micro-batch and attention-matrix elements per micro-batch: bounds memory.
MICROBATCH_TOKENS = 1024
MICROBATCH_ATTENTION = 1 << 22
#: A datum joins a padded group only if it is at least this fraction of the group's width.
MIN_FILL = 0.75
OPTIMIZER_STEP_KEY = "step"


@attrs.frozen
class DatumArrays:
    """One datum: model_input tokens (N,) int64 and its loss_fn_inputs, each of length N."""

    tokens: Array
    inputs: Mapping[str, Array]


@attrs.frozen
class LossResult:
    """forward / forward_backward output: per-datum tensors (float32) and summed metrics."""

    loss_fn_output_type: str
    outputs: list[dict[str, Array]]
    metrics: dict[str, float]


class LoraTrainer:
    """Trainable LoRA adapters on a frozen local base model, with Adam state and grad buffers.

    Calls are serialised by a lock; the engine orders them by seq_id.
    """

    def __init__(
        self,
        base_model: str,
        *,
        rank: int,
        seed: int | None,
        train_mlp: bool = True,
        train_attn: bool = True,
        train_unembed: bool = True,
        dtype: npt.DTypeLike = np.float32,
    ) -> None:
        limit_blas_threads()
        self.config: ModelConfig = get_model_config(base_model)
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise UserInputError(f"lora rank must be a positive integer, got {rank!r}")
        if not (train_mlp or train_attn or train_unembed):
            raise UserInputError(
                "at least one of train_mlp, train_attn, train_unembed must be True"
            )
        self.rank = rank
        self.lora_alpha = LORA_ALPHA
        self.dtype = np.dtype(dtype)
        self.modules = adapted_modules(
            self.config, attn=train_attn, mlp=train_mlp, unembed=train_unembed
        )
        self._base = base_weights(self.config, self.dtype)
        self._params = self._init_params(seed)
        self._grads = {name: np.zeros_like(p) for name, p in self._params.items()}
        self._adam = Adam(self._params)
        self._network: Transformer | None = None
        self._clock = 0
        self._lock = threading.RLock()

    @property
    def scale(self) -> float:
        """LoRA output scale alpha / r."""
        return self.lora_alpha / self.rank

    def _init_params(self, seed: int | None) -> dict[str, Array]:
        """A ~ U(-1/sqrt(in), 1/sqrt(in)) from `seed` (None: fresh entropy), B = 0."""
        rng = seeded_rng(seed, "lora seed")
        shapes = linear_shapes(self.config)
        params: dict[str, Array] = {}
        for module in self.modules:
            out_dim, in_dim = shapes[module]
            bound = 1.0 / np.sqrt(in_dim)
            params[peft_name(module, "A")] = rng.uniform(-bound, bound, (self.rank, in_dim)).astype(
                self.dtype
            )
            params[peft_name(module, "B")] = np.zeros((out_dim, self.rank), dtype=self.dtype)
        return params

    def _pairs(self, tensors: Mapping[str, Array]) -> dict[str, LoraPair]:
        return lora_pairs(tensors, self.modules)

    def _transformer(self) -> Transformer:
        if self._network is None:
            merged = merge_lora(self._base, self._pairs(self._params), self.scale)
            self._network = Transformer(self.config, merged)
        return self._network

    # -- forward / backward -------------------------------------------------------------

    def forward(
        self, data: Sequence[DatumArrays], loss_fn: str, loss_fn_config: Mapping[str, float] | None
    ) -> LossResult:
        """Loss and per-datum outputs at the current weights; gradients are not touched."""
        return self._run(data, loss_fn, loss_fn_config, backward=False)

    def forward_backward(
        self, data: Sequence[DatumArrays], loss_fn: str, loss_fn_config: Mapping[str, float] | None
    ) -> LossResult:
        """As forward, and adds dL/d(adapter) into the gradient buffers (sum reduction)."""
        return self._run(data, loss_fn, loss_fn_config, backward=True)

    def _run(
        self,
        data: Sequence[DatumArrays],
        loss_fn: str,
        loss_fn_config: Mapping[str, float] | None,
        *,
        backward: bool,
    ) -> LossResult:
        spec = get_loss(loss_fn)
        config = spec.resolve_config(loss_fn_config)
        self._check_data(spec, data)
        with self._lock:
            network = self._transformer()
            outputs: list[dict[str, Array]] = [{} for _ in data]
            total = 0.0
            for group in _microbatches([len(d.tokens) for d in data], self.config.n_heads):
                total += self._run_group(network, spec, config, data, group, outputs, backward)
            self._clock += 1
            metrics = {"loss:sum": total, "clock_cycle:unique": float(self._clock)}
        return LossResult(spec.output_type, outputs, metrics)

    def _check_data(self, spec: LossSpec, data: Sequence[DatumArrays]) -> None:
        if not data:
            raise UserInputError("data must contain at least one datum")
        limit = self.config.max_seq_len
        for index, datum in enumerate(data):
            tokens = datum.tokens
            if tokens.ndim != 1 or not np.issubdtype(tokens.dtype, np.integer):
                raise UserInputError(
                    f"datum {index}: model_input must be a 1-D list of integer tokens"
                )
            if not 1 <= tokens.shape[0] <= limit:
                raise UserInputError(
                    f"datum {index}: model_input has {tokens.shape[0]} tokens; "
                    f"{self.config.name} accepts 1..{limit}"
                )
            bad = np.flatnonzero((tokens < 0) | (tokens >= self.config.vocab_size))
            if bad.size:
                raise UserInputError(
                    f"datum {index}: model_input token {tokens[bad[0]]} at position {bad[0]} is "
                    f"outside the vocabulary (0..{self.config.vocab_size - 1})"
                )
            spec.check_inputs(index, tokens.shape[0], datum.inputs, self.config.vocab_size)

    def _run_group(
        self,
        network: Transformer,
        spec: LossSpec,
        config: Mapping[str, float],
        data: Sequence[DatumArrays],
        group: list[int],
        outputs: list[dict[str, Array]],
        backward: bool,
    ) -> float:
        """Forward (and backward) one padded micro-batch; fills `outputs`, returns its loss sum."""
        lengths = [len(data[i].tokens) for i in group]
        width = max(lengths)
        tokens = np.zeros((len(group), width), dtype=np.int64)
        targets = np.zeros((len(group), width), dtype=np.int64)
        for row, i in enumerate(group):
            tokens[row, : lengths[row]] = data[i].tokens
            targets[row, : lengths[row]] = data[i].inputs["target_tokens"]
        tapes: list[Tape] | None = [] if backward else None
        logits = network.forward(tokens, tape=tapes)
        logp = log_softmax(logits)
        picked = np.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
        grad_lp = np.zeros_like(picked)
        total = 0.0
        for row, i in enumerate(group):
            n = lengths[row]
            lp = picked[row, :n]
            token_loss = spec.formula(lp, data[i].inputs, config)
            grad_lp[row, :n] = token_loss.grad
            outputs[i] = {
                "logprobs": lp.astype(np.float32),
                "elementwise_loss": token_loss.elementwise.astype(np.float32),
            }
            total += float(np.sum(token_loss.elementwise, dtype=np.float64))
        if tapes:
            # dL/dlogits = g * (onehot(target) - softmax)
            dlogits = -np.exp(logp) * grad_lp[..., None]
            np.put_along_axis(
                dlogits,
                targets[..., None],
                np.take_along_axis(dlogits, targets[..., None], axis=-1) + grad_lp[..., None],
                axis=-1,
            )
            grads = network.backward(tapes[0], dlogits, self._pairs(self._params), self.scale)
            for module, pair in grads.items():
                self._grads[peft_name(module, "A")] += pair.a
                self._grads[peft_name(module, "B")] += pair.b
        return total

    # -- optimizer ------------------------------------------------------------------------

    def optim_step(
        self,
        *,
        learning_rate: float = 1e-4,
        beta1: float = 0.9,
        beta2: float = 0.95,
        eps: float = 1e-12,
        weight_decay: float = 0.0,
        grad_clip_norm: float = 0.0,
    ) -> dict[str, float] | None:
        """One Adam(W) step on the accumulated gradients, which are then zeroed."""
        params = AdamParams(learning_rate, beta1, beta2, eps, weight_decay, grad_clip_norm)
        with self._lock:
            metrics = self._adam.step(self._params, self._grads, params)
            self._network = None
        return metrics

    # -- state ----------------------------------------------------------------------------

    def adapter_tensors(self) -> dict[str, Array]:
        """LoRA weights under PEFT-style names, as float32 copies."""
        with self._lock:
            return {name: p.astype(np.float32, copy=True) for name, p in self._params.items()}

    def optimizer_tensors(self) -> dict[str, Array]:
        """Adam state: `<name>.exp_avg`, `<name>.exp_avg_sq` per adapter tensor and `step`."""
        with self._lock:
            tensors = {OPTIMIZER_STEP_KEY: np.array([self._adam.step_count], dtype=np.int64)}
            for name in self._params:
                tensors[f"{name}.exp_avg"] = self._adam.exp_avg[name].astype(np.float32, copy=True)
                tensors[f"{name}.exp_avg_sq"] = self._adam.exp_avg_sq[name].astype(
                    np.float32, copy=True
                )
            return tensors

    def accumulated_gradients(self) -> dict[str, Array]:
        """Copies of the gradient buffers (what the next optim_step will use)."""
        with self._lock:
            return {name: g.copy() for name, g in self._grads.items()}

    def load(self, adapter: Mapping[str, Array], optimizer: Mapping[str, Array] | None) -> None:
        """Replace the weights (and Adam state; None -> fresh Adam). Gradients are zeroed."""
        expected = {name: p.shape for name, p in self._params.items()}
        check_adapter_tensors(adapter, expected, what="adapter")
        if optimizer is not None:
            moments = {
                f"{n}.{kind}": s for n, s in expected.items() for kind in ("exp_avg", "exp_avg_sq")
            }
            check_adapter_tensors(
                {k: v for k, v in optimizer.items() if k != OPTIMIZER_STEP_KEY},
                moments,
                what="optimizer",
            )
            step = np.asarray(optimizer.get(OPTIMIZER_STEP_KEY, np.array([-1])))
            if (
                step.size != 1
                or not np.issubdtype(step.dtype, np.integer)
                or int(step.ravel()[0]) < 0
            ):
                raise UserInputError("optimizer state needs a non-negative integer 'step' tensor")
        with self._lock:
            self._params = {n: np.array(adapter[n], dtype=self.dtype) for n in expected}
            self._adam = Adam(self._params)
            if optimizer is not None:
                self._adam.step_count = int(np.asarray(optimizer[OPTIMIZER_STEP_KEY]).ravel()[0])
                for n in expected:
                    self._adam.exp_avg[n] = np.array(optimizer[f"{n}.exp_avg"], dtype=self.dtype)
                    self._adam.exp_avg_sq[n] = np.array(
                        optimizer[f"{n}.exp_avg_sq"], dtype=self.dtype
                    )
            self._grads = {name: np.zeros_like(p) for name, p in self._params.items()}
            self._network = None

    def adapter_config(self) -> dict[str, Any]:
        """adapter_config.json content (PEFT keys)."""
        return adapter_config(self.config.name, self.rank, self.lora_alpha, self.modules)

    def snapshot(self) -> SamplerWeights:
        """An immutable copy of the current adapter for sampling."""
        return SamplerWeights.create(
            self.config.name, self.adapter_tensors(), self.rank, self.lora_alpha
        )


def _microbatches(lengths: Sequence[int], n_heads: int) -> list[list[int]]:
    """Datum indices grouped longest-first into padded batches of similar lengths.

    A group closes when the next datum is shorter than MIN_FILL of the group's width (bounds
    padding waste) or when it would exceed the token or attention-matrix budget (bounds memory).
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    groups: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current:
            width = lengths[current[0]]
            rows = len(current) + 1
            if (
                lengths[i] < MIN_FILL * width
                or rows * width > MICROBATCH_TOKENS
                or rows * n_heads * width * width > MICROBATCH_ATTENTION
            ):
                groups.append(current)
                current = []
        current.append(i)
    if current:
        groups.append(current)
    return groups
