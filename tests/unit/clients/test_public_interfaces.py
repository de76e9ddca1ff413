"""Official import paths and the AwaitableConcurrentFuture wrapper."""

from __future__ import annotations

import asyncio
import concurrent.futures

import pytest

import tinker
from tinker.lib.public_interfaces import APIFuture, AwaitableConcurrentFuture
from tinker.lib.retry_handler import RetryConfig


def test_official_paths_export_the_same_objects() -> None:
    from tinker.lib import public_interfaces as pi

    assert pi.ServiceClient is tinker.ServiceClient
    assert pi.TrainingClient is tinker.TrainingClient
    assert pi.SamplingClient is tinker.SamplingClient
    assert pi.RestClient is tinker.RestClient
    assert pi.APIFuture is tinker.APIFuture
    assert RetryConfig is tinker.RetryConfig


def test_awaitable_concurrent_future_follows_the_wrapped_one() -> None:
    raw: concurrent.futures.Future[int] = concurrent.futures.Future()
    wrapped = AwaitableConcurrentFuture(raw)
    assert isinstance(wrapped, APIFuture)
    assert wrapped.future() is raw
    assert not wrapped.done()
    raw.set_result(7)
    assert wrapped.result(timeout=1) == 7
    assert asyncio.run(wrapped.result_async()) == 7

    async def awaited() -> int:
        return await wrapped

    assert asyncio.run(awaited()) == 7


def test_awaitable_concurrent_future_errors_and_cancel() -> None:
    raw: concurrent.futures.Future[int] = concurrent.futures.Future()
    wrapped = AwaitableConcurrentFuture(raw)
    raw.set_exception(KeyError("x"))
    with pytest.raises(KeyError):
        wrapped.result(timeout=1)
    pending: concurrent.futures.Future[int] = concurrent.futures.Future()
    other = AwaitableConcurrentFuture(pending)
    assert other.cancel()
    assert pending.cancelled()
    assert other.cancelled()
