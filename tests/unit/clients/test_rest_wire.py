"""RestClient on the wire: paths, query parameters, redirects, return styles."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
from typing import Any

import pytest
from support.fake_service import FakeService, Reply

from tinker._futures import APIFuture

CHECKPOINT = {
    "checkpoint_id": "weights/0001",
    "checkpoint_type": "training",
    "time": "2025-11-26T06:00:00Z",
    "tinker_path": "tinker://M0/weights/0001",
}
RUN = {
    "training_run_id": "M0",
    "base_model": "base/model",
    "model_owner": "me",
    "is_lora": True,
    "lora_rank": 8,
    "last_request_time": "2025-11-26T06:00:00Z",
}
CURSOR = {"offset": 0, "limit": 20, "total_count": 1}


@pytest.fixture
def rest(fake: FakeService, service: Any) -> Any:
    fake.direct(
        "GET", "/api/v1/training_runs", lambda _b: {"training_runs": [RUN], "cursor": CURSOR}
    )
    fake.direct("GET", "/api/v1/training_runs/M0", lambda _b: RUN)
    fake.direct(
        "GET", "/api/v1/training_runs/M0/checkpoints", lambda _b: {"checkpoints": [CHECKPOINT]}
    )
    fake.direct(
        "GET", "/api/v1/checkpoints", lambda _b: {"checkpoints": [CHECKPOINT], "cursor": CURSOR}
    )
    fake.direct("DELETE", "/api/v1/training_runs/M0/checkpoints/weights/0001", lambda _b: None)
    fake.direct(
        "POST", "/api/v1/training_runs/M0/checkpoints/weights/0001/publish", lambda _b: None
    )
    fake.direct(
        "DELETE", "/api/v1/training_runs/M0/checkpoints/weights/0001/publish", lambda _b: None
    )
    fake.direct(
        "POST",
        "/api/v1/weights_info",
        lambda _b: {"base_model": "base/model", "is_lora": True, "lora_rank": 8},
    )
    fake.direct("GET", "/api/v1/sessions", lambda _b: {"sessions": ["S"]})
    fake.direct(
        "GET", "/api/v1/sessions/S", lambda _b: {"training_run_ids": ["M0"], "sampler_ids": []}
    )
    fake.direct(
        "GET",
        "/api/v1/samplers/S:sample:0",
        lambda _b: {"sampler_id": "S:sample:0", "base_model": "b"},
    )
    return service.create_rest_client()


def _last(fake: FakeService) -> tuple[str, str, dict[str, str], Any]:
    call = fake.api_calls[-1]
    return call.method, call.path, call.params, call.body


def test_sync_methods_return_futures_and_hit_the_right_paths(fake: FakeService, rest: Any) -> None:
    runs = rest.list_training_runs()
    assert isinstance(runs, concurrent.futures.Future)
    assert runs.result(timeout=10).training_runs[0].training_run_id == "M0"
    assert _last(fake)[:3] == ("GET", "/api/v1/training_runs", {"limit": "20", "offset": "0"})
    rest.list_training_runs(limit=5, offset=10).result(timeout=10)
    assert _last(fake)[2] == {"limit": "5", "offset": "10"}
    assert rest.get_training_run("M0").result(timeout=10).lora_rank == 8
    assert _last(fake)[:2] == ("GET", "/api/v1/training_runs/M0")
    rest.get_training_run_by_tinker_path("tinker://M0/weights/0001").result(timeout=10)
    assert _last(fake)[:2] == ("GET", "/api/v1/training_runs/M0")
    listed = rest.list_checkpoints("M0").result(timeout=10)
    assert listed.checkpoints[0].checkpoint_id == "weights/0001"
    assert _last(fake)[:2] == ("GET", "/api/v1/training_runs/M0/checkpoints")
    rest.list_user_checkpoints().result(timeout=10)
    assert _last(fake)[:3] == ("GET", "/api/v1/checkpoints", {"limit": "100", "offset": "0"})
    rest.get_session("S").result(timeout=10)
    assert _last(fake)[:2] == ("GET", "/api/v1/sessions/S")
    assert rest.list_sessions().result(timeout=10).sessions == ["S"]
    assert _last(fake)[:3] == ("GET", "/api/v1/sessions", {"limit": "20", "offset": "0"})


def test_checkpoint_ids_keep_their_slash(fake: FakeService, rest: Any) -> None:
    assert rest.delete_checkpoint("M0", "weights/0001").result(timeout=10) is None
    assert _last(fake)[:2] == ("DELETE", "/api/v1/training_runs/M0/checkpoints/weights/0001")
    rest.delete_checkpoint_from_tinker_path("tinker://M0/weights/0001").result(timeout=10)
    assert _last(fake)[:2] == ("DELETE", "/api/v1/training_runs/M0/checkpoints/weights/0001")
    rest.publish_checkpoint_from_tinker_path("tinker://M0/weights/0001").result(timeout=10)
    assert _last(fake)[:2] == (
        "POST",
        "/api/v1/training_runs/M0/checkpoints/weights/0001/publish",
    )
    rest.unpublish_checkpoint_from_tinker_path("tinker://M0/weights/0001").result(timeout=10)
    assert _last(fake)[:2] == (
        "DELETE",
        "/api/v1/training_runs/M0/checkpoints/weights/0001/publish",
    )


def test_api_futures_for_weights_info_and_sampler(fake: FakeService, rest: Any) -> None:
    info = rest.get_weights_info_by_tinker_path("tinker://M0/weights/0001")
    assert isinstance(info, APIFuture)
    assert info.result(timeout=10).lora_rank == 8
    assert _last(fake)[1::2] == (
        "/api/v1/weights_info",
        {"tinker_path": "tinker://M0/weights/0001"},
    )
    sampler = rest.get_sampler("S:sample:0")
    assert isinstance(sampler, APIFuture)
    assert sampler.result(timeout=10).base_model == "b"


def test_archive_url_from_the_redirect(fake: FakeService, rest: Any) -> None:
    path = "/api/v1/training_runs/M0/checkpoints/weights/0001/archive"
    fake.direct(
        "GET",
        path,
        lambda _b: Reply(
            302,
            None,
            {"Location": "https://files.test/a.tar", "Expires": "Wed, 26 Nov 2025 06:15:14 GMT"},
        ),
    )
    got = rest.get_checkpoint_archive_url_from_tinker_path("tinker://M0/weights/0001").result(
        timeout=10
    )
    assert got.url == "https://files.test/a.tar"
    assert got.expires == datetime.datetime(2025, 11, 26, 6, 15, 14, tzinfo=datetime.timezone.utc)
    call = fake.api_calls[-1]
    assert (call.method, call.path, call.headers["Accept"]) == ("GET", path, "application/gzip")
    # only one request: the redirect is not followed
    assert [c.path for c in fake.api_calls].count(path) == 1


def test_archive_url_without_expires_defaults_to_15_minutes(fake: FakeService, rest: Any) -> None:
    path = "/api/v1/training_runs/M0/checkpoints/weights/0001/archive"
    fake.direct("GET", path, lambda _b: Reply(302, None, {"Location": "https://files.test/a"}))
    before = datetime.datetime.now(datetime.timezone.utc)
    got = rest.get_checkpoint_archive_url("M0", "weights/0001").result(timeout=10)
    after = datetime.datetime.now(datetime.timezone.utc)
    window = datetime.timedelta(minutes=15)
    assert before + window <= got.expires <= after + window


def test_archive_url_2xx_is_a_runtime_error(fake: FakeService, rest: Any) -> None:
    path = "/api/v1/training_runs/M0/checkpoints/weights/0001/archive"
    fake.direct("GET", path, lambda _b: {"unexpected": True})
    with pytest.raises(RuntimeError, match="Expected a redirect"):
        rest.get_checkpoint_archive_url("M0", "weights/0001").result(timeout=10)


def test_async_twins_return_values_from_fresh_loops(rest: Any) -> None:
    run = asyncio.run(rest.get_training_run_async("M0"))
    assert run.training_run_id == "M0"
    sessions = asyncio.run(rest.list_sessions_async(limit=3))
    assert sessions.sessions == ["S"]
    assert asyncio.run(rest.delete_checkpoint_async("M0", "weights/0001")) is None


def test_set_checkpoint_ttl(fake: FakeService, rest: Any) -> None:
    path = "/api/v1/training_runs/M0/checkpoints/sampler_weights/s1/ttl"
    fake.direct("PUT", path, lambda _b: None)
    tinker_path = "tinker://M0/sampler_weights/s1"
    assert rest.set_checkpoint_ttl_from_tinker_path(tinker_path, 3600).result(timeout=10) is None
    asyncio.run(rest.set_checkpoint_ttl_from_tinker_path_async(tinker_path, None))
    assert [(c.method, c.path, c.body) for c in fake.api_calls[-2:]] == [
        ("PUT", path, {"ttl_seconds": 3600}),
        ("PUT", path, {"ttl_seconds": None}),
    ]
    with pytest.raises(ValueError, match="ttl_seconds"):
        rest.set_checkpoint_ttl_from_tinker_path(tinker_path, 0)
