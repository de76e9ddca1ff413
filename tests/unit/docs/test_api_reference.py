"""docs/api.md lists every public client method and is exactly what the generator produces."""

from __future__ import annotations

import importlib.util
import inspect
import pathlib
from types import ModuleType

import pytest

import tinker

ROOT = pathlib.Path(__file__).resolve().parents[3]
API_MD = ROOT / "docs" / "api.md"
CLASSES = [
    tinker.ServiceClient,
    tinker.TrainingClient,
    tinker.SamplingClient,
    tinker.RestClient,
    tinker.APIFuture,
]


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_api_docs", ROOT / "scripts" / "gen_api_docs.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _public_names(cls: type) -> list[str]:
    """Public methods and properties, found independently of the generator."""
    return [
        name
        for name in dir(cls)
        if not name.startswith("_")
        and (
            callable(getattr(cls, name)) or isinstance(inspect.getattr_static(cls, name), property)
        )
    ]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_every_public_method_has_a_section(cls: type) -> None:
    text = API_MD.read_text(encoding="utf-8")
    missing = [name for name in _public_names(cls) if f"### `{cls.__name__}.{name}`" not in text]
    assert missing == [], (
        f"docs/api.md lacks {cls.__name__}: {missing}; run scripts/gen_api_docs.py"
    )
    assert f"## `tinker.{cls.__name__}`" in text


def test_api_md_is_up_to_date(generator: ModuleType) -> None:
    assert API_MD.read_text(encoding="utf-8") == generator.render(), (
        "docs/api.md is stale: run `python scripts/gen_api_docs.py`"
    )


def test_signatures_are_shown_with_the_official_parameter_names(generator: ModuleType) -> None:
    text = generator.render()
    assert (
        "def create_lora_training_client(base_model: str, rank: int = 32, seed: int | None = None, "
        "train_mlp: bool = True, train_attn: bool = True, train_unembed: bool = True, "
        "user_metadata: dict[str, str] | None = None, "
        "optimizer: types.OptimizerConfig | None = None) -> BackcompatTrainingClientFuture"
    ) in text
    assert "def sample(prompt: types.ModelInput, num_samples: int, sampling_params: " in text
    assert "async def forward_backward_async(data: list[types.Datum]" in text
    # Inherited Future methods say where they come from.
    assert "(from `concurrent.futures._base.Future`)" in text


def test_check_mode_reports_a_stale_file(
    generator: ModuleType, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = tmp_path / "api.md"
    stale.write_text(generator.render().replace("ServiceClient.close", "ServiceClient.shut"))
    monkeypatch.setattr(generator, "API_MD", stale)
    assert generator.main(["--check"]) == 1
    assert generator.main([]) == 0  # regenerates the file
    assert generator.main(["--check"]) == 0
    assert "### `ServiceClient.close`" in stale.read_text()
