"""Helpers shared by the clients: sync calls from inside an event loop, and async twins.

Sync methods block the calling thread. Called from a thread that runs an asyncio loop they still
work, but they stall that loop, so the first such call of each method logs one warning. Async
twins run the blocking work on the runtime's pool and await it, so the loop never blocks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

__all__ = ["Spawner", "await_future", "run_blocking", "warn_if_blocking_loop"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

_warned: set[str] = set()
_warned_lock = threading.Lock()


def warn_if_blocking_loop(method: str) -> None:
    """Log once per method name when a blocking call is made from a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    with _warned_lock:
        if method in _warned:
            return
        _warned.add(method)
    logger.warning(
        "%s() blocks the running asyncio event loop until it finishes; "
        "use %s_async() from async code",
        method,
        method,
    )


class Spawner(Protocol):
    """What the async twins need from a runtime: run a function on its worker pool."""

    def spawn(self, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]: ...


async def await_future(future: concurrent.futures.Future[T]) -> T:
    """Await a concurrent future from whatever event loop is running, without blocking it."""
    return await asyncio.wrap_future(future)


async def run_blocking(runtime: Spawner, fn: Callable[..., T], *args: Any) -> T:
    """Run the blocking `fn(*args)` on the runtime's pool and await its result."""
    return await await_future(runtime.spawn(fn, *args))
