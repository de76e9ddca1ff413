"""Numpy decoder-only transformer with LoRA: forward (optionally taped, optionally KV-cached)
and one exact backward pass that yields the LoRA gradients (base weights frozen) or, for
pretraining, the gradients of every weight.

Architecture: token embedding, n_layers pre-norm blocks (RMSNorm -> multi-head causal
attention with rotary positions -> residual; RMSNorm -> SiLU-gated MLP -> residual),
final RMSNorm, untied LM head. Linear weights are stored (out, in): y = x @ W.T. The forward
pass records on a Tape what the backward pass needs; the backward pass walks the same steps in
reverse (MLP before attention in each block).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from tinker.local.compute.catalogue import (
    EMBED,
    FINAL_NORM,
    UNEMBED,
    ModelConfig,
    attn_module,
    mlp_module,
    norm_weight,
    weight_shapes,
)
from tinker.local.compute.errors import UserInputError
from tinker.local.compute.lora import LoraPair
from tinker.local.compute.pretrained import load_weights

Array = npt.NDArray[Any]


def seeded_rng(seed: int | None, what: str) -> np.random.Generator:
    """Generator for a user-supplied seed (None: fresh OS entropy); bad seeds are user errors."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise UserInputError(f"{what} must be a non-negative integer or None, got {seed!r}")
    return np.random.default_rng(seed)


def _name_seed(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")


def random_base_weights(config: ModelConfig) -> dict[str, Array]:
    """Seeded random weights (float64), deterministic from the model family's name: the
    weights of a `-random` model and the starting point of pretraining.

    Hidden projections use std 1/sqrt(fan_in) (residual outputs further / sqrt(2 layers)), so
    the frozen random network already mixes context; the LM head starts small (near-uniform
    predictions, loss ~ log(vocab)).
    """
    rng = np.random.default_rng(_name_seed(config.family))
    weights: dict[str, Array] = {}
    for name, shape in weight_shapes(config).items():
        if len(shape) == 1:  # norm gains
            weights[name] = np.ones(shape)
            continue
        if name == EMBED:
            std = 1.0
        elif name == UNEMBED:
            std = config.init_std
        elif name.endswith(("o_proj", "down_proj")):
            std = 1.0 / np.sqrt(shape[1] * 2 * config.n_layers)
        else:
            std = 1.0 / np.sqrt(shape[1])
        weights[name] = rng.normal(0.0, std, shape)
    return weights


_BASE_CACHE: dict[tuple[str, str], Mapping[str, Array]] = {}
_BASE_LOCK = threading.Lock()


def base_weights(config: ModelConfig, dtype: npt.DTypeLike = np.float32) -> Mapping[str, Array]:
    """Frozen base weights (the shipped pretrained ones, or the random initialisation), loaded
    once per process and dtype; the arrays are read-only."""
    key = (config.name, np.dtype(dtype).name)
    with _BASE_LOCK:
        cached = _BASE_CACHE.get(key)
        if cached is None:
            source = load_weights(config) if config.pretrained else random_base_weights(config)
            cached = {}
            for name, value in source.items():
                array = np.ascontiguousarray(value, dtype=dtype)
                array.flags.writeable = False
                cached[name] = array
            _BASE_CACHE[key] = cached
        return cached


def _rms_norm(x: Array, weight: Array, eps: float) -> tuple[Array, Array]:
    """RMSNorm; returns the output and 1/rms (kept for the backward pass)."""
    inv = 1.0 / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    return x * inv * weight, inv


def _rms_norm_backward(dy: Array, x: Array, inv: Array, weight: Array) -> Array:
    dxhat = dy * weight
    xhat = x * inv
    dx: Array = inv * (dxhat - xhat * np.mean(dxhat * xhat, axis=-1, keepdims=True))
    return dx


def _linear(x: Array, w: Array) -> Array:
    """x (..., in) @ W.T with the batch flattened into one matrix product."""
    out: Array = (x.reshape(-1, x.shape[-1]) @ w.T).reshape((*x.shape[:-1], w.shape[0]))
    return out


def _linear_input_grad(dy: Array, w: Array) -> Array:
    out: Array = (dy.reshape(-1, dy.shape[-1]) @ w).reshape((*dy.shape[:-1], w.shape[1]))
    return out


def _silu(a: Array) -> tuple[Array, Array]:
    """SiLU and the logistic sigmoid it was built from."""
    sig = 1.0 / (1.0 + np.exp(-a))
    return a * sig, sig


class RopeTable:
    """Rotary-position cos/sin tables (rotate-half convention) for one config and dtype."""

    def __init__(self, config: ModelConfig, dtype: npt.DTypeLike) -> None:
        half = config.head_dim // 2
        freqs = config.rope_theta ** (-np.arange(half, dtype=np.float64) / half)
        angles = np.arange(config.max_seq_len, dtype=np.float64)[:, None] * freqs[None, :]
        self.cos = np.cos(angles).astype(dtype)
        self.sin = np.sin(angles).astype(dtype)

    def rotate(self, x: Array, start: int, *, inverse: bool = False) -> Array:
        """Rotate x (B, H, T, Dh) for positions start..start+T-1 (inverse = transpose)."""
        t = x.shape[-2]
        cos = self.cos[start : start + t]
        sin = self.sin[start : start + t]
        if inverse:
            sin = -sin
        half = x.shape[-1] // 2
        x1, x2 = x[..., :half], x[..., half:]
        return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


class KVCache:
    """Per-layer keys and values (B, H, capacity, Dh) already rotated; `length` is filled."""

    def __init__(
        self, config: ModelConfig, batch: int, capacity: int, dtype: npt.DTypeLike
    ) -> None:
        shape = (batch, config.n_heads, capacity, config.head_dim)
        self.keys = [np.zeros(shape, dtype=dtype) for _ in range(config.n_layers)]
        self.values = [np.zeros(shape, dtype=dtype) for _ in range(config.n_layers)]
        self.length = 0

    def select(self, rows: Array) -> None:
        """Keep only the given batch rows (repeats allowed: a row can fan out to samples)."""
        self.keys = [k[rows] for k in self.keys]
        self.values = [v[rows] for v in self.values]


@attrs.define
class AttentionTape:
    """What attention's backward pass needs: rotated q and k, v (B, H, T, Dh), the attention
    probabilities (B, H, T, T) and the heads' merged output (B, T, D)."""

    q: Array
    k: Array
    v: Array
    probs: Array
    ctx: Array


@attrs.define
class MlpTape:
    """What the MLP's backward pass needs: both projections, the SiLU output and its sigmoid,
    and the gated product."""

    gate: Array
    gate_act: Array
    gate_sig: Array
    up: Array
    act: Array


@attrs.define
class BlockTape:
    """One block's activations: its input x, the normed attention input (n1, 1/rms inv1), the
    residual after attention (mid), the normed MLP input (n2, inv2) and the two sub-tapes."""

    x: Array
    n1: Array
    inv1: Array
    attention: AttentionTape
    mid: Array
    n2: Array
    inv2: Array
    mlp: MlpTape


@attrs.define
class Tape:
    """Everything recorded by a taped forward pass."""

    tokens: Array
    layers: list[BlockTape]
    final_x: Array
    final_n: Array
    final_inv: Array


class Transformer:
    """The network for one set of effective (LoRA-merged) weights; holds no mutable state."""

    def __init__(self, config: ModelConfig, weights: Mapping[str, Array]) -> None:
        self.config = config
        self.weights = weights
        self.dtype = weights[EMBED].dtype
        self.rope = _rope_table(config, self.dtype)

    def forward(
        self, tokens: Array, *, tape: list[Tape] | None = None, cache: KVCache | None = None
    ) -> Array:
        """Logits (B, T, V) for tokens (B, T); appends a Tape to `tape` if given.

        With `cache`, the tokens continue the cached prefix and their keys/values are appended.
        """
        cfg, w = self.config, self.weights
        start = cache.length if cache is not None else 0
        if start + tokens.shape[1] > cfg.max_seq_len:
            raise ValueError(f"sequence longer than max_seq_len={cfg.max_seq_len}")
        x = w[EMBED][tokens]
        block_tapes: list[BlockTape] = []
        for layer in range(cfg.n_layers):
            x, block_tape = self._block(layer, x, start, cache)
            if tape is not None:
                block_tapes.append(block_tape)
        final_n, final_inv = _rms_norm(x, w[FINAL_NORM], cfg.norm_eps)
        logits = _linear(final_n, w[UNEMBED])
        if cache is not None:
            cache.length += tokens.shape[1]
        if tape is not None:
            tape.append(Tape(tokens, block_tapes, x, final_n, final_inv))
        return logits

    def _block(
        self, layer: int, x: Array, start: int, cache: KVCache | None
    ) -> tuple[Array, BlockTape]:
        """A pre-norm block: x + attention(norm(x)), then + mlp(norm(that))."""
        cfg, w = self.config, self.weights
        n1, inv1 = _rms_norm(x, w[norm_weight(layer, "input_layernorm")], cfg.norm_eps)
        attended, attention = self._attention(layer, n1, start, cache)
        mid = x + attended
        n2, inv2 = _rms_norm(mid, w[norm_weight(layer, "post_attention_layernorm")], cfg.norm_eps)
        transformed, mlp = self._mlp(layer, n2)
        out = mid + transformed
        return out, BlockTape(x, n1, inv1, attention, mid, n2, inv2, mlp)

    def _attention(
        self, layer: int, x: Array, start: int, cache: KVCache | None
    ) -> tuple[Array, AttentionTape]:
        """Causal multi-head self-attention with rotary positions; keys and values of earlier
        positions come from `cache` when given (and this call's are added to it)."""
        w = self.weights
        b, t, d = x.shape
        dh = self.config.head_dim
        q = self.rope.rotate(self._heads(layer, "q_proj", x), start)
        k = self.rope.rotate(self._heads(layer, "k_proj", x), start)
        v = self._heads(layer, "v_proj", x)
        if cache is not None:
            cache.keys[layer][:, :, start : start + t] = k
            cache.values[layer][:, :, start : start + t] = v
            keys = cache.keys[layer][:, :, : start + t]
            values = cache.values[layer][:, :, : start + t]
        else:
            keys, values = k, v
        q_scaled = q * self.dtype.type(1.0 / np.sqrt(dh))
        probs = q_scaled @ keys.transpose(0, 1, 3, 2)
        probs += _causal_mask(start, t, self.dtype)
        probs -= probs.max(axis=-1, keepdims=True)
        np.exp(probs, out=probs)
        probs /= probs.sum(axis=-1, keepdims=True)
        ctx = (probs @ values).transpose(0, 2, 1, 3).reshape(b, t, d)
        out = _linear(ctx, w[attn_module(layer, "o_proj")])
        return out, AttentionTape(q, k, v, probs, ctx)

    def _heads(self, layer: int, proj: str, x: Array) -> Array:
        """x (B, T, D) projected by `proj` and split into heads: (B, H, T, Dh)."""
        b, t, _ = x.shape
        projected = _linear(x, self.weights[attn_module(layer, proj)])
        heads = projected.reshape((b, t, self.config.n_heads, self.config.head_dim))
        split: Array = heads.transpose(0, 2, 1, 3)
        return split

    def _mlp(self, layer: int, x: Array) -> tuple[Array, MlpTape]:
        """The SiLU-gated MLP: down(silu(gate(x)) * up(x))."""
        w = self.weights
        gate = _linear(x, w[mlp_module(layer, "gate_proj")])
        up = _linear(x, w[mlp_module(layer, "up_proj")])
        gate_act, gate_sig = _silu(gate)
        act = gate_act * up
        out = _linear(act, w[mlp_module(layer, "down_proj")])
        return out, MlpTape(gate, gate_act, gate_sig, up, act)

    def backward(
        self, tape: Tape, dlogits: Array, adapters: Mapping[str, LoraPair], scale: float
    ) -> dict[str, LoraPair]:
        """Gradients of sum(dlogits * logits) w.r.t. every adapter's A and B (exact)."""
        prop = _Backprop(self.weights, adapters, self.dtype.type(scale), all_weights=False)
        self._backpropagate(tape, dlogits, prop)
        return prop.grads

    def weight_gradients(self, tape: Tape, dlogits: Array) -> dict[str, Array]:
        """Gradients of sum(dlogits * logits) w.r.t. every weight of the network (exact)."""
        prop = _Backprop(self.weights, {}, self.dtype.type(0.0), all_weights=True)
        dx = self._backpropagate(tape, dlogits, prop)
        embed = np.zeros_like(self.weights[EMBED])
        np.add.at(embed, tape.tokens.reshape(-1), dx.reshape(-1, embed.shape[1]))
        prop.weight_grads[EMBED] = embed
        return prop.weight_grads

    def _backpropagate(self, tape: Tape, dlogits: Array, prop: _Backprop) -> Array:
        """Run `prop` from the logits down; returns the gradient w.r.t. the embedded tokens
        (with all_weights; else the first block's output gradient, which nothing needs)."""
        dn = prop.linear(UNEMBED, tape.final_n, dlogits)
        dx = prop.norm(FINAL_NORM, dn, tape.final_x, tape.final_inv)
        for layer in reversed(range(self.config.n_layers)):
            need_input = layer > 0 or prop.all_weights
            dx = self._block_backward(layer, tape.layers[layer], dx, prop, need_input=need_input)
        return dx

    def _block_backward(
        self, layer: int, bt: BlockTape, dout: Array, prop: _Backprop, *, need_input: bool
    ) -> Array:
        """Gradient w.r.t. the block's input (dout when not needed), recording adapter grads:
        the forward pass in reverse, MLP first, then attention."""
        dn2 = self._mlp_backward(layer, bt.mlp, bt.n2, dout, prop)
        norm2 = norm_weight(layer, "post_attention_layernorm")
        dmid = dout + prop.norm(norm2, dn2, bt.mid, bt.inv2)
        dn1 = self._attention_backward(layer, bt.attention, bt.n1, dmid, prop, need_input)
        if dn1 is None:
            return dmid  # first block: nothing trainable lies below, skip the input gradient
        return dmid + prop.norm(norm_weight(layer, "input_layernorm"), dn1, bt.x, bt.inv1)

    def _mlp_backward(
        self, layer: int, mt: MlpTape, x: Array, dout: Array, prop: _Backprop
    ) -> Array:
        """Gradient w.r.t. the MLP's input x, recording the adapter grads of its projections."""
        dact = prop.linear(mlp_module(layer, "down_proj"), mt.act, dout)
        dgate = dact * mt.up * (mt.gate_sig * (1.0 + mt.gate * (1.0 - mt.gate_sig)))
        dup = dact * mt.gate_act
        dx = prop.linear(mlp_module(layer, "gate_proj"), x, dgate)
        dx += prop.linear(mlp_module(layer, "up_proj"), x, dup)
        return dx

    def _attention_backward(
        self,
        layer: int,
        at: AttentionTape,
        x: Array,
        dout: Array,
        prop: _Backprop,
        need_input: bool,
    ) -> Array | None:
        """Gradient w.r.t. attention's input x (None when not needed), recording the adapter
        grads of its projections."""
        b, t, d = dout.shape
        h, dh = self.config.n_heads, self.config.head_dim
        dctx = prop.linear(attn_module(layer, "o_proj"), at.ctx, dout)
        dctx_heads = dctx.reshape(b, t, h, dh).transpose(0, 2, 1, 3)
        dprobs = dctx_heads @ at.v.transpose(0, 1, 3, 2)
        dv = at.probs.transpose(0, 1, 3, 2) @ dctx_heads
        dscores = dprobs  # softmax backward, in place
        dscores -= np.sum(dprobs * at.probs, axis=-1, keepdims=True)
        dscores *= at.probs
        dscores *= self.dtype.type(1.0 / np.sqrt(dh))
        dq = self.rope.rotate(dscores @ at.k, 0, inverse=True)
        dk = self.rope.rotate(dscores.transpose(0, 1, 3, 2) @ at.q, 0, inverse=True)

        dx = np.zeros_like(x) if need_input else None
        for proj, grad in (("q_proj", dq), ("k_proj", dk), ("v_proj", dv)):
            module = attn_module(layer, proj)
            merged = grad.transpose(0, 2, 1, 3).reshape((b, t, d))
            if dx is None:
                prop.adapter_only(module, x, merged)
            else:
                dx += prop.linear(module, x, merged)
        return dx


class _Backprop:
    """Backpropagation through the linear layers and norms, collecting LoRA gradients and,
    with all_weights, the gradient of every weight it passes."""

    def __init__(
        self,
        weights: Mapping[str, Array],
        adapters: Mapping[str, LoraPair],
        scale: Any,
        *,
        all_weights: bool,
    ) -> None:
        self.weights = weights
        self.adapters = adapters
        self.scale = scale
        self.all_weights = all_weights
        self.grads: dict[str, LoraPair] = {}
        self.weight_grads: dict[str, Array] = {}

    def norm(self, name: str, dy: Array, x: Array, inv: Array) -> Array:
        """Gradient w.r.t. the input of RMSNorm `name` (and of its weight, with all_weights)."""
        if self.all_weights:
            grad: Array = np.sum((dy * (x * inv)).reshape(-1, dy.shape[-1]), axis=0)
            self.weight_grads[name] = grad
        return _rms_norm_backward(dy, x, inv, self.weights[name])

    def adapter_only(self, module: str, x: Array, dy: Array) -> None:
        """Record dA and dB of `module`'s adapter (if any) for input x and output grad dy."""
        pair = self.adapters.get(module)
        if pair is None:
            return
        x2 = x.reshape(-1, x.shape[-1])
        dy2 = dy.reshape(-1, dy.shape[-1])
        grad_b = self.scale * (dy2.T @ (x2 @ pair.a.T))
        grad_a = self.scale * ((dy2 @ pair.b).T @ x2)
        self.grads[module] = LoraPair(grad_a, grad_b)

    def linear(self, module: str, x: Array, dy: Array) -> Array:
        """As adapter_only, and return the gradient w.r.t. x (through the merged weight)."""
        self.adapter_only(module, x, dy)
        if self.all_weights:
            grad: Array = dy.reshape(-1, dy.shape[-1]).T @ x.reshape(-1, x.shape[-1])
            self.weight_grads[module] = grad
        return _linear_input_grad(dy, self.weights[module])


def _causal_mask(start: int, length: int, dtype: np.dtype[Any]) -> Array:
    """Additive mask (length, start + length): -inf where a key lies after its query."""
    keys = np.arange(start + length)[None, :]
    queries = start + np.arange(length)[:, None]
    mask: Array = np.where(keys > queries, -np.inf, 0.0).astype(dtype)
    return mask


_ROPE_CACHE: dict[tuple[str, str], RopeTable] = {}


def _rope_table(config: ModelConfig, dtype: np.dtype[Any]) -> RopeTable:
    key = (config.name, dtype.name)
    table = _ROPE_CACHE.get(key)
    if table is None:
        table = _ROPE_CACHE.setdefault(key, RopeTable(config, dtype))
    return table


def log_softmax(logits: Array) -> Array:
    """log_softmax over the last axis, computed stably."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    result: Array = shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))
    return result
