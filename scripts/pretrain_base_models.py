"""Pretrain the full weights of each local model on the generated corpus and write them, as
float16 safetensors plus a manifest, where tinker.local loads its base weights from.

Deterministic: fixed seeds, one BLAS thread; a re-run on the same machine and numpy writes the
same bytes. Run: `python scripts/pretrain_base_models.py [--model tinker-local/tiny]`.
"""

from __future__ import annotations

import argparse
import math
import pathlib
import sys
import time
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from pretrain_corpus import corpus_text

from tinker.local.compute import pretrained
from tinker.local.compute.blas import set_blas_threads
from tinker.local.compute.catalogue import TOKENIZER_DIR, ModelConfig, get_model_config
from tinker.local.compute.optimizers import Adam, AdamParams
from tinker.local.compute.transformer import Tape, Transformer, log_softmax, random_base_weights

Array = npt.NDArray[Any]


@attrs.frozen
class Recipe:
    """How one model is pretrained."""

    steps: int
    batch: int
    seq_len: int
    learning_rate: float
    warmup: int
    corpus_chars: int
    seed: int = 0
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    final_lr_fraction: float = 0.1


RECIPES: dict[str, Recipe] = {
    "tinker-local/tiny": Recipe(
        steps=5000, batch=16, seq_len=128, learning_rate=5e-3, warmup=100, corpus_chars=3_000_000
    ),
    "tinker-local/small": Recipe(
        steps=900, batch=8, seq_len=128, learning_rate=2e-3, warmup=50, corpus_chars=3_000_000
    ),
}


def encode(text: str) -> Array:
    """Token ids of `text` with the packaged tokenizer (special tokens recognised)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(TOKENIZER_DIR / "tokenizer.json"))
    return np.asarray(tokenizer.encode(text, add_special_tokens=False).ids, dtype=np.int64)


def learning_rate(recipe: Recipe, step: int) -> float:
    """Linear warm-up, then cosine decay to final_lr_fraction of the peak."""
    if step < recipe.warmup:
        return recipe.learning_rate * (step + 1) / recipe.warmup
    progress = (step - recipe.warmup) / max(1, recipe.steps - recipe.warmup)
    floor = recipe.final_lr_fraction
    return recipe.learning_rate * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def batch_windows(
    tokens: Array, starts: Array, rng: np.random.Generator, batch: int, seq_len: int
) -> Array:
    """`batch` windows of seq_len + 1 tokens, each beginning at a document start."""
    picked = rng.choice(starts, batch)
    return np.stack([tokens[s : s + seq_len + 1] for s in picked])


def train_step(
    config: ModelConfig, weights: dict[str, Array], window: Array
) -> tuple[float, dict[str, Array]]:
    """Mean next-token cross-entropy of the windows and its gradient for every weight."""
    inputs, targets = window[:, :-1], window[:, 1:]
    network = Transformer(config, weights)
    tapes: list[Tape] = []
    logits = network.forward(inputs, tape=tapes)
    logp = log_softmax(logits)
    picked = np.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
    count = targets.size
    dlogits = np.exp(logp)
    np.put_along_axis(
        dlogits,
        targets[..., None],
        np.take_along_axis(dlogits, targets[..., None], axis=-1) - 1.0,
        axis=-1,
    )
    dlogits *= dlogits.dtype.type(1.0 / count)
    return -float(np.mean(picked, dtype=np.float64)), network.weight_gradients(tapes[0], dlogits)


def pretrain(config: ModelConfig, recipe: Recipe, log_every: int = 50) -> dict[str, Array]:
    """Train every weight of `config` from its random initialisation; returns float32 weights."""
    tokens = encode(corpus_text(recipe.seed, recipe.corpus_chars))
    eos_positions = np.flatnonzero(tokens == config.eos_token_id)
    starts = np.concatenate([[0], eos_positions + 1])
    starts = starts[starts + recipe.seq_len + 1 <= len(tokens)]
    rng = np.random.default_rng(recipe.seed)
    weights = {k: np.array(v, dtype=np.float32) for k, v in random_base_weights(config).items()}
    adam = Adam(weights)
    started = time.monotonic()
    print(f"{config.name}: {len(tokens)} corpus tokens, {recipe}", flush=True)
    for step in range(recipe.steps):
        window = batch_windows(tokens, starts, rng, recipe.batch, recipe.seq_len)
        loss, grads = train_step(config, weights, window)
        params = AdamParams(
            learning_rate=learning_rate(recipe, step),
            eps=1e-8,
            weight_decay=recipe.weight_decay,
            grad_clip_norm=recipe.grad_clip,
        )
        adam.step(weights, grads, params)
        if step % log_every == 0 or step == recipe.steps - 1:
            elapsed = time.monotonic() - started
            print(f"  step {step:5d}  loss {loss:.4f}  {elapsed:6.1f} s", flush=True)
    return weights


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", action="append", choices=sorted(RECIPES))
    parser.add_argument("--steps", type=int, help="override the recipe's step count")
    parser.add_argument("--out", type=pathlib.Path, default=pretrained.WEIGHTS_DIR)
    args = parser.parse_args(argv)
    set_blas_threads(1)
    for name in args.model or sorted(RECIPES):
        config = get_model_config(name)
        recipe = RECIPES[name]
        if args.steps is not None:
            recipe = attrs.evolve(recipe, steps=args.steps)
        started = time.monotonic()
        weights = pretrain(config, recipe)
        path = pretrained.write_weights(config, weights, args.out, attrs.asdict(recipe))
        print(f"{name}: wrote {path} in {time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
