"""LoRA adapter naming and metadata: PEFT-style tensor names (COMPUTE.md 6.2), the
adapter_config.json content, and validation of tensors read from a checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from tinker.local.errors import UserInputError

#: LoRA alpha used for every rank: the update is scaled by LORA_ALPHA / rank.
LORA_ALPHA = 32.0
PEFT_PREFIX = "base_model.model.model."


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
    tensors: Mapping[str, npt.NDArray[Any]], expected: Mapping[str, tuple[int, ...]], *, what: str
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
