"""Weights in formats other tools read, and cheap copies of checkpoint files.

`export_peft_adapter` writes what `save_weights_external` promises: a directory that PEFT (or
any safetensors reader) loads as a LoRA adapter for a Llama-style model:
* `adapter_model.safetensors`: the trained LoRA factors (float32, unscaled; lora_A (r, in),
  lora_B (out, r)) under PEFT's names for LlamaForCausalLM. The only renaming from the
  checkpoint format is the output layer: `base_model.model.model.unembed_tokens.*` becomes
  `base_model.model.lm_head.*`, where PEFT puts an adapter on the LM head;
* `adapter_config.json`: the checkpoint's PEFT config with `lm_head` for `unembed_tokens` in
  `target_modules`;
* `config.json`: the base model's shape as a Llama config (the local models are pre-norm,
  RMSNorm, rotary, SiLU-gated decoders with untied embeddings);
* the tokenizer files of the base model (tokenizer.json, tokenizer_config.json,
  special_tokens_map.json).

`link_or_copy` gives copy_weights its files without copying bytes where the filesystem allows
(hard links; a byte copy where linking fails). Both write into a staging directory and rename
it into place, so a reader never sees a half-written directory.
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import shutil
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from tinker.local.compute.catalogue import TOKENIZER_DIR, UNEMBED, get_model_config
from tinker.local.compute.lora import PEFT_PREFIX

Array = npt.NDArray[Any]

ADAPTER_FILE = "adapter_model.safetensors"
ADAPTER_CONFIG_FILE = "adapter_config.json"
MODEL_CONFIG_FILE = "config.json"
LM_HEAD = "lm_head"
_UNEMBED_PREFIX = f"{PEFT_PREFIX}{UNEMBED}."
_LM_HEAD_PREFIX = f"base_model.model.{LM_HEAD}."


@attrs.frozen
class WrittenFiles:
    """The files of a written directory (relative name -> size in bytes) and their total."""

    files: dict[str, int]

    @property
    def size_bytes(self) -> int:
        """Total bytes."""
        return sum(self.files.values())


def external_tensor_name(name: str) -> str:
    """A checkpoint tensor name as PEFT names it for LlamaForCausalLM."""
    if name.startswith(_UNEMBED_PREFIX):
        return _LM_HEAD_PREFIX + name[len(_UNEMBED_PREFIX) :]
    return name


def base_model_config(base_model: str) -> dict[str, Any]:
    """config.json of a local base model in the Llama vocabulary of keys."""
    config = get_model_config(base_model)
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "_name_or_path": config.name,
        "vocab_size": config.vocab_size,
        "hidden_size": config.d_model,
        "intermediate_size": config.d_ff,
        "num_hidden_layers": config.n_layers,
        "num_attention_heads": config.n_heads,
        "num_key_value_heads": config.n_heads,
        "head_dim": config.head_dim,
        "max_position_embeddings": config.max_seq_len,
        "rms_norm_eps": config.norm_eps,
        "rope_theta": config.rope_theta,
        "hidden_act": "silu",
        "tie_word_embeddings": False,
        "attention_bias": False,
        "mlp_bias": False,
        "bos_token_id": None,
        "eos_token_id": config.eos_token_id,
        "pad_token_id": config.eos_token_id,
        "torch_dtype": "float32",
    }


def base_model_files(base_model: str) -> dict[str, bytes]:
    """What a reader of the base model itself needs (name -> bytes): its config.json and the
    packaged tokenizer files."""
    files = {MODEL_CONFIG_FILE: _json(base_model_config(base_model))}
    for path in sorted(TOKENIZER_DIR.iterdir()):
        if path.is_file():
            files[path.name] = path.read_bytes()
    return files


def export_peft_adapter(
    directory: pathlib.Path,
    base_model: str,
    adapter: Mapping[str, Array],
    adapter_config: Mapping[str, Any],
) -> WrittenFiles:
    """Write the PEFT-style adapter directory (module docstring); FileExistsError if taken."""
    from safetensors.numpy import save

    tensors = {
        external_tensor_name(name): np.ascontiguousarray(value, dtype=np.float32)
        for name, value in adapter.items()
    }
    config = dict(adapter_config)
    config["target_modules"] = sorted(
        LM_HEAD if m == UNEMBED else m for m in config.get("target_modules", [])
    )
    config["base_model_name_or_path"] = base_model
    contents = {
        ADAPTER_FILE: save(tensors),
        ADAPTER_CONFIG_FILE: _json(config),
        **base_model_files(base_model),
    }

    def fill(staging: pathlib.Path) -> None:
        for name, data in contents.items():
            with open(staging / name, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())

    return publish_directory(directory, fill)


def link_or_copy(source: pathlib.Path, destination: pathlib.Path) -> WrittenFiles:
    """Every regular file of `source` (recursively) at the same place under `destination`,
    hard-linked where possible; symlinks are refused. FileExistsError if taken."""
    source = source.resolve()
    files = sorted(source.rglob("*"))
    for path in files:
        if path.is_symlink():
            raise ValueError(f"refusing to copy the symlink {path.relative_to(source)}")

    def fill(staging: pathlib.Path) -> None:
        for path in files:
            target = staging / path.relative_to(source)
            if path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)

    return publish_directory(destination, fill)


def _json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(dict(value), indent=2, sort_keys=True).encode()


def publish_directory(
    directory: pathlib.Path, fill: Callable[[pathlib.Path], None]
) -> WrittenFiles:
    """Fill a staging sibling of `directory`, then rename it into place; FileExistsError when
    `directory` exists, also when another writer renamed its own copy there first."""
    if directory.exists():
        raise FileExistsError(f"{directory} already exists")
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = directory.parent / f".tmp-{directory.name}-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        fill(staging)
        written = {
            str(path.relative_to(staging)): path.stat().st_size
            for path in sorted(staging.rglob("*"))
            if path.is_file()
        }
        os.rename(staging, directory)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError) and exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise FileExistsError(f"{directory} already exists") from exc
        raise
    return WrittenFiles(written)
