"""Warn when a call really blocks a running asyncio event loop: once per public method.

A public method that may block runs inside `calling(name, advice)` (the `blocking` rule of
tinker._twins); the places that actually wait (a network call in the caller's thread, a wait on
a pending future) call `note_blocking`. Only when such a wait happens in a thread that runs an
event loop is a warning logged, once per method, naming the outermost public method and what
to do instead. A call answered from a cache, or a future already done, never warns, and neither
does a wait the caller's own syntax requires (`required`: leaving a `with` block).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterator

__all__ = ["calling", "in_event_loop", "note_blocking", "required"]

logger = logging.getLogger("tinker._twins")

_state = threading.local()
_warned: set[str] = set()
_warned_lock = threading.Lock()


@contextlib.contextmanager
def calling(name: str, advice: str) -> Iterator[None]:
    """Run the body as the public method `name` (unless inside another one already): a wait
    inside it that blocks an event loop is reported under `name`, with `advice`."""
    outer = getattr(_state, "call", None)
    if outer is None:
        _state.call = (name, advice)
    try:
        yield
    finally:
        if outer is None:
            _state.call = None


@contextlib.contextmanager
def required() -> Iterator[None]:
    """Run the body as a wait that has no awaitable form (a sync context manager's exit, which
    0.38 code also uses inside `async def`): no wait in it warns, since nothing could be awaited
    instead."""
    outer = getattr(_state, "required", False)
    _state.required = True
    try:
        yield
    finally:
        _state.required = outer


def in_event_loop() -> bool:
    """Whether this thread is running an asyncio event loop right now."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def note_blocking(name: str, advice: str) -> None:
    """This thread is about to wait (for the network, or for a future): warn once per method
    if it runs an event loop. `name` and `advice` apply outside any public method."""
    if getattr(_state, "required", False) or not in_event_loop():
        return
    name, advice = getattr(_state, "call", None) or (name, advice)
    with _warned_lock:
        if name in _warned:
            return
        _warned.add(name)
    logger.warning("%s() blocks the running asyncio event loop until it finishes; %s", name, advice)
