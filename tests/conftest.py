"""Suite-wide isolation: the tests never read or write the user's own cache directory."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_CACHE_KEY = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """Point the user cache (the embedded server's default data directory and the Hugging Face
    cache live there) at a fresh temporary directory, for this process and every subprocess a
    test starts."""
    cache = tempfile.mkdtemp(prefix="tinker-tests-cache-")
    config.stash[_CACHE_KEY] = cache
    os.environ["XDG_CACHE_HOME"] = cache
    for variable in ("TINKER_LOCAL_DATA_DIR", "HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        os.environ.pop(variable, None)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the temporary cache once the run is over."""
    cache = config.stash.get(_CACHE_KEY, None)
    if cache is not None:
        shutil.rmtree(cache, ignore_errors=True)
