"""Settings: the default data directory follows the environment."""

from __future__ import annotations

import pytest

from tinker.local.server.settings import default_data_dir


def test_data_dir_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("TINKER_LOCAL_DATA_DIR", "/tmp/explicit-dir")
    assert str(default_data_dir()) == "/tmp/explicit-dir"
    monkeypatch.delenv("TINKER_LOCAL_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", "/tmp/cachehome")
    assert str(default_data_dir()) == "/tmp/cachehome/tinker-sync/local"
