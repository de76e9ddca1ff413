"""The numpy backend and the fake the server tests use both follow compute.backend's
protocols (every protocol method exists and accepts every protocol parameter), and the
backend's factories turn wire values into what trainers and samplers take."""

from __future__ import annotations

import inspect
import pathlib
from typing import Any

import numpy as np
import pytest

from tinker.local.compute import backend as contract
from tinker.local.compute.backend import NumpyBackend
from tinker.local.compute.errors import UserInputError
from tinker.local.compute.generation import LoraSampler
from tinker.local.compute.inflight import InflightSampler
from tinker.local.compute.trainer import LoraTrainer

from .fake_backend import FakeBackend, FakeSampler, FakeTrainer

IMPLEMENTATIONS = [
    (contract.Backend, NumpyBackend),
    (contract.Backend, FakeBackend),
    (contract.Trainer, LoraTrainer),
    (contract.Trainer, FakeTrainer),
    (contract.Sampler, LoraSampler),
    (contract.Sampler, InflightSampler),
    (contract.Sampler, FakeSampler),
]


def _methods(protocol: type) -> dict[str, Any]:
    return {
        name: member
        for name, member in vars(protocol).items()
        if callable(member) and not name.startswith("_")
    }


@pytest.mark.parametrize(("protocol", "implementation"), IMPLEMENTATIONS)
def test_implementation_accepts_every_protocol_parameter(
    protocol: type, implementation: type
) -> None:
    for name, method in _methods(protocol).items():
        assert hasattr(implementation, name), f"{implementation.__name__} lacks {name}"
        wanted = inspect.signature(method).parameters
        actual = inspect.signature(getattr(implementation, name)).parameters
        open_keywords = any(p.kind is p.VAR_KEYWORD for p in actual.values())
        for parameter in wanted.values():
            if parameter.kind is parameter.VAR_KEYWORD:
                assert open_keywords, f"{implementation.__name__}.{name} needs **kwargs"
                continue
            assert parameter.name in actual or open_keywords, (
                f"{implementation.__name__}.{name} does not take {parameter.name!r}"
            )
        for parameter in actual.values():
            required = parameter.default is parameter.empty and parameter.kind not in (
                parameter.VAR_POSITIONAL,
                parameter.VAR_KEYWORD,
            )
            assert not required or parameter.name in wanted, (
                f"{implementation.__name__}.{name} requires {parameter.name!r} (not in protocol)"
            )


def test_numpy_backend_factories() -> None:
    backend = NumpyBackend()
    assert backend.check_optimizer_config(None) == {"type": "adamw"}
    dimuon = backend.check_optimizer_config({"type": "dimuon", "version": 1})
    trainer = backend.new_trainer(
        "tinker-local/tiny", rank=2, seed=0, train_mlp=True, train_attn=True,
        train_unembed=True, optimizer=dimuon,
    )  # fmt: skip
    assert trainer.optimizer_config() == dimuon
    params = backend.optim_params(dimuon, {"type": "dimuon", "learning_rate": 0.01, "beta1": 0.8})
    trainer.optim_step(params)
    assert backend.state_optimizer_config(trainer.optimizer_tensors()) == dimuon
    with pytest.raises(UserInputError, match=r"DimuonParams\.learning_rate is required"):
        backend.optim_params(dimuon, {"type": "dimuon"})
    with pytest.raises(UserInputError, match=r"AdamParams has no field\(s\) \['momentum'\]"):
        backend.optim_params({"type": "adamw"}, {"learning_rate": 1e-3, "momentum": 0.9})
    with pytest.raises(UserInputError, match="of type 'dimuon' do not match this run's optimizer"):
        backend.optim_params({"type": "adamw"}, {"type": "dimuon", "learning_rate": 1e-3})
    with pytest.raises(UserInputError, match=r"AdamParams\.eps must be a number"):
        backend.optim_params({"type": "adamw"}, {"eps": "small"})
    with pytest.raises(UserInputError, match="needs both crow and col"):
        backend.target_table((2, 2), np.zeros(1, np.int64), crow=np.zeros(3, np.int64))
    datum = backend.make_datum(
        np.array([1, 2]), {"target_tokens": np.array([2, 3])},
        model_input_spans=[("prompt", "s", 0, 2)], loss_fn_input_spans=[("sampled", "s", 0, 2)],
    )  # fmt: skip
    assert datum.loss_fn_input_spans is not None and datum.loss_fn_input_spans[0].kind == "sampled"
    with pytest.raises(UserInputError, match="span kind must be prompt or sampled"):
        backend.make_datum(np.array([1]), {}, loss_fn_input_spans=[("other", "s", 0, 1)])


def test_numpy_backend_inflight_and_files(tmp_path: pathlib.Path) -> None:
    backend = NumpyBackend()
    trainer = backend.new_trainer(
        "tinker-local/tiny", rank=2, seed=0, train_mlp=True, train_attn=True, train_unembed=True
    )
    target = backend.inflight_target(trainer.snapshot())
    sampler = backend.inflight_sampler(target)
    assert target.publish(trainer.snapshot()) == 1
    assert len(sampler.sample([256, 72], max_tokens=2).sequences[0].tokens) == 2
    written = backend.export_external(
        tmp_path / "export",
        "tinker-local/tiny",
        trainer.adapter_tensors(),
        trainer.adapter_config(),
    )
    assert "adapter_model.safetensors" in written.files
    copied = backend.copy_checkpoint(tmp_path / "export", tmp_path / "copy")
    assert copied.files == written.files


def test_numpy_backend_samplers_share_a_bounded_cache_in_separate_namespaces() -> None:
    backend = NumpyBackend(prefix_cache_bytes=1 << 20)
    snapshot = backend.new_trainer(
        "tinker-local/tiny", rank=2, seed=0, train_mlp=True, train_attn=True, train_unembed=True
    ).snapshot()
    first, second = backend.snapshot_sampler(snapshot), backend.snapshot_sampler(snapshot)
    prompt = [256, *b"a prompt of more than sixteen tokens"]
    assert first.sample(prompt, max_tokens=1).prompt_cache_hit_tokens == 0
    assert first.sample(prompt, max_tokens=1).prompt_cache_hit_tokens == 32
    assert second.sample(prompt, max_tokens=1).prompt_cache_hit_tokens == 0
    assert first.prefix_cache is second.prefix_cache and 0 < first.prefix_cache.nbytes <= 1 << 20
