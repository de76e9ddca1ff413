"""The 0.38 public surface over the fake service: creation futures, the lazy ServiceClient and
its close, the standalone RestClient, and bad input to the new parameters."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import pickle
import threading
import warnings
from typing import Any

import pytest
from support.fake_service import FakeService, Reply

from tinker import types
from tinker._futures import APIFuture
from tinker.rest_client import RestClient
from tinker.service_client import ServiceClient
from tinker.training_client import TrainingClient

from .conftest import API_KEY


def test_creation_returns_the_client_a_future_and_an_awaitable(
    fake: FakeService, service: ServiceClient
) -> None:
    fake.future("/api/v1/optim_step", lambda _b: {"metrics": {"lr": 1.0}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        created = service.create_lora_training_client("base/model", rank=2)
        assert isinstance(created, TrainingClient)
        assert isinstance(created, concurrent.futures.Future)
        called: list[Any] = []
        created.add_done_callback(called.append)
        client = created.result(timeout=10)
        assert called == [created] and type(client) is TrainingClient
        # 0.5.1 style: the future used as the client forwards to it.
        assert created.model_id == "M0" and created.get_info().model_id == "M0"
        assert created.optim_step(types.AdamParams()).result(timeout=10).metrics == {"lr": 1.0}
        assert repr(created) == "TrainingClient(model_id='M0')"

        async def awaited() -> Any:
            return await service.create_lora_training_client("base/model")

        assert asyncio.run(awaited()).model_id == "M1"
        # get_info was fetched at creation: later calls send nothing.
        before = len(fake.seen("/api/v1/get_info"))
        client.get_info()
        assert len(fake.seen("/api/v1/get_info")) == before


def test_failed_creation_fails_the_future_and_every_forwarded_call(
    fake: FakeService, service: ServiceClient
) -> None:
    fake.future("/api/v1/create_model", lambda _b: [])
    fake.direct("POST", "/api/v1/create_model", lambda _b: (400, {"error": "no such model"}))
    created = service.create_lora_training_client("nope/model")
    with pytest.raises(Exception, match="no such model"):
        created.result(timeout=10)
    assert repr(created).startswith("<BackcompatTrainingClientFuture: failed: ")
    with pytest.raises(Exception, match="no such model"):
        created.forward_backward([], "cross_entropy")


def test_sampling_creation_future_pickles_as_its_client(
    fake: FakeService, service: ServiceClient
) -> None:
    fake.direct(
        "POST",
        "/api/v1/create_sampling_session",
        lambda b: {"sampling_session_id": f"S:sample:{b['sampling_session_seq_id']}"},
    )
    created = service.create_sampling_client(model_path="tinker://M0/sampler_weights/s")
    assert created.get_base_model() == "base/model"  # asked once, at creation
    copy = pickle.loads(pickle.dumps(created))
    assert copy.sampling_session_id == "S:sample:0"
    assert copy.get_base_model() == "base/model"


@pytest.mark.parametrize(
    ("raised", "status"),
    [(None, "success"), (ValueError, "errored"), (KeyboardInterrupt, "interrupted")],
)
def test_context_exit_finishes_the_session_with_its_status(
    fake: FakeService, monkeypatch: pytest.MonkeyPatch, raised: Any, status: str
) -> None:
    monkeypatch.delenv("TINKER_API_KEY", raising=False)
    fake.client_config = {}  # a 0.38 service: sessions are finished
    client = ServiceClient(api_key=API_KEY, base_url=fake.url, telemetry=False)
    with pytest.raises(raised) if raised else _nothing(), client:
        assert client.session_id == "S"
        if raised:
            raise raised()
    (finish,) = fake.seen("/api/v1/sessions/S/finish")
    assert finish.body == {"reason": {"type": status}, "detail": None}
    with pytest.raises(RuntimeError, match="ServiceClient is closed"):
        client.create_lora_training_client("base/model")
    with pytest.raises(RuntimeError, match="ServiceClient is closed"):
        client.__enter__()
    assert client.close("errored").done()  # idempotent: the first close's future


def test_context_exit_inside_a_running_loop_waits_without_a_warning(
    fake: FakeService, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """0.38 code opens `with ServiceClient(...)` inside `async def` (there is no `async with`):
    leaving the block finishes the session before the next line runs, and says nothing."""
    monkeypatch.delenv("TINKER_API_KEY", raising=False)
    monkeypatch.setattr("tinker._loopguard._warned", set())
    closed_on_exit: list[bool] = []

    async def run() -> None:
        with ServiceClient(api_key=API_KEY, base_url=fake.url, telemetry=False) as client:
            await client.create_lora_training_client("base/model")
            runtime = client.holder  # the session exists: answered without a wait
        closed_on_exit.append(runtime.closed)

    with caplog.at_level(logging.DEBUG, logger="tinker"):
        asyncio.run(run())
    assert closed_on_exit == [True]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []

    async def blocking_result() -> None:
        # The guard stays on elsewhere: a plain result() on a pending future still warns.
        pending: APIFuture[None] = APIFuture()
        threading.Timer(0.05, pending.set_result, (None,)).start()
        pending.result()

    with caplog.at_level(logging.WARNING, logger="tinker"):
        asyncio.run(blocking_result())
    assert any("APIFuture.result() blocks" in r.getMessage() for r in caplog.records)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_close_before_any_session_sends_nothing(
    fake: FakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = ServiceClient(api_key=API_KEY, base_url=fake.url, telemetry=False)
    assert client.close("success", "done").result(timeout=1) is None
    assert fake.requests == []


def test_standalone_rest_client_needs_no_session(
    fake: FakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TINKER_PROJECT_ID", raising=False)
    rest = RestClient(base_url=fake.url, api_key=API_KEY)
    fake.direct("POST", "/api/v1/copy_weights", lambda _b: {"tinker_path": "tinker://C/weights/x"})
    copied = rest.copy_weights(
        "tinker://M0/weights/x", "proj", ttl_seconds=3600, weights_access_token="tok"
    )
    assert copied.result(timeout=10) == "tinker://C/weights/x"
    (call,) = fake.seen("/api/v1/copy_weights")
    assert call.body == {
        "source_path": "tinker://M0/weights/x",
        "destination_project_id": "proj",
        "ttl_seconds": 3600,
    }
    assert call.headers["X-Tinker-Weights-Access-Token"] == "tok"
    page = {"training_runs": [], "cursor": {"offset": 0, "limit": 20, "total_count": 0}}
    fake.direct("GET", "/api/v1/training_runs", lambda _b: page)
    rest.list_training_runs(access_scope="accessible", project_id="p").result(timeout=10)
    (runs,) = fake.seen("/api/v1/training_runs")
    assert runs.params == {
        "limit": "20",
        "offset": "0",
        "access_scope": "accessible",
        "project_id": "p",
    }
    rest.assign_session_project("S2", "p2").result(timeout=10)
    assert fake.bodies("/api/v1/sessions/S2/project") == [{"project_id": "p2"}]
    assert fake.seen("/api/v1/create_session") == []
    assert RestClient(base_url=fake.url, api_key=API_KEY)._runtime is rest._runtime


BAD_INPUT = [
    ("close status", lambda s: s.close("done"), ValueError, "status must be one of"),
    ("close detail", lambda s: s.close("success", 3), TypeError, "detail must be a str"),
    (
        "display_name",
        lambda s: ServiceClient(display_name="", api_key=API_KEY),
        ValueError,
        "display_name must be a non-empty str",
    ),
    (
        "headers",
        lambda s: ServiceClient(default_headers_overrides=["x"], api_key=API_KEY),
        TypeError,
        "default_headers_overrides must be a mapping",
    ),
    (
        "copy without project",
        lambda s: s.copy_weights("tinker://M0/weights/x"),
        ValueError,
        "needs a destination project",
    ),
    (
        "access scope",
        lambda s: s.create_rest_client().get_session("S", access_scope="mine"),
        ValueError,
        "access_scope must be 'owned' or 'accessible'",
    ),
    (
        "rest with both",
        lambda s: RestClient(s.create_rest_client()._runtime, base_url="http://x"),
        ValueError,
        "not both",
    ),
]


@pytest.mark.parametrize(("name", "call", "error", "match"), BAD_INPUT)
def test_bad_input_raises_in_the_callers_thread_and_sends_nothing(
    fake: FakeService,
    service: ServiceClient,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    call: Any,
    error: type,
    match: str,
) -> None:
    monkeypatch.delenv("TINKER_PROJECT_ID", raising=False)
    before = len(fake.api_calls)
    with pytest.raises(error, match=match):
        call(service)
    assert len(fake.api_calls) == before


def test_close_does_not_wait_on_a_server_that_is_gone(
    fake: FakeService, caplog: pytest.LogCaptureFixture
) -> None:
    import time

    fake.client_config = {}  # a 0.38 service: sessions are finished
    client = ServiceClient(api_key=API_KEY, base_url=fake.url, telemetry=False, max_retries=10)
    assert client.session_id == "S"
    fake.close()
    started = time.monotonic()
    with caplog.at_level("WARNING", logger="tinker"):
        assert client.close("errored").result(timeout=30) is None
    assert time.monotonic() - started < 10  # one attempt, no retries
    assert "could not finish session S on the server" in caplog.text


def test_close_waits_in_a_plain_thread_and_not_in_an_event_loop(
    fake: FakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.client_config = {}  # a 0.38 service: sessions are finished
    plain = ServiceClient(api_key=API_KEY, base_url=fake.url, telemetry=False)
    assert plain.session_id == "S"
    assert plain.close("success").done()  # finished and closed before it returns
    assert len(fake.seen("/api/v1/sessions/S/finish")) == 1

    in_loop = ServiceClient(api_key=API_KEY, base_url=fake.url, telemetry=False)
    assert in_loop.session_id == "S"
    fake.push("/api/v1/sessions/S/finish", Reply(200, {}, delay=0.5))

    async def close() -> bool:
        closing = in_loop.close("errored", "boom")
        returned_at_once = not closing.done()
        await closing
        return returned_at_once

    assert asyncio.run(close())
    finishes = [call.body for call in fake.seen("/api/v1/sessions/S/finish")]
    assert finishes[-1] == {"reason": {"type": "errored"}, "detail": "boom"}


def test_a_pickled_training_client_keeps_the_negotiated_server_and_its_info(
    fake: FakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tinker import _session

    fake.client_config = {"fwdbwd_max_chunk_len": 64}  # a 0.38 service with its own limits
    client = ServiceClient(api_key=API_KEY, base_url=fake.url, telemetry=False)
    trainer = client.create_lora_training_client("base/model", rank=8).result()
    blob = pickle.dumps(trainer)
    info_calls = len(fake.seen("/api/v1/get_info"))
    # In another process no runtime of the session exists: unpickling attaches a new one.
    monkeypatch.setattr(_session, "_registry", {})
    copy = pickle.loads(blob)
    assert copy.holder is not trainer.holder
    assert copy.holder.server == trainer.holder.server and copy.holder.server.current
    assert copy.holder.chunk_limits == trainer.holder.chunk_limits
    assert copy.get_info() == trainer.get_info()
    assert len(fake.seen("/api/v1/get_info")) == info_calls  # carried over, not asked again
    copy.holder.close()
    client.close()
