"""End to end: supervised LoRA training of the tiny model memorises a text, and sampling
the trained snapshot reproduces it."""

from __future__ import annotations

import math

import numpy as np
from compute_helpers import TINY, sequence_datum

from tinker.local.compute.catalogue import EOS_TOKEN_ID, VOCAB_SIZE
from tinker.local.compute.generation import LoraSampler
from tinker.local.compute.trainer import LoraTrainer

TEXT = b"The quick brown fox jumps over the lazy dog."


def test_training_memorises_text_and_sampling_reproduces_it() -> None:
    trainer = LoraTrainer(TINY, rank=8, seed=0)
    datum = sequence_datum([EOS_TOKEN_ID, *TEXT, EOS_TOKEN_ID])
    tokens = len(datum.tokens)
    uniform = math.log(VOCAB_SIZE)
    losses = []
    for _ in range(100):
        result = trainer.forward_backward([datum], "cross_entropy", None)
        losses.append(result.metrics["loss:sum"] / tokens)
        trainer.optim_step(learning_rate=1e-2)
    assert abs(losses[0] - uniform) < 0.1 * uniform
    final = trainer.forward([datum], "cross_entropy", None).metrics["loss:sum"] / tokens
    assert final < 0.1 * uniform
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) / 10

    sample = LoraSampler(trainer.snapshot()).sample([EOS_TOKEN_ID], max_tokens=80, temperature=0.0)
    out = sample.sequences[0]
    assert out.tokens == [*TEXT, EOS_TOKEN_ID] and out.stop_reason == "stop"
    assert all(lp > -0.5 for lp in out.logprobs)
