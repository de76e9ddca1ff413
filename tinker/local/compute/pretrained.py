"""The pretrained base weights shipped with the package: float16 safetensors files and a
manifest recording, per model, the file's SHA-256 and the shape it was trained for.

A file whose digest or shape no longer matches (a stale or partly replaced asset) is refused
with an error saying how to rebuild it (scripts/pretrain_base_models.py).
"""

from __future__ import annotations

import hashlib
import json
import pathlib
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from tinker.local.compute.catalogue import ModelConfig, weight_shapes

Array = npt.NDArray[Any]

WEIGHTS_DIR: pathlib.Path = pathlib.Path(__file__).resolve().parent / "assets" / "weights"
MANIFEST = "manifest.json"
FORMAT_VERSION = 1
REBUILD_HINT = "rebuild the weights with `python scripts/pretrain_base_models.py`"


class PretrainedWeightsError(RuntimeError):
    """The shipped weights of a model are missing, corrupt or stale."""


def shape_fingerprint(config: ModelConfig) -> dict[str, Any]:
    """The config fields that determine the weights (everything but the names and init)."""
    fields = attrs.asdict(config)
    for key in ("name", "family", "pretrained"):
        fields.pop(key, None)
    return fields


def _file_name(config: ModelConfig) -> str:
    return config.family.rsplit("/", 1)[-1] + ".safetensors"


def _read_manifest(directory: pathlib.Path) -> dict[str, Any]:
    path = directory / MANIFEST
    if not path.exists():
        return {"format": FORMAT_VERSION, "models": {}}
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return manifest


def write_weights(
    config: ModelConfig,
    weights: Mapping[str, Array],
    directory: pathlib.Path,
    recipe: Mapping[str, Any],
) -> pathlib.Path:
    """Save `weights` as float16 and record the file in the manifest; returns the file path."""
    from safetensors.numpy import save

    data = save({name: np.asarray(w, dtype=np.float16) for name, w in sorted(weights.items())})
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / _file_name(config)
    path.write_bytes(data)
    manifest = _read_manifest(directory)
    manifest["format"] = FORMAT_VERSION
    manifest["models"][config.family] = {
        "file": path.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "shape": shape_fingerprint(config),
        "recipe": dict(recipe),
    }
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    (directory / MANIFEST).write_text(text, encoding="utf-8")
    return path


def load_weights(config: ModelConfig, directory: pathlib.Path = WEIGHTS_DIR) -> dict[str, Array]:
    """The float16 weights of `config`'s family, checked against the manifest and the shapes."""
    from safetensors.numpy import load

    manifest = _read_manifest(directory)
    entry = manifest["models"].get(config.family)
    if manifest.get("format") != FORMAT_VERSION or entry is None:
        raise PretrainedWeightsError(
            f"no pretrained weights for {config.family} in {directory}; {REBUILD_HINT}"
        )
    if entry["shape"] != shape_fingerprint(config):
        raise PretrainedWeightsError(
            f"{directory / entry['file']} was trained for {entry['shape']}, but "
            f"{config.family} is now {shape_fingerprint(config)}; {REBUILD_HINT}"
        )
    path = directory / entry["file"]
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PretrainedWeightsError(f"cannot read {path}: {exc}; {REBUILD_HINT}") from None
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise PretrainedWeightsError(
            f"{path} does not match the SHA-256 in {MANIFEST} (stale or damaged); {REBUILD_HINT}"
        )
    weights = load(data)
    shapes = {name: tuple(w.shape) for name, w in weights.items()}
    if shapes != weight_shapes(config):
        raise PretrainedWeightsError(
            f"{path} holds tensors {sorted(shapes)} that do not fit {config.family}; {REBUILD_HINT}"
        )
    return weights
