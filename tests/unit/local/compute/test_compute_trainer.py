"""The LoRA trainer: determinism from seeds, exact state round trips, argument checks, and
end to end, that training memorises a text which sampling the snapshot then reproduces."""

from __future__ import annotations

import math

import numpy as np
import pytest
from compute_helpers import TINY, TINY_RANDOM, ce_datum, sequence_datum

from tinker.local.compute.catalogue import EOS_TOKEN_ID, VOCAB_SIZE
from tinker.local.compute.errors import UnknownModelError, UserInputError
from tinker.local.compute.generation import LoraSampler
from tinker.local.compute.trainer import DatumArrays, LoraTrainer

PREFIX = "base_model.model.model."
TEXT = b"The quick brown fox jumps over the lazy dog."


def _train(trainer: LoraTrainer, data: list[DatumArrays], steps: int) -> None:
    for step in range(steps):
        trainer.forward_backward(data, "cross_entropy", None)
        trainer.optim_step(learning_rate=1e-2 / (1 + step), weight_decay=0.01)


def _data() -> list[DatumArrays]:
    rng = np.random.default_rng(3)
    return [ce_datum(rng, 12), ce_datum(rng, 5)]


def test_same_seed_gives_bit_identical_training() -> None:
    first, second = LoraTrainer(TINY, rank=4, seed=42), LoraTrainer(TINY, rank=4, seed=42)
    _train(first, _data(), 3)
    _train(second, _data(), 3)
    a, b = first.adapter_tensors(), second.adapter_tensors()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    other = LoraTrainer(TINY, rank=4, seed=43).adapter_tensors()
    assert not np.array_equal(
        other[PREFIX + "unembed_tokens.lora_A.weight"],
        LoraTrainer(TINY, rank=4, seed=42).adapter_tensors()[
            PREFIX + "unembed_tokens.lora_A.weight"
        ],
    )
    random1 = LoraTrainer(TINY, rank=4, seed=None).adapter_tensors()
    random2 = LoraTrainer(TINY, rank=4, seed=None).adapter_tensors()
    key = PREFIX + "layers.0.mlp.up_proj.lora_A.weight"
    assert not np.array_equal(random1[key], random2[key])


def test_save_load_continue_equals_uninterrupted_run() -> None:
    data = _data()
    straight = LoraTrainer(TINY, rank=4, seed=1)
    _train(straight, data, 4)

    first = LoraTrainer(TINY, rank=4, seed=1)
    _train(first, data, 2)
    adapter, optimizer = first.adapter_tensors(), first.optimizer_tensors()
    assert optimizer["step"].tolist() == [2]
    resumed = LoraTrainer(TINY, rank=4, seed=999)
    resumed.load(adapter, optimizer)
    assert all(np.array_equal(resumed.adapter_tensors()[k], v) for k, v in adapter.items())
    for step in range(2, 4):
        resumed.forward_backward(data, "cross_entropy", None)
        resumed.optim_step(learning_rate=1e-2 / (1 + step), weight_decay=0.01)
    a, b = straight.adapter_tensors(), resumed.adapter_tensors()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    oa, ob = straight.optimizer_tensors(), resumed.optimizer_tensors()
    assert all(np.array_equal(oa[k], ob[k]) for k in oa)


def test_load_without_optimizer_resets_adam_and_gradients() -> None:
    trainer = LoraTrainer(TINY, rank=2, seed=0)
    _train(trainer, _data(), 2)
    trainer.forward_backward(_data(), "cross_entropy", None)
    trainer.load(trainer.adapter_tensors(), None)
    state = trainer.optimizer_tensors()
    assert state["step"].tolist() == [0]
    assert all(not v.any() for k, v in state.items() if k != "step")
    assert all(not g.any() for g in trainer.accumulated_gradients().values())


def test_load_rejects_mismatched_tensors() -> None:
    trainer = LoraTrainer(TINY, rank=2, seed=0)
    adapter = trainer.adapter_tensors()
    name = PREFIX + "layers.0.self_attn.q_proj.lora_A.weight"
    with pytest.raises(
        UserInputError, match=r"missing \['base_model.model.model.layers.0.self_attn.q_proj"
    ):
        trainer.load({k: v for k, v in adapter.items() if k != name}, None)
    with pytest.raises(UserInputError, match="has shape \\[3, 64\\], expected \\[2, 64\\]"):
        trainer.load({**adapter, name: np.zeros((3, 64), np.float32)}, None)
    with pytest.raises(UserInputError, match="unexpected \\['extra'\\]"):
        trainer.load({**adapter, "extra": np.zeros(1, np.float32)}, None)
    optimizer = trainer.optimizer_tensors()
    with pytest.raises(UserInputError, match="'step'"):
        trainer.load(adapter, {k: v for k, v in optimizer.items() if k != "step"})
    smaller = LoraTrainer(TINY, rank=2, seed=0, train_mlp=False).adapter_tensors()
    with pytest.raises(UserInputError, match="do not match this model"):
        trainer.load(smaller, None)


def test_constructor_validation() -> None:
    with pytest.raises(
        UnknownModelError,
        match="known models: tinker-local/small, tinker-local/small-random, tinker-local/tiny, "
        "tinker-local/tiny-random",
    ):
        LoraTrainer("meta-llama/Llama-3.1-8B", rank=8, seed=0)
    with pytest.raises(UserInputError, match="lora rank must be a positive integer, got 0"):
        LoraTrainer(TINY, rank=0, seed=0)
    with pytest.raises(UserInputError, match="got True"):
        LoraTrainer(TINY, rank=True, seed=0)
    with pytest.raises(UserInputError, match="lora seed must be a non-negative integer or None"):
        LoraTrainer(TINY, rank=2, seed=-1)
    with pytest.raises(UserInputError, match="at least one of"):
        LoraTrainer(TINY, rank=2, seed=0, train_mlp=False, train_attn=False, train_unembed=False)


def test_fresh_adapter_first_step_moves_only_b_by_about_lr() -> None:
    trainer = LoraTrainer(TINY, rank=4, seed=0)
    before = trainer.adapter_tensors()
    trainer.forward_backward(_data(), "cross_entropy", None)
    grads = trainer.accumulated_gradients()
    assert all(not g.any() for name, g in grads.items() if ".lora_A." in name)  # B = 0
    trainer.optim_step(learning_rate=1e-3)
    after = trainer.adapter_tensors()
    for name in before:
        step = np.abs(after[name] - before[name])
        if ".lora_A." in name:
            assert not step.any(), name
        else:
            nonzero = step[grads[name] != 0]
            np.testing.assert_allclose(nonzero, 1e-3, rtol=1e-3)


def test_training_from_random_weights_memorises_text_and_sampling_reproduces_it() -> None:
    trainer = LoraTrainer(TINY_RANDOM, rank=8, seed=0)
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
