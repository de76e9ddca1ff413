"""Sessions: opening one, the per-process registry (attach, pickle, exit), and workers in
forked and spawned processes that use the parent's session."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import signal
import threading
from typing import Any

import pytest
from core_helpers import RuntimeFactory
from core_mp_worker import use_runtime
from support.fake_service import FakeService, Reply

from tinker._calls import ApiCall
from tinker._futures import flatten
from tinker._retry import RetryConfig
from tinker._runtime import Runtime, RuntimeOptions
from tinker._session import attach, open_session
from tinker._transport import Traffic
from tinker.config import ClientConfig
from tinker.errors import APIResponseValidationError


def get(path: str) -> ApiCall:
    return ApiCall(traffic=Traffic.TRAIN, method="GET", path=path)


def test_start_sends_create_session_and_logs_server_messages(
    service: FakeService, make_runtime: RuntimeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    service.push(
        "/api/v1/create_session",
        Reply(200, {"session_id": "S-9", "info_message": "hello",
                       "warning_message": "careful", "error_message": "degraded"}),
    )  # fmt: skip
    with caplog.at_level(logging.INFO, logger="tinker"):
        runtime = make_runtime(tags=("a", "b"))
    assert runtime.session_id == "S-9"
    (request,) = service.seen("/api/v1/create_session")
    assert request.body == {"tags": ["a", "b"], "user_metadata": {}, "sdk_version": "0.5.1"}
    levels = {(r.levelno, r.getMessage()) for r in caplog.records}
    assert {(logging.INFO, "hello"), (logging.WARNING, "careful"),
            (logging.ERROR, "degraded")} <= levels  # fmt: skip


def test_start_passes_user_metadata_and_rejects_a_reply_without_session_id(
    service: FakeService,
) -> None:
    config = ClientConfig(api_key="k", base_url=service.url, telemetry=False)
    options = RuntimeOptions(heartbeat=False)
    with open_session(config, user_metadata={"who": "me"}, options=options):
        pass
    assert service.seen("/api/v1/create_session")[0].body["user_metadata"] == {"who": "me"}
    service.push("/api/v1/create_session", Reply(200, {"type": "create_session"}))
    with pytest.raises(APIResponseValidationError, match="session_id"):
        open_session(config, options=options)


def test_attach_reuses_the_open_runtime_and_pickle_reattaches(
    service: FakeService, make_runtime: RuntimeFactory
) -> None:
    runtime = make_runtime()
    assert attach(runtime.config, runtime.session_id) is runtime
    assert pickle.loads(pickle.dumps(runtime)) is runtime
    runtime.close()
    fresh = attach(runtime.config, runtime.session_id)
    try:
        assert fresh is not runtime and fresh.session_id == runtime.session_id
        assert len(service.seen("/api/v1/create_session")) == 1
        get = ApiCall(traffic=Traffic.TRAIN, method="GET", path="/api/v1/x")
        assert fresh.call(get)["path"] == "/api/v1/x"
    finally:
        fresh.close()


def test_atexit_hook_closes_open_runtimes(make_runtime: RuntimeFactory) -> None:
    from tinker._session import _close_all_at_exit

    runtime = make_runtime()
    _close_all_at_exit()
    assert runtime.closed


@pytest.fixture
def runtime(service: FakeService) -> Runtime:
    config = ClientConfig(api_key="k", base_url=service.url, telemetry=False)
    started = open_session(config, options=RuntimeOptions())
    yield started  # type: ignore[misc]
    started.close()


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_pool_workers_use_the_parent_session(
    method: str, runtime: Runtime, service: FakeService
) -> None:
    # Exercise the parent's threads first, so that the child inherits live state.
    assert runtime.call(get("/api/v1/warm"))["path"] == "/api/v1/warm"
    context = multiprocessing.get_context(method)
    with context.Pool(2) as pool:
        results = pool.starmap(use_runtime, [(runtime, n) for n in range(4)], chunksize=1)
    assert [r["echo"] for r in results] == [{"n": n} for n in range(4)]
    assert all(r["path"] == f"/api/v1/items/{n}" for n, r in enumerate(results))
    assert all(r["same"] and r["session_id"] == "sess-1" for r in results)
    assert all(r["heartbeats"] == 1 for r in results)
    assert os.getpid() not in {r["pid"] for r in results}
    assert len(service.seen("/api/v1/create_session")) == 1
    # The parent is unaffected.
    assert runtime.call(get("/api/v1/after"))["path"] == "/api/v1/after"


def test_bare_fork_child_rebuilds_lazily_and_the_parent_goes_on(runtime: Runtime) -> None:
    runtime.call(get("/api/v1/warm"))
    pid = os.fork()
    if pid == 0:  # child: must work (and never hang) with the inherited runtime
        code = 1
        try:
            result = use_runtime(runtime, 7)
            code = 0 if result["echo"] == {"n": 7} and result["heartbeats"] == 1 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert use_runtime(runtime, 8)["echo"] == {"n": 8}


def test_fork_child_waiting_on_an_inherited_future_gets_its_result(
    runtime: Runtime, service: FakeService
) -> None:
    service.auto_complete = False
    inherited = runtime.poller.track("inherited-1", "Sample", lambda body: body)
    pid = os.fork()
    if pid == 0:  # child: only waits on the parent's future, never touches the runtime
        code = 1
        try:
            code = 0 if inherited.result(timeout=20) == {"done": 1} else 2
        finally:
            os._exit(code)
    service.complete("inherited-1", {"done": 1})
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert inherited.result(timeout=10) == {"done": 1}


def test_fork_while_other_threads_hold_runtime_locks(runtime: Runtime) -> None:
    retries = runtime.sample_retries(RetryConfig())
    runtime.timers.call_later(0.0, lambda: None)  # the parent's timer thread is running
    held, release = threading.Event(), threading.Event()
    locks = [
        runtime.timers._cond,
        runtime._pools[Traffic.SAMPLE]._cond,
        runtime.poller.pool._cond,
        runtime.poller._lock,
        retries._limit._lock,
        retries._watchdog._lock,
        runtime.sample_limiter._lock,
        runtime.sample_limiter._slots._lock,
        runtime._lock,
    ]

    def hold_locks() -> None:
        with contextlib.ExitStack() as stack:
            for lock in locks:
                stack.enter_context(lock)
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold_locks)
    holder.start()
    assert held.wait(5)
    pid = os.fork()
    if pid == 0:  # child: every lock above is held by a thread that does not exist here
        code = 1
        try:
            signal.alarm(20)  # a deadlock kills the child instead of hanging the test

            def attempt() -> Any:
                asample = ApiCall(
                    traffic=Traffic.SAMPLE,
                    method="POST",
                    path="/api/v1/asample",
                    body={},
                    poll_as="Sample",
                )
                return flatten(runtime.sample_limiter.admit(lambda: runtime.submit(asample)))

            result = retries.run(attempt).result(timeout=15)
            code = 0 if result == {"echo": {}} else 2
        finally:
            os._exit(code)
    release.set()
    holder.join(5)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
