"""Which public method a request belongs to (`x-sdk-method` in the 0.38 protocol).

Every public method of a client class is wrapped when the class is defined
(`ClientBase.__init_subclass__`): while it runs, the outermost one's `<Class>.<method>` name is
the current method, which each `ApiCall` built meanwhile captures. A 0.38 codec sends it, with
`x-sdk-version`, on the call's requests and on the polls of its result; background traffic
(handshake, session creation, heartbeats, telemetry, batch polls, cancels) carries neither.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from tinker.config import CURRENT_SDK_VERSION

__all__ = ["attribute_public_methods", "current_method", "method_headers"]

C = TypeVar("C", bound=type)

_CURRENT: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "tinker_sdk_method", default=None
)


def current_method() -> str | None:
    """The `<Class>.<method>` name of the outermost public call in progress, if any."""
    return _CURRENT.get()


def method_headers(method: str | None) -> dict[str, str]:
    """The headers that attribute a request to `method` (none for background traffic)."""
    if method is None:
        return {}
    return {"x-sdk-version": CURRENT_SDK_VERSION, "x-sdk-method": method}


def attribute_public_methods(cls: C) -> C:
    """Wrap the public functions defined on `cls` (not static/class methods or properties)
    so that requests sent while they run are attributed to them; returns `cls` (a decorator).
    """
    for name, value in list(vars(cls).items()):
        if name.startswith("_") or not inspect.isfunction(value):
            continue
        setattr(cls, name, _attributed(f"{cls.__name__}.{name}", value))
    return cls


def _attributed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            if _CURRENT.get() is not None:
                return await fn(*args, **kwargs)
            token = _CURRENT.set(name)
            try:
                return await fn(*args, **kwargs)
            finally:
                _CURRENT.reset(token)

        return async_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _CURRENT.get() is not None:
            return fn(*args, **kwargs)
        token = _CURRENT.set(name)
        try:
            return fn(*args, **kwargs)
        finally:
            _CURRENT.reset(token)

    return wrapper
