"""LoRA adapters: PEFT names and shapes, initialisation, which modules the train_* flags pick,
adapter_config.json, merging into the base weights, and validation of checkpoint tensors."""

from __future__ import annotations

import numpy as np
import pytest
from compute_helpers import TINY

from tinker.local.compute.catalogue import get_model_config
from tinker.local.compute.errors import UserInputError
from tinker.local.compute.lora import (
    LoraPair,
    adapted_modules,
    check_adapter_tensors,
    merge_lora,
    parse_peft_name,
    peft_name,
)
from tinker.local.compute.trainer import LoraTrainer

PREFIX = "base_model.model.model."


def test_peft_names_round_trip_and_reject_other_names() -> None:
    name = peft_name("layers.1.mlp.up_proj", "B")
    assert name == PREFIX + "layers.1.mlp.up_proj.lora_B.weight"
    assert parse_peft_name(name) == ("layers.1.mlp.up_proj", "B")
    with pytest.raises(UserInputError, match="is not a LoRA tensor name"):
        parse_peft_name("layers.1.mlp.up_proj.weight")


def test_merge_adds_the_scaled_low_rank_product_and_shares_the_rest() -> None:
    rng = np.random.default_rng(0)
    base = {"w": rng.normal(size=(5, 3)), "other": rng.normal(size=(2, 2))}
    pair = LoraPair(rng.normal(size=(2, 3)), rng.normal(size=(5, 2)))
    merged = merge_lora(base, {"w": pair}, 0.5)
    np.testing.assert_allclose(merged["w"], base["w"] + 0.5 * pair.b @ pair.a, rtol=1e-12)
    assert merged["other"] is base["other"]


def test_adapted_modules_follow_the_flags_in_canonical_order() -> None:
    config = get_model_config(TINY)
    attn_only = adapted_modules(config, attn=True, mlp=False, unembed=False)
    assert attn_only[:4] == [f"layers.0.self_attn.{p}_proj" for p in "qkvo"]
    assert len(attn_only) == 4 * config.n_layers
    assert adapted_modules(config, attn=False, mlp=False, unembed=True) == ["unembed_tokens"]


def test_checkpoint_tensors_must_match_names_shapes_and_be_finite() -> None:
    expected = {"a": (2, 3)}
    check_adapter_tensors({"a": np.zeros((2, 3), np.float32)}, expected, what="adapter")
    with pytest.raises(UserInputError, match=r"missing \['a'\], unexpected \['b'\]"):
        check_adapter_tensors({"b": np.zeros((2, 3))}, expected, what="adapter")
    with pytest.raises(UserInputError, match=r"has shape \[3, 2\], expected \[2, 3\]"):
        check_adapter_tensors({"a": np.zeros((3, 2))}, expected, what="adapter")
    with pytest.raises(UserInputError, match="finite floating-point"):
        check_adapter_tensors({"a": np.full((2, 3), np.inf)}, expected, what="adapter")


def test_adapter_names_shapes_and_init() -> None:
    trainer = LoraTrainer(TINY, rank=4, seed=0)
    tensors = trainer.adapter_tensors()
    d, ff, vocab = 64, 192, trainer.config.vocab_size
    assert tensors[PREFIX + "layers.0.self_attn.q_proj.lora_A.weight"].shape == (4, d)
    assert tensors[PREFIX + "layers.1.self_attn.o_proj.lora_B.weight"].shape == (d, 4)
    assert tensors[PREFIX + "layers.1.mlp.gate_proj.lora_B.weight"].shape == (ff, 4)
    assert tensors[PREFIX + "layers.0.mlp.down_proj.lora_A.weight"].shape == (4, ff)
    assert tensors[PREFIX + "unembed_tokens.lora_B.weight"].shape == (vocab, 4)
    assert len(tensors) == 2 * (2 * 7 + 1)
    for name, value in tensors.items():
        assert value.dtype == np.float32
        if ".lora_B." in name:
            assert not value.any()
        else:
            bound = 1 / np.sqrt(value.shape[1])
            assert np.abs(value).max() <= bound and np.abs(value).max() > 0.5 * bound
    assert trainer.lora_alpha == 32.0 and trainer.scale == 8.0


def test_train_flags_select_modules() -> None:
    names = LoraTrainer(TINY, rank=2, seed=0, train_attn=False, train_mlp=False).adapter_tensors()
    assert sorted(names) == [
        PREFIX + "unembed_tokens.lora_A.weight",
        PREFIX + "unembed_tokens.lora_B.weight",
    ]
    config = LoraTrainer(TINY, rank=2, seed=0, train_unembed=False).adapter_config()
    assert config["target_modules"] == sorted(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    assert config["r"] == 2 and config["lora_alpha"] == 32.0 and config["peft_type"] == "LORA"
    assert config["base_model_name_or_path"] == TINY
