"""LoRA adapters: the (A, B) pairs, which layers get one, merging them into the base weights,
their PEFT tensor names and adapter_config.json, and validation of tensors from a checkpoint.

An adapter on a linear layer W (out, in) is A (r, in) and B (out, r); the layer computes
x @ (W + (alpha / r) * B @ A).T. Tensors are named as PEFT names them for a Llama-style model:
`base_model.model.model.<module>.lora_A.weight` and `...lora_B.weight`, where <module> is e.g.
`layers.0.self_attn.q_proj`; the output layer is `unembed_tokens`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from tinker.local.compute.catalogue import UNEMBED, ModelConfig, linear_shapes
from tinker.local.compute.errors import UserInputError

Array = npt.NDArray[Any]

#: LoRA alpha used for every rank: the update is scaled by LORA_ALPHA / rank.
LORA_ALPHA = 32.0
PEFT_PREFIX = "base_model.model.model."


@attrs.frozen
class LoraPair:
    """One adapter: delta W = scale * B @ A with A (r, in) and B (out, r)."""

    a: Array
    b: Array


def adapted_modules(config: ModelConfig, *, attn: bool, mlp: bool, unembed: bool) -> list[str]:
    """The modules that get a LoRA adapter for the given train_* flags, in canonical order."""
    picked = []
    for module in linear_shapes(config):
        if module == UNEMBED:
            keep = unembed
        elif ".self_attn." in module:
            keep = attn
        else:
            keep = mlp
        if keep:
            picked.append(module)
    return picked


def lora_pairs(tensors: Mapping[str, Array], modules: Sequence[str]) -> dict[str, LoraPair]:
    """The (A, B) pair of each module from tensors under PEFT names."""
    return {m: LoraPair(tensors[peft_name(m, "A")], tensors[peft_name(m, "B")]) for m in modules}


def merge_lora(
    base: Mapping[str, Array], adapters: Mapping[str, LoraPair], scale: float
) -> dict[str, Array]:
    """Effective weights W + scale * B @ A for the adapted modules (others shared, not copied)."""
    merged = dict(base)
    for module, pair in adapters.items():
        w = base[module]
        merged[module] = w + (pair.b * w.dtype.type(scale)) @ pair.a
    return merged


def peft_name(module: str, kind: str) -> str:
    """Tensor name of an adapter factor: kind "A" (r, in) or "B" (out, r)."""
    return f"{PEFT_PREFIX}{module}.lora_{kind}.weight"


def parse_peft_name(name: str) -> tuple[str, str]:
    """(module, "A"|"B") of a PEFT tensor name; UserInputError if it is not one."""
    for kind in ("A", "B"):
        suffix = f".lora_{kind}.weight"
        if name.startswith(PEFT_PREFIX) and name.endswith(suffix):
            return name[len(PEFT_PREFIX) : -len(suffix)], kind
    raise UserInputError(
        f"{name!r} is not a LoRA tensor name ({PEFT_PREFIX}<module>.lora_A.weight)"
    )


def check_adapter_tensors(
    tensors: Mapping[str, Array], expected: Mapping[str, tuple[int, ...]], *, what: str
) -> None:
    """Names must match exactly, shapes too, and values must be finite floating point."""
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise UserInputError(
            f"{what} tensors do not match this model: missing {missing[:4]}"
            f"{' ...' if len(missing) > 4 else ''}, unexpected {unexpected[:4]}"
            f"{' ...' if len(unexpected) > 4 else ''}"
        )
    for name, shape in expected.items():
        value = np.asarray(tensors[name])
        if value.shape != tuple(shape):
            raise UserInputError(
                f"{what} tensor {name!r} has shape {list(value.shape)}, expected {list(shape)}"
            )
        if not np.issubdtype(value.dtype, np.floating) or not np.all(np.isfinite(value)):
            raise UserInputError(f"{what} tensor {name!r} must hold finite floating-point values")


def adapter_config(
    base_model: str, rank: int, lora_alpha: float, modules: Sequence[str]
) -> dict[str, Any]:
    """adapter_config.json for the adapted modules, with PEFT's usual keys."""
    targets = sorted({m.rsplit(".", 1)[-1] for m in modules})
    return {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model,
        "r": rank,
        "lora_alpha": lora_alpha,
        "lora_dropout": 0.0,
        "bias": "none",
        "target_modules": targets,
        "fan_in_fan_out": False,
        "inference_mode": True,
        "init_lora_weights": True,
        "use_rslora": False,
        "use_dora": False,
        "modules_to_save": None,
        "layers_to_transform": None,
        "layers_pattern": None,
        "rank_pattern": {},
        "alpha_pattern": {},
        "revision": None,
    }
