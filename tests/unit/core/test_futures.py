"""APIFuture semantics and composition by done-callbacks."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

import pytest

from tinker._futures import (
    APIFuture,
    chain,
    combine,
    completed,
    failed,
    flatten,
    queued,
    transform,
)


def resolve_later(future: APIFuture[int], value: int, delay: float = 0.01) -> None:
    threading.Timer(delay, future.set_result, args=(value,)).start()


def test_result_timeout_raises_timeout_error_and_work_goes_on() -> None:
    future: APIFuture[int] = APIFuture("req-1")
    with pytest.raises(TimeoutError):
        future.result(timeout=0.01)
    assert not future.done()
    future.set_result(3)
    assert future.result(timeout=0) == 3
    assert future.request_id == "req-1"
    assert future.future() is future
    assert future.exception() is None


def test_exception_is_returned_and_raised() -> None:
    error = ValueError("bad")
    future = failed(error)
    assert future.exception() is error
    with pytest.raises(ValueError, match="bad"):
        future.result()
    with pytest.raises(TimeoutError):
        APIFuture[int]().exception(timeout=0.01)


def test_works_with_wait_and_as_completed() -> None:
    futures = [APIFuture[int]() for _ in range(3)]
    for index, future in enumerate(futures):
        resolve_later(future, index)
    done = {f.result() for f in concurrent.futures.as_completed(futures, timeout=5)}
    assert done == {0, 1, 2}


def test_result_async_from_a_fresh_event_loop_per_call() -> None:
    for value in range(3):
        future: APIFuture[int] = APIFuture()
        resolve_later(future, value)
        assert asyncio.run(future.result_async()) == value
    # A future that resolves after its loop is gone must not break anything.
    orphan: APIFuture[int] = APIFuture()

    async def give_up() -> None:
        with pytest.raises(TimeoutError):
            await orphan.result_async(timeout=0.01)

    asyncio.run(give_up())
    orphan.set_result(1)  # the callback targets a closed loop: ignored
    assert not orphan.cancelled() and orphan.result() == 1


def test_await_and_async_timeout_do_not_cancel_the_future() -> None:
    future: APIFuture[str] = APIFuture()

    async def main() -> str:
        with pytest.raises(TimeoutError):
            await future.result_async(timeout=0.01)
        assert not future.cancelled()
        threading.Timer(0.01, future.set_result, args=("v",)).start()
        return await future

    assert asyncio.run(main()) == "v"


def test_await_raises_the_future_exception() -> None:
    async def main() -> None:
        await failed(KeyError("k"))

    with pytest.raises(KeyError):
        asyncio.run(main())


def test_transform_maps_values_and_passes_errors() -> None:
    source: APIFuture[int] = APIFuture("r9")
    doubled = transform(source, lambda v: v * 2)
    assert doubled.request_id == "r9"
    source.set_result(21)
    assert doubled.result(0) == 42
    assert isinstance(transform(failed(OSError("x")), lambda v: v).exception(), OSError)

    def explode(_: int) -> int:
        raise ArithmeticError("in fn")

    assert isinstance(transform(completed(1), explode).exception(), ArithmeticError)


def test_combine_keeps_order_and_first_error_wins() -> None:
    sources = [APIFuture[int]() for _ in range(3)]
    total = combine(sources, lambda values: values)
    sources[2].set_result(2)
    sources[0].set_result(0)
    assert not total.done()
    sources[1].set_result(1)
    assert total.result(0) == [0, 1, 2]

    pending: APIFuture[int] = APIFuture()
    broken = combine([pending, failed(RuntimeError("first"))], sum)
    assert isinstance(broken.exception(0), RuntimeError)  # does not wait for `pending`
    pending.set_exception(RuntimeError("second"))
    assert str(broken.exception(0)) == "first"
    assert combine([], len).result(0) == 0


def test_combine_propagates_cancellation() -> None:
    source: APIFuture[int] = APIFuture()
    total = combine([source], sum)
    assert source.cancel()
    assert isinstance(total.exception(0), concurrent.futures.CancelledError)


def test_chain_flattens_and_takes_the_inner_request_id() -> None:
    submit: APIFuture[str] = APIFuture()
    inner: APIFuture[int] = APIFuture("req-7")
    result = chain(submit, lambda request_id: inner)
    submit.set_result("req-7")
    assert result.request_id == "req-7" and not result.done()
    inner.set_result(5)
    assert result.result(0) == 5
    assert isinstance(chain(failed(OSError()), lambda _: inner).exception(0), OSError)


def test_resolving_a_cancelled_future_is_harmless() -> None:
    from tinker._futures import reject, resolve

    future: APIFuture[int] = APIFuture()
    future.cancel()
    resolve(future, 1)
    reject(future, ValueError())
    assert future.cancelled()


def test_flatten_follows_the_future_a_submit_resolves_to() -> None:
    submit: APIFuture[APIFuture[int]] = APIFuture()
    inner: APIFuture[int] = APIFuture("req-8")
    result = flatten(submit)
    submit.set_result(inner)
    assert result.request_id == "req-8" and not result.done()
    inner.set_exception(KeyError("late"))
    assert isinstance(result.exception(0), KeyError)


def test_queued_results_keep_their_submits_through_transform() -> None:
    submit: APIFuture[APIFuture[int]] = APIFuture()
    result = queued(flatten(submit), [submit])
    assert result._submits == (submit,)
    doubled = transform(result, lambda value: 2 * value)
    assert doubled._submits == (submit,)
    submit.set_result(completed(4))
    assert doubled.result(0) == 8
    assert transform(completed(1), str)._submits == ()
