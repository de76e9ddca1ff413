"""Settings: the default data directory follows the environment; the sample limits bound the
KV cache of every local model."""

from __future__ import annotations

import pytest

from tinker.local.compute.catalogue import LOCAL_MODELS
from tinker.local.server import settings
from tinker.local.server.settings import default_data_dir


def test_data_dir_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("TINKER_LOCAL_DATA_DIR", "/tmp/explicit-dir")
    assert str(default_data_dir()) == "/tmp/explicit-dir"
    monkeypatch.delenv("TINKER_LOCAL_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", "/tmp/cachehome")
    assert str(default_data_dir()) == "/tmp/cachehome/tinker-sync/local"


@pytest.mark.parametrize("name", sorted(LOCAL_MODELS))
def test_the_largest_sample_request_holds_at_most_256_mib_of_kv_cache(name: str) -> None:
    config = LOCAL_MODELS[name]
    per_token = 2 * config.n_layers * config.d_model * 4  # keys and values, float32
    assert settings.MAX_SAMPLE_TOKENS * per_token <= 256 * 2**20
