"""The client tests run against the tinker.testing plugin's local server (`tinker_server`);
here: no telemetry and no credentials from the developer's environment."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINKER_TELEMETRY", "0")
    monkeypatch.delenv("TINKER_API_KEY", raising=False)
    monkeypatch.delenv("TINKER_BASE_URL", raising=False)
