"""LoRA training state for one model: forward / forward_backward with the Tinker losses
(built-in, stable_reinforce against recorded sampler behaviour, and uploaded custom graphs),
gradient accumulation across calls, AdamW or Dimuon steps, and exact state round trips.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from tinker.local.compute.blas import limit_blas_threads
from tinker.local.compute.catalogue import ModelConfig, get_model_config, linear_shapes
from tinker.local.compute.custom_loss import CustomLoss, reduce_metrics
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
from tinker.local.compute.losses import SAMPLED_MASK, get_loss
from tinker.local.compute.optimizer_choice import OptimizerChoice, OptimizerParams
from tinker.local.compute.optimizers import AdamParams, read_step
from tinker.local.compute.stability import ProvenanceSpan, StabilityStore, resolve_behaviour
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
CUSTOM_LOSS = "custom"


@attrs.frozen
class DatumArrays:
    """One datum: model_input tokens (N,) int64, its loss_fn_inputs (first dimension N), and
    optionally its provenance: spans tiling the model_input and the target_tokens."""

    tokens: Array
    inputs: Mapping[str, Array]
    model_input_spans: tuple[ProvenanceSpan, ...] | None = None
    loss_fn_input_spans: tuple[ProvenanceSpan, ...] | None = None


@attrs.frozen
class DatumLoss:
    """One datum's summed loss, d loss / d logprobs, per-token losses (None for custom losses,
    which have no per-token value) and metrics."""

    loss: float
    grad: Array
    elementwise: Array | None
    metrics: Mapping[str, float]


DatumLossFn = Callable[[int, Array], DatumLoss]


@attrs.frozen
class LossResult:
    """forward / forward_backward output: per-datum tensors (float32) and summed metrics."""

    loss_fn_output_type: str
    outputs: list[dict[str, Array]]
    metrics: dict[str, float]


class LoraTrainer:
    """Trainable LoRA adapters on a frozen local base model, with optimizer state (AdamW or
    Dimuon, fixed at creation) and gradient buffers.

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
        optimizer: OptimizerChoice | Mapping[str, Any] | str | None = None,
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
        if not isinstance(optimizer, OptimizerChoice):
            optimizer = OptimizerChoice.parse(optimizer)
        self.optimizer = optimizer
        self._optimizer = self.optimizer.new_state(self._params)
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
        self,
        data: Sequence[DatumArrays],
        loss_fn: str,
        loss_fn_config: Mapping[str, Any] | None,
        *,
        custom_loss: CustomLoss | None = None,
        stability: StabilityStore | None = None,
    ) -> LossResult:
        """Loss and per-datum outputs at the current weights; gradients are not touched.

        `custom_loss` is the compiled graph for loss_fn "custom" (the server resolves the
        config's loss_id); `stability` is the session's store for stable_reinforce.
        """
        return self._run(data, loss_fn, loss_fn_config, custom_loss, stability, backward=False)

    def forward_backward(
        self,
        data: Sequence[DatumArrays],
        loss_fn: str,
        loss_fn_config: Mapping[str, Any] | None,
        *,
        custom_loss: CustomLoss | None = None,
        stability: StabilityStore | None = None,
    ) -> LossResult:
        """As forward, and adds dL/d(adapter) into the gradient buffers (sum reduction)."""
        return self._run(data, loss_fn, loss_fn_config, custom_loss, stability, backward=True)

    def _run(
        self,
        data: Sequence[DatumArrays],
        loss_fn: str,
        loss_fn_config: Mapping[str, Any] | None,
        custom_loss: CustomLoss | None,
        stability: StabilityStore | None,
        *,
        backward: bool,
    ) -> LossResult:
        if loss_fn == CUSTOM_LOSS:
            output_type, loss_of = self._custom_loss(data, loss_fn_config, custom_loss)
        else:
            output_type, loss_of = self._builtin_loss(data, loss_fn, loss_fn_config, stability)
        with self._lock:
            network = self._transformer()
            outputs: list[dict[str, Array]] = [{} for _ in data]
            per_datum: list[Mapping[str, float]] = [{} for _ in data]
            total = 0.0
            for group in _microbatches([len(d.tokens) for d in data], self.config.n_heads):
                total += self._run_group(
                    network, loss_of, data, group, outputs, per_datum, backward
                )
            self._clock += 1
            metrics = {"loss:sum": total, "clock_cycle:unique": float(self._clock)}
            metrics.update(reduce_metrics(per_datum))
        return LossResult(output_type, outputs, metrics)

    def _builtin_loss(
        self,
        data: Sequence[DatumArrays],
        loss_fn: str,
        loss_fn_config: Mapping[str, Any] | None,
        stability: StabilityStore | None,
    ) -> tuple[str, DatumLossFn]:
        """A built-in loss: checked config and inputs, recorded behaviour where needed."""
        spec = get_loss(loss_fn)
        config = spec.resolve_config(loss_fn_config)
        self._check_data(data, spec.check_inputs)
        inputs = [d.inputs for d in data]
        if spec.needs_provenance:
            store = stability if stability is not None else StabilityStore()
            inputs = [self._with_behaviour(i, d, store) for i, d in enumerate(data)]

        def loss_of(index: int, lp: Array) -> DatumLoss:
            token_loss = spec.formula(lp, inputs[index], config)
            total = float(np.sum(token_loss.elementwise, dtype=np.float64))
            return DatumLoss(total, token_loss.grad, token_loss.elementwise, {})

        return spec.output_type, loss_of

    def _custom_loss(
        self,
        data: Sequence[DatumArrays],
        loss_fn_config: Mapping[str, Any] | None,
        custom_loss: CustomLoss | None,
    ) -> tuple[str, DatumLossFn]:
        """An uploaded graph, run per datum with exact gradients (custom_loss.py)."""
        if custom_loss is None:
            raise UserInputError(
                "loss_fn 'custom' needs the loss_id of a loss created with create_custom_loss"
            )
        unknown = sorted(set(loss_fn_config or {}) - {"loss_id"})
        if unknown:
            raise UserInputError(f"loss_fn_config keys {unknown} are not accepted by 'custom'")

        def check(index: int, length: int, inputs: Mapping[str, Array], vocab_size: int) -> None:
            custom_loss.check_datum(index, inputs)
            _check_targets(index, length, inputs["target_tokens"], vocab_size)

        self._check_data(data, check)

        def loss_of(index: int, lp: Array) -> DatumLoss:
            result = custom_loss.evaluate(index, lp, data[index].inputs)
            return DatumLoss(result.loss, result.grad.astype(lp.dtype), None, result.metrics)

        return "CustomLossReturn", loss_of

    @staticmethod
    def _with_behaviour(index: int, datum: DatumArrays, store: StabilityStore) -> dict[str, Array]:
        """The datum's inputs with `logprobs` replaced by the recorded behaviour log-probs."""
        targets = datum.inputs["target_tokens"]
        behaviour = resolve_behaviour(index, targets, datum.loss_fn_input_spans, store)
        return {
            **datum.inputs,
            "logprobs": behaviour.logprobs,
            SAMPLED_MASK: behaviour.sampled.astype(np.float64),
        }

    def _check_data(
        self,
        data: Sequence[DatumArrays],
        check_inputs: Callable[[int, int, Mapping[str, Array], int], None],
    ) -> None:
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
            check_inputs(index, tokens.shape[0], datum.inputs, self.config.vocab_size)

    def _run_group(
        self,
        network: Transformer,
        loss_of: DatumLossFn,
        data: Sequence[DatumArrays],
        group: list[int],
        outputs: list[dict[str, Array]],
        per_datum: list[Mapping[str, float]],
        backward: bool,
    ) -> float:
        """Forward (and backward) one padded micro-batch; fills `outputs` and `per_datum`,
        returns its loss sum. Targets may be (N,) or (N, K): K logprobs per position."""
        lengths = [len(data[i].tokens) for i in group]
        width = max(lengths)
        columns = max(_columns(data[i].inputs["target_tokens"]) for i in group)
        tokens = np.zeros((len(group), width), dtype=np.int64)
        targets = np.zeros((len(group), width, columns), dtype=np.int64)
        for row, i in enumerate(group):
            target = data[i].inputs["target_tokens"]
            tokens[row, : lengths[row]] = data[i].tokens
            targets[row, : lengths[row], : _columns(target)] = target.reshape(lengths[row], -1)
        tapes: list[Tape] | None = [] if backward else None
        logits = network.forward(tokens, tape=tapes)
        logp = log_softmax(logits)
        picked = np.take_along_axis(logp, targets, axis=-1)
        grad_lp = np.zeros_like(picked)
        total = 0.0
        for row, i in enumerate(group):
            n, target = lengths[row], data[i].inputs["target_tokens"]
            lp = picked[row, :n, : _columns(target)].reshape(target.shape)
            result = loss_of(i, lp)
            grad_lp[row, :n, : _columns(target)] = result.grad.reshape(n, -1)
            outputs[i] = {"logprobs": lp.astype(np.float32)}
            if result.elementwise is not None:
                outputs[i]["elementwise_loss"] = result.elementwise.astype(np.float32)
            per_datum[i] = result.metrics
            total += result.loss
        if tapes:
            # dL/dlogits = sum_k g_k * (onehot(target_k) - softmax)
            dlogits = -np.exp(logp) * grad_lp.sum(axis=-1, keepdims=True)
            for k in range(columns):
                column = targets[..., k : k + 1]
                np.put_along_axis(
                    dlogits,
                    column,
                    np.take_along_axis(dlogits, column, axis=-1) + grad_lp[..., k : k + 1],
                    axis=-1,
                )
            grads = network.backward(tapes[0], dlogits, self._pairs(self._params), self.scale)
            for module, pair in grads.items():
                self._grads[peft_name(module, "A")] += pair.a
                self._grads[peft_name(module, "B")] += pair.b
        return total

    # -- optimizer ------------------------------------------------------------------------

    def optim_step(
        self, params: OptimizerParams | None = None, **adam: float
    ) -> dict[str, float] | None:
        """One step of this run's optimizer on the accumulated gradients, then zeroed.

        `params` is AdamParams or DimuonParams (it must match the optimizer chosen at
        creation); Adam keyword arguments (learning_rate=..., beta1=...) build AdamParams.
        """
        if params is None:
            params = AdamParams(**adam)
        elif adam:
            raise TypeError("pass either optimizer params or Adam keyword arguments, not both")
        self.optimizer.check_params(params)
        with self._lock:
            metrics = self._optimizer.step(self._params, self._grads, params)
            self._network = None
        return metrics

    # -- state ----------------------------------------------------------------------------

    def adapter_tensors(self) -> dict[str, Array]:
        """LoRA weights under PEFT-style names, as float32 copies."""
        with self._lock:
            return {name: p.astype(np.float32, copy=True) for name, p in self._params.items()}

    def optimizer_tensors(self) -> dict[str, Array]:
        """Optimizer state: Adam's `<name>.exp_avg`, `<name>.exp_avg_sq` or Dimuon's
        `<name>.momentum` and marker, plus `step` (optimizers.py, dimuon.py)."""
        with self._lock:
            return self._optimizer.state_tensors()

    def optimizer_config(self) -> dict[str, Any]:
        """This run's optimizer_config ({"type": "adamw"} or {"type": "dimuon", ...})."""
        return self.optimizer.config()

    def accumulated_gradients(self) -> dict[str, Array]:
        """Copies of the gradient buffers (what the next optim_step will use)."""
        with self._lock:
            return {name: g.copy() for name, g in self._grads.items()}

    def load(self, adapter: Mapping[str, Array], optimizer: Mapping[str, Array] | None) -> None:
        """Replace the weights (and optimizer state; None -> fresh state). Gradients are
        zeroed. State of the other optimizer family is rejected."""
        expected = {name: p.shape for name, p in self._params.items()}
        check_adapter_tensors(adapter, expected, what="adapter")
        if optimizer is not None:
            self.optimizer.check_state_kind(optimizer)
            bookkeeping = self.optimizer.bookkeeping_keys()
            check_adapter_tensors(
                {k: v for k, v in optimizer.items() if k not in bookkeeping},
                self.optimizer.state_shapes(expected),
                what="optimizer",
            )
            read_step(optimizer)
        with self._lock:
            self._params = {n: np.array(adapter[n], dtype=self.dtype) for n in expected}
            self._optimizer = self.optimizer.new_state(self._params)
            if optimizer is not None:
                self._optimizer.load_state(optimizer)
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


def _columns(targets: Array) -> int:
    """Logprobs per position: 1 for (N,) targets, K for (N, K)."""
    return 1 if targets.ndim == 1 else int(targets.shape[1])


def _check_targets(index: int, length: int, targets: Array, vocab_size: int) -> None:
    """target_tokens of shape (N,) or (N, K), K >= 1, integers inside the vocabulary."""
    where = f"datum {index}"
    if targets.ndim not in (1, 2) or targets.shape[0] != length or 0 in targets.shape:
        raise UserInputError(
            f"{where}: target_tokens has shape {list(targets.shape)}, expected [{length}] or "
            f"[{length}, K]"
        )
    if not np.issubdtype(targets.dtype, np.integer):
        raise UserInputError(f"{where}: target_tokens must be integers, got {targets.dtype}")
    bad = np.flatnonzero((targets.ravel() < 0) | (targets.ravel() >= vocab_size))
    if bad.size:
        raise UserInputError(
            f"{where}: target_tokens contains {targets.ravel()[bad[0]]}, outside the "
            f"vocabulary (0..{vocab_size - 1})"
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
