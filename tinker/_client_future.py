"""Creation futures: one object that is at once a client, a Future of it and awaitable.

Client creation starts at once and returns a `ClientFuture`: code written for SDK 0.38 calls
`.result()` or awaits it; code written for 0.5.1 uses it as the client itself, and every public
method or attribute of the client then waits for the creation and forwards to the real client.
Both styles are silent. `forwarding(client_class)` builds the forwarders of one client class.
"""

from __future__ import annotations

import concurrent.futures
import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from tinker._futures import APIFuture, settle_from

__all__ = ["ClientFuture", "forwarding"]

C = TypeVar("C")
F = TypeVar("F", bound=type)


class ClientFuture(APIFuture[C]):
    """A future of a client that follows `source` (the creation work) and stands in for it."""

    def __init__(self, source: concurrent.futures.Future[C]) -> None:
        APIFuture.__init__(self)
        self._source = source
        source.add_done_callback(functools.partial(settle_from, self))
        if isinstance(source, APIFuture):
            self._before_wait = source._before_wait

    def __getattr__(self, name: str) -> Any:
        """Instance attributes of the client (`model_id`, ...), once it exists."""
        if name.startswith("__") or "_source" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")
        return getattr(self.result(), name)

    def __reduce__(self) -> tuple[Any, ...]:
        reduced = self.result().__reduce__()
        if isinstance(reduced, str):
            raise TypeError(f"{type(self).__name__} cannot be pickled")
        return reduced

    def __repr__(self) -> str:
        name = type(self).__name__
        if not self.done():
            return f"<{name}: pending>"
        if self.cancelled():
            return f"<{name}: cancelled>"
        exc = self.exception(0)
        if exc is not None:
            return f"<{name}: failed: {exc!r}>"
        return repr(self.result(0))


def _method_forwarder(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def forward(self: ClientFuture[Any], /, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.result(), name)(*args, **kwargs)

    return forward


def _property_forwarder(name: str, prop: property) -> property:
    def read(self: ClientFuture[Any]) -> Any:
        return getattr(self.result(), name)

    return property(read, doc=prop.__doc__)


def forwarding(client_class: type) -> Callable[[F], F]:
    """Class decorator: give a ClientFuture subclass a forwarder for every method and property
    of `client_class` (not its static methods, special methods, nor the future's own names),
    so that no method of the client ever runs on the future itself."""
    own = set(dir(APIFuture))

    def decorate(cls: F) -> F:
        for name in dir(client_class):
            if name.startswith("__") or name in own:
                continue
            static = inspect.getattr_static(client_class, name)
            if isinstance(static, (staticmethod, classmethod)):
                continue
            if isinstance(static, property):
                setattr(cls, name, _property_forwarder(name, static))
            elif callable(static):
                setattr(cls, name, _method_forwarder(name, static))
        return cls

    return decorate
