"""ServiceClient: session creation, capabilities, from-state, async twins, lifecycle."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from support.fake_service import FakeService

from tinker import types
from tinker.errors import TinkerError
from tinker.service_client import ServiceClient

from .conftest import API_KEY


def test_session_creation_body_and_headers(fake: FakeService, service: ServiceClient) -> None:
    assert fake.requests == [], "the constructor must not send anything"
    assert service.get_console_url() == "https://tinker.thinkingmachines.ai/sessions"
    assert service.session_id == "S"
    (call,) = fake.seen("/api/v1/create_session")
    assert call.body == {"tags": [], "user_metadata": {}, "sdk_version": "0.5.1"}
    assert call.headers["X-API-Key"] == API_KEY
    assert API_KEY not in repr(service)
    assert service.get_console_url() == "https://tinker.thinkingmachines.ai/sessions/S"


def test_user_metadata_and_default_headers(
    fake: FakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TINKER_API_KEY", raising=False)
    fake.client_config = {}  # a 0.38 service
    with ServiceClient(
        {"who": "me"},
        "proj-1",
        display_name="nightly run",
        api_key=API_KEY,
        base_url=fake.url,
        default_headers={"X-Extra": "1", "X-Both": "base"},
        default_headers_overrides={"X-Both": "override"},
        telemetry=False,
    ) as client:
        assert client.project_id == "proj-1"
        assert client.session_id == "S"
    (call,) = fake.seen("/api/v1/create_session")
    assert call.body == {
        "tags": [],
        "user_metadata": {"who": "me"},
        "sdk_version": "0.38.0",
        "project_id": "proj-1",
        "display_name": "nightly run",
        "type": "create_session",
    }
    assert call.headers["X-Extra"] == "1"
    assert call.headers["X-Both"] == "override"
    (finish,) = fake.seen("/api/v1/sessions/S/finish")
    assert finish.body == {"reason": {"type": "success"}, "detail": None}


def test_missing_api_key_is_a_tinker_error(
    fake: FakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TINKER_API_KEY", raising=False)
    client = ServiceClient(base_url=fake.url)  # lazy: nothing checked against the server yet
    with pytest.raises(TinkerError, match="API key"):
        client.create_sampling_client(base_model="base/model")
    assert fake.requests == []


def test_capabilities(fake: FakeService, service: ServiceClient) -> None:
    fake.direct(
        "GET",
        "/api/v1/get_server_capabilities",
        lambda _b: {"supported_models": [{"model_name": "a"}, {"model_name": "b"}]},
    )
    caps = service.get_server_capabilities()
    assert [m.model_name for m in caps.supported_models] == ["a", "b"]
    caps = asyncio.run(service.get_server_capabilities_async())
    assert len(caps.supported_models) == 2


@pytest.mark.parametrize(
    ("optimizer", "method"),
    [
        (False, "create_training_client_from_state"),
        (True, "create_training_client_from_state_with_optimizer"),
    ],
)
def test_from_state_reads_rank_then_loads(
    fake: FakeService, service: ServiceClient, optimizer: bool, method: str
) -> None:
    fake.direct(
        "POST",
        "/api/v1/weights_info",
        lambda _b: {"base_model": "base/model", "is_lora": True, "lora_rank": 4},
    )
    fake.future("/api/v1/load_weights", lambda b: {"path": b["path"]})
    path = "tinker://M9/weights/c1"
    trainer = getattr(service, method)(path, {"k": "v"})  # 0.5.1: user_metadata second
    assert trainer.model_id == "M0"
    assert [c.path for c in fake.api_calls] == [
        "/api/v1/weights_info",
        "/api/v1/create_model",
        "/api/v1/get_info",
        "/api/v1/load_weights",
    ]
    assert fake.bodies("/api/v1/create_model")[0]["user_metadata"] == {"k": "v"}
    assert fake.bodies("/api/v1/weights_info") == [{"tinker_path": path}]
    assert fake.bodies("/api/v1/create_model")[0]["lora_config"]["rank"] == 4
    assert fake.bodies("/api/v1/load_weights") == [
        {"model_id": "M0", "path": path, "optimizer": optimizer, "seq_id": 1}
    ]


def test_from_state_refuses_non_lora(fake: FakeService, service: ServiceClient) -> None:
    fake.direct("POST", "/api/v1/weights_info", lambda _b: {"base_model": "b", "is_lora": False})
    created = service.create_training_client_from_state("tinker://M9/weights/c1")
    with pytest.raises(ValueError, match="not a LoRA checkpoint"):
        created.result()
    assert fake.bodies("/api/v1/create_model") == []


def test_async_twins_work_from_fresh_loops(fake: FakeService, service: ServiceClient) -> None:
    fake.future("/api/v1/optim_step", lambda _b: {})
    first = asyncio.run(service.create_lora_training_client_async("base/model", rank=2))
    second = asyncio.run(service.create_lora_training_client_async("base/model"))
    assert (first.model_id, second.model_id) == ("M0", "M1")

    async def pipelined() -> Any:
        future = await first.optim_step_async(types.AdamParams())
        return await future

    assert asyncio.run(pipelined()).metrics is None

    async def via_result_async() -> Any:
        future = await first.optim_step_async(types.AdamParams())
        return await future.result_async()

    asyncio.run(via_result_async())
    assert [b["seq_id"] for b in fake.bodies("/api/v1/optim_step")] == [1, 2]


def test_sync_call_inside_a_loop_works_and_warns_once(
    fake: FakeService,
    service: ServiceClient,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("tinker._loopguard._warned", set())
    fake.direct("GET", "/api/v1/get_server_capabilities", lambda _b: {"supported_models": []})

    async def inside() -> None:
        service.get_server_capabilities()
        service.get_server_capabilities()

    with caplog.at_level(logging.WARNING, logger="tinker"):
        asyncio.run(inside())
    warnings = [r for r in caplog.records if "blocks the running asyncio event loop" in r.message]
    assert len(warnings) == 1
    assert "get_server_capabilities" in warnings[0].getMessage()


def test_close_is_idempotent_and_context_manager_closes(
    fake: FakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TINKER_API_KEY", raising=False)
    with ServiceClient(api_key=API_KEY, base_url=fake.url, telemetry=False) as client:
        runtime = client.holder
    assert runtime.closed
    client.close()
    assert client.get_telemetry() is None


def test_config_and_settings_are_exclusive(fake: FakeService) -> None:
    from tinker.config import ClientConfig

    config = ClientConfig(api_key=API_KEY, base_url=fake.url, telemetry=False)
    with pytest.raises(TypeError, match="either config"):
        ServiceClient(config=config, timeout=3.0)
    with ServiceClient(config=config) as client:
        assert client.session_id == "S"


def test_constructor_inside_a_loop_warns_with_advice(
    fake: FakeService, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tinker._loopguard._warned", set())
    monkeypatch.delenv("TINKER_API_KEY", raising=False)

    async def inside() -> str:
        client = ServiceClient(api_key=API_KEY, base_url=fake.url, telemetry=False)
        try:
            return client.session_id
        finally:
            client.close()

    with caplog.at_level(logging.WARNING, logger="tinker"):
        assert asyncio.run(inside()) == "S"
    (warning,) = [r.getMessage() for r in caplog.records if "event loop" in r.getMessage()]
    assert "ServiceClient()" in warning
    assert "asyncio.to_thread" in warning


def test_async_twin_leaves_the_loop_free_while_waiting(
    fake: FakeService, service: ServiceClient
) -> None:
    import threading

    release = threading.Event()

    def slow_capabilities(_body: Any) -> Any:
        release.wait(timeout=10)
        return {"supported_models": []}

    fake.direct("GET", "/api/v1/get_server_capabilities", slow_capabilities)

    async def main() -> int:
        task = asyncio.ensure_future(service.get_server_capabilities_async())
        ticks = 0
        while ticks < 5:  # the loop keeps running while the request is held by the server
            await asyncio.sleep(0.001)
            ticks += 1
        assert not task.done()
        release.set()
        await task
        return ticks

    assert asyncio.run(main()) == 5
