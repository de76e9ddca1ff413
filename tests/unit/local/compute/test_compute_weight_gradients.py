"""Full-weight gradients (used for pretraining) against finite differences in float64, and
against the LoRA gradients the same backward pass yields."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from compute_helpers import TINY, directional_check

from tinker.local.compute.catalogue import VOCAB_SIZE, get_model_config
from tinker.local.compute.lora import LoraPair, merge_lora
from tinker.local.compute.transformer import Tape, Transformer, base_weights

Array = npt.NDArray[Any]


def _perturbed_weights(rng: np.random.Generator) -> dict[str, Array]:
    """The tiny model's base weights in float64, every tensor (norms too) nudged randomly."""
    config = get_model_config(TINY)
    return {
        name: w + rng.normal(0.0, 0.1 * (float(np.std(w)) or 1.0), w.shape)
        for name, w in base_weights(config, np.float64).items()
    }


def _objective(weights: dict[str, Array], tokens: Array, cotangent: Array) -> float:
    logits = Transformer(get_model_config(TINY), weights).forward(tokens)
    return float(np.sum(cotangent * logits))


def test_every_weight_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(11)
    weights = _perturbed_weights(rng)
    # Repeated tokens exercise the accumulation of embedding rows.
    tokens = np.array([[5, 17, 5, 256, 99, 17], [3, 3, 40, 257, 0, 5]], dtype=np.int64)
    cotangent = rng.normal(size=(*tokens.shape, VOCAB_SIZE))
    network = Transformer(get_model_config(TINY), weights)
    tapes: list[Tape] = []
    network.forward(tokens, tape=tapes)
    grads = network.weight_gradients(tapes[0], cotangent)

    assert set(grads) == set(weights)
    for name, grad in grads.items():
        assert grad.shape == weights[name].shape, name
    checks = directional_check(
        lambda w: _objective(w, tokens, cotangent), weights, grads, rng, h=2e-4, fourth_order=True
    )
    for name, (numeric, analytic) in checks.items():
        assert analytic != 0.0, name
        assert abs(numeric - analytic) <= 1e-6 * max(1.0, abs(numeric)), (name, numeric, analytic)


def test_lora_gradients_are_the_chain_rule_of_weight_gradients() -> None:
    """dL/dB = s * dL/dW @ A.T and dL/dA = s * B.T @ dL/dW at the merged weights."""
    rng = np.random.default_rng(12)
    weights = _perturbed_weights(rng)
    config = get_model_config(TINY)
    scale = 2.0
    adapters = {
        module: LoraPair(
            rng.normal(0, 0.1, (3, weights[module].shape[1])),
            rng.normal(0, 0.1, (weights[module].shape[0], 3)),
        )
        for module in ("layers.0.self_attn.q_proj", "layers.1.mlp.down_proj", "unembed_tokens")
    }
    network = Transformer(config, merge_lora(weights, adapters, scale))
    tokens = rng.integers(0, VOCAB_SIZE, (2, 7))
    cotangent = rng.normal(size=(2, 7, VOCAB_SIZE))
    tapes: list[Tape] = []
    network.forward(tokens, tape=tapes)
    lora = network.backward(tapes[0], cotangent, adapters, scale)
    full = network.weight_gradients(tapes[0], cotangent)
    for module, pair in adapters.items():
        np.testing.assert_allclose(lora[module].b, scale * full[module] @ pair.a.T, rtol=1e-10)
        np.testing.assert_allclose(lora[module].a, scale * pair.b.T @ full[module], rtol=1e-10)
