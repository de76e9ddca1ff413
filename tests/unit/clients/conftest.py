"""Fixtures of the client tests: the shared fake service, a ServiceClient and a trainer on it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from support.fake_service import FakeService

API_KEY = "tml-secret-key-for-tests"


def model_info(body: dict[str, Any]) -> dict[str, Any]:
    """The fake's get_info answer: a LoRA model of "base/model"."""
    return {
        "type": "get_info",
        "model_id": body["model_id"],
        "model_data": {"model_name": "base/model"},
        "is_lora": True,
        "lora_rank": 8,
        "model_name": "base/model",
    }


@pytest.fixture
def fake() -> Iterator[FakeService]:
    """The service, creating models M0, M1, ... (model_seq_id 0, 1, ...)."""
    with FakeService(session_id="S") as service:
        service.future("/api/v1/create_model", lambda b: {"model_id": f"M{b['model_seq_id']}"})
        service.direct("POST", "/api/v1/get_info", model_info)
        service.route(
            "GET",
            "/api/v1/samplers/(.+)",
            lambda _request, sampler_id: {"sampler_id": sampler_id, "base_model": "base/model"},
        )
        yield service


@pytest.fixture
def service(fake: FakeService, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from tinker.service_client import ServiceClient

    for name in ("TINKER_API_KEY", "TINKER_BASE_URL", "TINKER_TAGS", "TINKER_LOG"):
        monkeypatch.delenv(name, raising=False)
    client = ServiceClient(api_key=API_KEY, base_url=fake.url, telemetry=False)
    yield client
    client.close()


@pytest.fixture
def trainer(service: Any) -> Any:
    return service.create_lora_training_client("base/model", rank=8).result()
