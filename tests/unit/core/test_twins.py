"""The async twins: derived from the sync methods, same parameters, never blocking a loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import threading
from typing import Any

import pytest

from tinker import _loopguard
from tinker import _twins as twins
from tinker._futures import APIFuture, completed, queued
from tinker.rest_client import RestClient
from tinker.sampling_client import SamplingClient
from tinker.training_client import TrainingClient


class Holder:
    """A runtime stand-in whose blocking pool is a thread pool that records its use."""

    def __init__(self) -> None:
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="blocking")
        self.spawned = 0

    def spawn(self, fn: Any, *args: Any) -> APIFuture[Any]:
        self.spawned += 1
        out: APIFuture[Any] = APIFuture()
        inner = self.pool.submit(fn, *args)
        inner.add_done_callback(
            lambda f: out.set_exception(e) if (e := f.exception()) else out.set_result(f.result())
        )
        return out


class Client:
    def __init__(self) -> None:
        self.holder = Holder()
        self.submit: APIFuture[str] = APIFuture()
        self.cached = {0}

    def value(self, x: int, *, scale: int = 2) -> APIFuture[int]:
        """Doubled, in the background."""
        return completed(x * scale)

    value_async = twins.awaiting(value)

    def queue(self, name: str) -> APIFuture[str]:
        """Queued behind `self.submit`."""
        return queued(completed(name), [self.submit])

    queue_async = twins.once_submitted(queue)

    @twins.blocking
    def work(self, n: int) -> str:
        """Blocks its caller (waits, as for the network, unless `n` is cached)."""
        if n not in self.cached:
            _loopguard.note_blocking("Client.work", "never shown: a public method names itself")
        return f"{threading.current_thread().name}:{n}"

    work_async = twins.offloaded(work)


def test_twins_are_coroutine_functions_with_the_methods_parameters() -> None:
    for name in ("value", "queue", "work"):
        method, twin = getattr(Client, name), getattr(Client, f"{name}_async")
        assert inspect.iscoroutinefunction(twin)
        assert twin.__name__ == f"{name}_async"
        assert twin.__qualname__ == f"Client.{name}_async"
        assert twin.__doc__.startswith(f"Async twin of `{name}`: ")
        sync, derived = inspect.signature(method), inspect.signature(twin)
        assert list(derived.parameters.values()) == list(sync.parameters.values())
    assert inspect.signature(Client.value_async).return_annotation == "int"
    assert inspect.signature(Client.queue_async).return_annotation == "APIFuture[str]"
    assert inspect.signature(Client.work_async).return_annotation == "str"


def test_awaited_return_types_of_the_clients_twins() -> None:
    annotation = inspect.signature(RestClient.get_training_run_async).return_annotation
    assert annotation == "types.TrainingRun"
    annotation = inspect.signature(SamplingClient.compute_logprobs_async).return_annotation
    assert annotation == "list[float | None]"
    annotation = inspect.signature(TrainingClient.forward_backward_async).return_annotation
    assert annotation == "APIFuture[types.ForwardBackwardOutput]"
    with pytest.raises(TypeError, match="must be annotated to return APIFuture"):

        def not_a_future(self: Any) -> int:
            return 1

        twins.awaiting(not_a_future)  # type: ignore[arg-type]


def test_each_rule_returns_what_it_promises() -> None:
    client = Client()

    async def run() -> tuple[int, APIFuture[str], str]:
        value = await client.value_async(3, scale=5)
        queued_task = asyncio.ensure_future(client.queue_async("q"))
        await asyncio.sleep(0.01)
        assert not queued_task.done()  # its submit has not completed yet
        client.submit.set_exception(OSError("a failed submit shows in the future, not here"))
        future = await queued_task
        worked = await client.work_async(7)
        return value, future, worked

    value, future, worked = asyncio.run(run())
    assert value == 15
    assert future.result(0) == "q"
    assert worked == "blocking_0:7" and client.holder.spawned == 1


def test_a_blocking_method_warns_once_inside_a_loop_only_when_it_really_waits(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_loopguard, "_warned", set())
    client = Client()

    async def answered_from_cache() -> None:
        client.work(0)

    async def inside() -> None:
        client.work(1)
        client.work(2)

    with caplog.at_level(logging.WARNING, logger="tinker"):
        asyncio.run(answered_from_cache())
        assert caplog.records == []  # no real wait: nothing to say
        asyncio.run(inside())
        client.work(3)  # outside a loop: no warning
    (warning,) = [r.getMessage() for r in caplog.records]
    assert warning == (
        "Client.work() blocks the running asyncio event loop until it finishes; "
        "use Client.work_async() from async code"
    )
