"""Shipped base weights: float16 round trip, the manifest's checks, the `-random` twins."""

from __future__ import annotations

import json
import pathlib

import attrs
import numpy as np
import pytest
from compute_helpers import TINY

from tinker.local.compute import pretrained
from tinker.local.compute.catalogue import LOCAL_MODELS, get_model_config, weight_shapes
from tinker.local.compute.transformer import base_weights, random_base_weights

RECIPE = {"steps": 1}


def _written(tmp_path: pathlib.Path) -> tuple[dict[str, np.ndarray], pathlib.Path]:
    config = get_model_config(TINY)
    weights = {k: v.astype(np.float32) for k, v in random_base_weights(config).items()}
    path = pretrained.write_weights(config, weights, tmp_path, RECIPE)
    return weights, path


def test_written_weights_load_back_as_their_float16_values(tmp_path: pathlib.Path) -> None:
    weights, path = _written(tmp_path)
    config = get_model_config(TINY)
    loaded = pretrained.load_weights(config, tmp_path)
    assert set(loaded) == set(weights)
    for name, value in weights.items():
        assert loaded[name].dtype == np.float16
        np.testing.assert_array_equal(loaded[name], value.astype(np.float16))
    entry = json.loads((tmp_path / pretrained.MANIFEST).read_text())["models"][TINY]
    assert entry["file"] == path.name == "tiny.safetensors"
    assert entry["recipe"] == RECIPE and entry["shape"]["d_model"] == 64


def test_same_weights_write_the_same_bytes(tmp_path: pathlib.Path) -> None:
    _, first = _written(tmp_path / "a")
    _, second = _written(tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()


def test_a_changed_file_is_refused_as_stale(tmp_path: pathlib.Path) -> None:
    _, path = _written(tmp_path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    config = get_model_config(TINY)
    with pytest.raises(pretrained.PretrainedWeightsError, match=r"SHA-256.*pretrain_base_models"):
        pretrained.load_weights(config, tmp_path)


def test_weights_trained_for_another_shape_are_refused(tmp_path: pathlib.Path) -> None:
    _written(tmp_path)
    wider = attrs.evolve(get_model_config(TINY), d_ff=256)
    with pytest.raises(pretrained.PretrainedWeightsError, match=r"'d_ff': 192.*'d_ff': 256"):
        pretrained.load_weights(wider, tmp_path)


def test_a_file_without_every_tensor_is_refused(tmp_path: pathlib.Path) -> None:
    config = get_model_config(TINY)
    weights = {k: v.astype(np.float32) for k, v in random_base_weights(config).items()}
    del weights["norm"]
    pretrained.write_weights(config, weights, tmp_path, RECIPE)
    with pytest.raises(pretrained.PretrainedWeightsError, match="do not fit tinker-local/tiny"):
        pretrained.load_weights(config, tmp_path)


def test_missing_weights_name_the_model_and_the_fix(tmp_path: pathlib.Path) -> None:
    config = get_model_config(TINY)
    with pytest.raises(pretrained.PretrainedWeightsError, match="no pretrained weights for "):
        pretrained.load_weights(config, tmp_path)


def test_every_pretrained_model_ships_weights_of_its_shape() -> None:
    pretrained_models = [c for c in LOCAL_MODELS.values() if c.pretrained]
    assert {c.name for c in pretrained_models} == {"tinker-local/tiny", "tinker-local/small"}
    for config in pretrained_models:
        loaded = pretrained.load_weights(config)
        assert {k: v.shape for k, v in loaded.items()} == weight_shapes(config)
        assert all(np.isfinite(v).all() for v in loaded.values()), config.name


def test_random_twin_has_the_initialisation_pretraining_started_from() -> None:
    twin = get_model_config(TINY + "-random")
    assert not twin.pretrained and twin.family == TINY
    assert pretrained.shape_fingerprint(twin) == pretrained.shape_fingerprint(
        get_model_config(TINY)
    )
    served = base_weights(twin, np.float64)
    for name, value in random_base_weights(get_model_config(TINY)).items():
        np.testing.assert_array_equal(served[name], value)
    trained = base_weights(get_model_config(TINY), np.float64)
    assert not np.array_equal(trained["embed_tokens"], served["embed_tokens"])
