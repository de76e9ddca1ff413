"""The PEFT-style export loads with safetensors and holds the trained LoRA weights; copies of
checkpoint files share bytes with their source where the filesystem allows."""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np
import pytest
from compute_helpers import TINY, ce_datum
from safetensors.numpy import load_file

from tinker.local.compute.catalogue import TOKENIZER_DIR
from tinker.local.compute.export import export_peft_adapter, link_or_copy
from tinker.local.compute.trainer import LoraTrainer


def _trained() -> LoraTrainer:
    trainer = LoraTrainer(TINY, rank=3, seed=0)
    data = [ce_datum(np.random.default_rng(0), 10)]
    for _ in range(2):
        trainer.forward_backward(data, "cross_entropy", None)
        trainer.optim_step(learning_rate=1e-2)
    return trainer


def test_exported_adapter_loads_and_equals_the_trained_weights(tmp_path: pathlib.Path) -> None:
    trainer = _trained()
    target = tmp_path / "external" / "final"
    written = export_peft_adapter(target, TINY, trainer.adapter_tensors(), trainer.adapter_config())
    assert set(written.files) == {
        "adapter_model.safetensors",
        "adapter_config.json",
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
    }
    assert written.size_bytes == sum(p.stat().st_size for p in target.iterdir())
    loaded = load_file(str(target / "adapter_model.safetensors"))
    trained = trainer.adapter_tensors()
    head = "base_model.model.model.unembed_tokens.lora_A.weight"
    assert head not in loaded and "base_model.model.lm_head.lora_A.weight" in loaded
    assert len(loaded) == len(trained)
    for name, value in trained.items():
        exported = loaded[name.replace("model.model.unembed_tokens", "model.lm_head")]
        assert exported.dtype == np.float32 and np.array_equal(exported, value), name
    config = json.loads((target / "adapter_config.json").read_text())
    assert config["r"] == 3 and config["lora_alpha"] == 32.0 and config["peft_type"] == "LORA"
    assert (
        "lm_head" in config["target_modules"] and "unembed_tokens" not in config["target_modules"]
    )
    model = json.loads((target / "config.json").read_text())
    assert model["model_type"] == "llama" and model["hidden_size"] == 64
    assert model["num_hidden_layers"] == 2 and model["vocab_size"] == 260
    assert (target / "tokenizer.json").read_bytes() == (
        TOKENIZER_DIR / "tokenizer.json"
    ).read_bytes()
    with pytest.raises(FileExistsError):
        export_peft_adapter(target, TINY, trained, trainer.adapter_config())
    assert [p.name for p in target.parent.iterdir()] == ["final"]  # no staging left behind


def test_link_or_copy_shares_bytes_and_refuses_symlinks(tmp_path: pathlib.Path) -> None:
    source = tmp_path / "source"
    (source / "nested").mkdir(parents=True)
    (source / "a.bin").write_bytes(b"abc")
    (source / "nested" / "b.json").write_text("{}")
    copied = link_or_copy(source, tmp_path / "copy")
    assert copied.files == {"a.bin": 3, "nested/b.json": 2}
    assert os.stat(source / "a.bin").st_ino == os.stat(tmp_path / "copy" / "a.bin").st_ino
    (source / "link").symlink_to(source / "a.bin")
    with pytest.raises(ValueError, match="refusing to copy the symlink link"):
        link_or_copy(source, tmp_path / "copy2")
    assert not (tmp_path / "copy2").exists()
