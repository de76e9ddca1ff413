"""Throughput of the local numpy backend: forward_backward and sampling tokens/s per model.

Run: `python benchmarks/bench_compute.py [--batch 8 --seq 128 --repeats 3]`. If torch is
importable, a torch model of the same sizes (standard pre-norm encoder layers under a causal
mask, full backward) is timed too, as a rough yardstick, and the time ratio printed.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from tinker.local.compute.catalogue import LOCAL_MODELS, ModelConfig
from tinker.local.compute.generation import LoraSampler
from tinker.local.compute.trainer import DatumArrays, LoraTrainer


def _best_of(repeats: int, fn: Callable[[], object]) -> float:
    """Fastest wall time of `repeats` runs (after one warm-up run)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _batch(config: ModelConfig, batch: int, seq: int) -> list[DatumArrays]:
    rng = np.random.default_rng(0)
    seq = min(seq, config.max_seq_len)
    return [
        DatumArrays(
            rng.integers(0, 256, seq),
            {"target_tokens": rng.integers(0, 256, seq), "weights": np.ones(seq, np.float32)},
        )
        for _ in range(batch)
    ]


def bench_training(name: str, batch: int, seq: int, rank: int, repeats: int) -> dict[str, float]:
    """Seconds per forward_backward + optim_step on a batch x seq batch, and tokens/s."""
    trainer = LoraTrainer(name, rank=rank, seed=0)
    data = _batch(trainer.config, batch, seq)
    tokens = sum(len(d.tokens) for d in data)

    def step() -> None:
        trainer.forward_backward(data, "cross_entropy", None)
        trainer.optim_step(learning_rate=1e-4)

    fwd = _best_of(repeats, lambda: trainer.forward(data, "cross_entropy", None))
    seconds = _best_of(repeats, step)
    return {"step_s": seconds, "train_tok_s": tokens / seconds, "forward_tok_s": tokens / fwd}


def bench_sampling(name: str, num_samples: int, max_tokens: int, repeats: int) -> dict[str, float]:
    """Generated tokens/s for num_samples continuations of a short prompt (no stop)."""
    trainer = LoraTrainer(name, rank=8, seed=0)
    sampler = LoraSampler(trainer.snapshot())
    prompt = list(b"Once upon a time")

    def run() -> Any:
        return sampler.sample(
            prompt, num_samples=num_samples, max_tokens=max_tokens, stop=[], seed=0
        )

    seconds = _best_of(repeats, run)
    return {"sample_s": seconds, "sample_tok_s": num_samples * max_tokens / seconds}


def bench_torch(name: str, batch: int, seq: int, repeats: int) -> float | None:
    """Seconds per forward+backward of a same-size torch model, or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    cfg = LOCAL_MODELS[name]
    layer = torch.nn.TransformerEncoderLayer(
        cfg.d_model, cfg.n_heads, cfg.d_ff, dropout=0.0, batch_first=True, norm_first=True
    )
    model = torch.nn.Sequential(
        torch.nn.Embedding(cfg.vocab_size, cfg.d_model),
        torch.nn.TransformerEncoder(layer, cfg.n_layers),
        torch.nn.Linear(cfg.d_model, cfg.vocab_size),
    )
    tokens = torch.randint(0, 256, (batch, min(seq, cfg.max_seq_len)))
    mask = torch.nn.Transformer.generate_square_subsequent_mask(tokens.shape[1])

    def step() -> None:
        hidden = model[1](model[0](tokens), mask=mask, is_causal=True)
        loss = torch.nn.functional.cross_entropy(model[2](hidden).flatten(0, 1), tokens.flatten())
        loss.backward()

    return _best_of(repeats, step)


def main() -> None:
    """Print one line per model."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for name in LOCAL_MODELS:
        train = bench_training(name, args.batch, args.seq, args.rank, args.repeats)
        sample = bench_sampling(name, args.samples, args.max_tokens, args.repeats)
        line = (
            f"{name}: forward_backward+optim_step {args.batch}x{args.seq} "
            f"{train['step_s'] * 1000:.0f} ms ({train['train_tok_s']:.0f} tok/s; "
            f"forward {train['forward_tok_s']:.0f} tok/s); sampling {args.samples}x"
            f"{args.max_tokens} {sample['sample_tok_s']:.0f} tok/s"
        )
        torch_seconds = bench_torch(name, args.batch, args.seq, args.repeats)
        if torch_seconds is not None:
            line += f"; torch fwd+bwd {torch_seconds * 1000:.0f} ms"
            line += f" (numpy/torch time ratio {train['step_s'] / torch_seconds:.2f})"
        print(line)


if __name__ == "__main__":
    main()
