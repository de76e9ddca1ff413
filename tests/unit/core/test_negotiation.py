"""The start-up handshake and what the runtime does with the negotiated era: session bodies,
polls (allow_metadata_only, complete_metadata, 402 pauses), heartbeats and session finish."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Iterator
from typing import Any

import pytest
from support.fake_service import FakeService, Reply

from tinker._calls import ApiCall
from tinker._futures import flatten
from tinker._heartbeat import Heartbeat, heartbeat_call
from tinker._runtime import Runtime, RuntimeOptions, finish_status
from tinker._session import open_session
from tinker._transport import Traffic
from tinker._workers import ClientClosedError
from tinker.config import LEGACY_SERVER, ClientConfig, ServerConfig
from tinker.errors import APIResponseValidationError, APIStatusError, BadRequestError
from tinker.sampling_client import SamplingClient


@pytest.fixture
def current() -> Iterator[FakeService]:
    """A 0.38 service: it answers the handshake (zstd on, batch poller off)."""
    with FakeService(
        session_id="S38",
        hold=0.2,
        client_config={"proto_compress_fwdbwd": True, "fwdbwd_max_chunk_len": 64},
        dynamic_config={"sample_cancel_enabled": True, "refresh_interval_sec": 3},
    ) as svc:
        yield svc


def _open(service: FakeService, **options: Any) -> Runtime:
    config = ClientConfig(api_key="sk-test-key", base_url=service.url, telemetry=False)
    return open_session(config, options=RuntimeOptions(heartbeat=False, **options))


def _submit(path: str) -> ApiCall:
    return ApiCall(traffic=Traffic.TRAIN, method="POST", path=path, body={}, poll_as="Other")


def test_a_server_without_client_config_gets_the_0_5_1_protocol(service: FakeService) -> None:
    runtime = _open(service)
    try:
        assert runtime.server == LEGACY_SERVER
        assert [r.path for r in service.requests][:2] == [
            "/api/v1/client/config",
            "/api/v1/create_session",
        ]
        (create,) = service.bodies("/api/v1/create_session")
        assert create == {"tags": [], "user_metadata": {}, "sdk_version": "0.5.1"}
        flatten(runtime.submit(_submit("/api/v1/x"))).result(timeout=10)
        (poll,) = service.bodies("/api/v1/retrieve_future")
        assert poll == {"request_id": "req-0"}
    finally:
        runtime.close()
    assert service.seen("/api/v1/sessions/sess-1/finish") == []


def test_a_0_38_server_is_negotiated_and_its_switches_are_held(current: FakeService) -> None:
    runtime = _open(current)
    try:
        assert runtime.server == ServerConfig(
            compress_forward_backward=True,
            max_chunk_len=64,
            sample_cancel=True,
            dynamic_refresh_seconds=10.0,  # the floor of the refresh period
        )
        assert [r.path for r in current.requests][:3] == [
            "/api/v1/client/config",
            "/api/v1/client/dynamic_config",
            "/api/v1/create_session",
        ]
        assert current.bodies("/api/v1/client/config") == [{"sdk_version": "0.38.0"}]
        assert current.bodies("/api/v1/create_session") == [
            {"tags": [], "user_metadata": {}, "sdk_version": "0.38.0", "type": "create_session"}
        ]
        flatten(runtime.submit(_submit("/api/v1/x"))).result(timeout=10)
        assert current.bodies("/api/v1/retrieve_future") == [
            {"request_id": "req-0", "allow_metadata_only": True}
        ]
    finally:
        runtime.close()


def test_a_missing_dynamic_config_means_its_defaults(current: FakeService) -> None:
    current.dynamic_config = None
    runtime = _open(current)
    try:
        assert runtime.server.sample_cancel is False
        assert runtime.server.dynamic_refresh_seconds == 300.0
    finally:
        runtime.close()


def test_any_other_handshake_failure_stops_the_start(current: FakeService) -> None:
    current.push("/api/v1/client/config", Reply(400, {"detail": "bad sdk"}))
    with pytest.raises(BadRequestError, match="bad sdk"):
        _open(current)
    assert current.seen("/api/v1/create_session") == []


def test_metadata_only_answers_switch_the_next_poll_to_fetch_the_payload(
    current: FakeService,
) -> None:
    runtime = _open(current)
    try:
        current.auto_complete = False
        pending = runtime.submit(_submit("/api/v1/x"))
        current.wait_seen("/api/v1/retrieve_future", 1)
        current.script_polls(
            "req-0",
            [
                Reply(200, {"status": "complete_metadata", "response_payload_size": 12}),
                Reply(200, {"done": True}),
            ],
        )
        assert flatten(pending).result(timeout=10) == {"done": True}
        flags = [body["allow_metadata_only"] for body in current.bodies("/api/v1/retrieve_future")]
        assert flags[-2:] == [True, False]
    finally:
        runtime.close()


def test_a_second_metadata_only_answer_is_a_protocol_error(current: FakeService) -> None:
    runtime = _open(current)
    try:
        current.auto_complete = False
        metadata = Reply(200, {"status": "complete_metadata", "response_payload_size": 1})
        pending = runtime.submit(_submit("/api/v1/x"))
        current.wait_seen("/api/v1/retrieve_future", 1)
        current.script_polls("req-0", [metadata])
        with pytest.raises(Exception, match="announced the result of Other request req-0 twice"):
            flatten(pending).result(timeout=10)
    finally:
        runtime.close()


def test_402_pauses_polling_with_one_log_line_then_the_result_arrives(
    current: FakeService, caplog: pytest.LogCaptureFixture
) -> None:
    pauses: list[float] = []
    runtime = _open(current, sleep=pauses.append)
    try:
        current.auto_complete = False
        pending = runtime.submit(_submit("/api/v1/x"))
        current.wait_seen("/api/v1/retrieve_future", 1)
        billing = Reply(402, {"detail": "payment required"})
        with caplog.at_level(logging.WARNING, logger="tinker._poller"):
            current.script_polls("req-0", [billing, billing, Reply(200, {"ok": 1})])
            assert flatten(pending).result(timeout=10) == {"ok": 1}
        assert pauses.count(5.0) == 2
        notes = [r.getMessage() for r in caplog.records if "paused for billing" in r.getMessage()]
        assert len(notes) == 1 and "HTTP 402" in notes[0] and "up to 3600 s" in notes[0]
    finally:
        runtime.close()


def test_402_beyond_the_billing_window_fails_the_future(current: FakeService) -> None:
    current.client_config = {"billing_exception_max_pause_duration_sec": 0}
    runtime = _open(current)
    try:
        current.auto_complete = False
        pending = runtime.submit(_submit("/api/v1/x"))
        current.wait_seen("/api/v1/retrieve_future", 1)
        current.script_polls("req-0", [Reply(402, {"detail": "payment required"})])
        with pytest.raises(ValueError, match="status code 402"):
            flatten(pending).result(timeout=10)
    finally:
        runtime.close()


@pytest.mark.parametrize(
    ("exc_type", "status"),
    [(None, "success"), (RuntimeError, "errored"), (KeyboardInterrupt, "interrupted")],
)
def test_finish_status_of_a_with_block(exc_type: type[BaseException] | None, status: str) -> None:
    assert finish_status(exc_type) == status


def test_close_finishes_a_created_session_once(current: FakeService) -> None:
    runtime = _open(current)
    runtime.close("interrupted", "stopped by the user")
    runtime.close()
    assert current.bodies("/api/v1/sessions/S38/finish") == [
        {"reason": {"type": "interrupted"}, "detail": "stopped by the user"}
    ]


def test_pending_work_fails_before_the_finish_request_is_sent(
    current: FakeService, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = _open(current)
    current.future("/api/v1/x", lambda _body: Reply(408, {"type": "try_again"}))  # pending
    pending = runtime.operation(flatten(runtime.submit(_submit("/api/v1/x"))))  # a caller's
    current.wait_seen("/api/v1/retrieve_future", 1)
    seen_at_finish: list[BaseException | None] = []

    def finish(body: Any) -> Any:
        seen_at_finish.append(pending.exception(timeout=0))
        current.complete("req-0", {"done": True})  # the result arrives while closing
        return {}

    current.direct("POST", "/api/v1/sessions/S38/finish", finish)
    with caplog.at_level(logging.WARNING):
        runtime.close()
    (failed,) = seen_at_finish
    assert isinstance(failed, ClientClosedError)
    assert pending.exception(timeout=0) is failed
    assert [r.getMessage() for r in caplog.records if "pending" in r.getMessage()] == [
        "the client was closed with 1 operation pending; it failed with ClientClosedError"
    ]


def test_an_attached_copy_never_finishes_the_session(current: FakeService) -> None:
    runtime = _open(current)
    try:
        copy = pickle.loads(pickle.dumps(runtime))
        assert copy is runtime  # same process: the same runtime
        assert copy.server == runtime.server
    finally:
        runtime.close()
    assert len(current.seen("/api/v1/sessions/S38/finish")) == 1


def test_a_bad_close_status_is_refused_before_anything_is_sent(current: FakeService) -> None:
    runtime = _open(current)
    try:
        with pytest.raises(ValueError, match="status must be one of success, errored"):
            runtime.close("done")
        assert not runtime.closed
    finally:
        runtime.close()


def test_a_failed_finish_is_logged_and_close_goes_on(
    current: FakeService, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = _open(current)
    current.push("/api/v1/sessions/S38/finish", Reply(403, {"detail": "no"}))
    with caplog.at_level(logging.WARNING):
        runtime.close()
    assert runtime.closed
    assert any("could not finish session S38" in r.getMessage() for r in caplog.records)


def test_heartbeat_bodies_of_each_era() -> None:
    assert heartbeat_call("S", 10.0).body == {"session_id": "S"}
    assert heartbeat_call("S", 10.0, typed=True).body == {
        "session_id": "S",
        "type": "session_heartbeat",
    }


def test_a_410_heartbeat_stops_the_heartbeats(caplog: pytest.LogCaptureFixture) -> None:
    beats: list[int] = []

    def beat() -> None:
        beats.append(1)
        raise APIStatusError("gone", status_code=410, response=None, body=None)

    heartbeat = Heartbeat(beat, session_id="S", wait=lambda seconds: False)
    with caplog.at_level(logging.INFO, logger="tinker._heartbeat"):
        heartbeat._run()  # returns: the 410 stopped it
    assert beats == [1]
    assert any("has finished on the server" in r.getMessage() for r in caplog.records)


def test_an_unpickled_sampler_joins_and_numbers_its_samples_by_clone_id(
    current: FakeService,
) -> None:
    current.client_config = {"sample_join_sampling_session": True}
    current.direct(
        "POST",
        "/api/v1/join_sampling_session",
        lambda body: {"client_counter": 3, "type": "join_sampling_session"},
    )
    runtime = _open(current)
    try:
        original = SamplingClient(runtime, sampling_session_id="S38:sample:0")
        assert original._next_seq_id() == 0
        clone = pickle.loads(pickle.dumps(original))
        assert current.bodies("/api/v1/join_sampling_session") == [
            {"sampling_session_id": "S38:sample:0", "type": "join_sampling_session"}
        ]
        assert [clone._next_seq_id(), clone._next_seq_id()] == [3_000_000_000, 3_000_000_001]
    finally:
        runtime.close()


def test_without_the_join_switch_a_clone_picks_its_own_clone_id(current: FakeService) -> None:
    runtime = _open(current)
    try:
        clone = pickle.loads(pickle.dumps(SamplingClient(runtime, sampling_session_id="S38:s:0")))
        first = clone._next_seq_id()
        assert first % 1_000_000_000 == 0 and 1 <= first // 1_000_000_000 <= 1_000_000_000
        assert current.seen("/api/v1/join_sampling_session") == []
    finally:
        runtime.close()


def test_a_bad_join_answer_is_refused(current: FakeService) -> None:
    current.client_config = {"sample_join_sampling_session": True}
    current.direct("POST", "/api/v1/join_sampling_session", lambda body: {"client_counter": 0})
    runtime = _open(current)
    try:
        with pytest.raises(APIResponseValidationError, match="without a clone id >= 1"):
            pickle.loads(pickle.dumps(SamplingClient(runtime, sampling_session_id="S38:s:0")))
    finally:
        runtime.close()


def test_the_dynamic_config_is_refreshed_and_a_failed_refresh_keeps_it(
    current: FakeService,
) -> None:
    runtime = _open(current)
    try:
        assert runtime.server.sample_cancel and runtime.poller.cancel is not None
        assert runtime.server.dynamic_refresh_seconds == 10.0  # 3 s asked: the floor is 10 s
        current.dynamic_config = {"sample_cancel_enabled": False, "refresh_interval_sec": 60}
        runtime.refresh_dynamic_config()
        assert not runtime.server.sample_cancel and runtime.poller.cancel is None
        assert runtime.server.dynamic_refresh_seconds == 60.0
        assert runtime.server.compress_forward_backward  # client/config switches stay
        current.dynamic_config = {"sample_cancel_enabled": True, "sample_cancel_max_batch_size": 3}
        runtime.refresh_dynamic_config()
        assert runtime.poller.cancel is not None and runtime.server.sample_cancel_batch == 3
        current.push("/api/v1/client/dynamic_config", Reply(500, {"detail": "down"}))
        before = runtime.server
        runtime.refresh_dynamic_config()  # one attempt, failed: nothing changes
        assert runtime.server == before and runtime.poller.cancel is not None
        refreshes = current.seen("/api/v1/client/dynamic_config")
        assert len(refreshes) == 4  # start-up and three refreshes, no retries
        assert all("x-sdk-method" not in r.headers for r in refreshes)
        assert all(r.body == {"sdk_version": "0.38.0"} for r in refreshes)
    finally:
        runtime.close()
