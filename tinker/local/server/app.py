"""A running local server: store + engine + HTTP transport on background threads.

`LocalServer` owns everything it starts, the data directory's lock included (a second server
on the same directory refuses to start); `close()` stops the HTTP loop, ends open connections,
stops the engine's threads, closes the database and lets the directory go. Usable as a context
manager. With JWT auth on (it needs an API key) the tokens are signed with the data
directory's secret.
"""

from __future__ import annotations

import logging
import os
import pathlib
import sys
import threading
from types import TracebackType

import attrs

from tinker.local.compute.backend import Backend
from tinker.local.server import settings
from tinker.local.server.engine import Engine
from tinker.local.server.http import LocalHTTPServer, ServerOptions
from tinker.local.server.protocol import NEW, ProtocolOptions
from tinker.local.server.routes import Routes
from tinker.local.server.settings import EngineConfig
from tinker.local.server.store import Store
from tinker.local.server.tokens import TokenAuthority

logger = logging.getLogger(__name__)


class LocalServer:
    """An in-process Tinker-compatible server; `url` is the SDK's base_url."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        data_dir: pathlib.Path,
        config: EngineConfig,
        backend: Backend,
        options: ServerOptions,
        protocol: ProtocolOptions | None = None,
    ) -> None:
        protocol = protocol or ProtocolOptions()
        jwt = protocol.jwt_auth and protocol.speaks(NEW)
        if jwt and options.api_key is None:
            raise ValueError("JWT auth needs an API key: give api_key, or turn jwt_auth off")
        self.data_dir = data_dir
        self.protocol = protocol
        self.store = Store(data_dir)  # takes the data directory's lock, or refuses to start
        try:
            tokens = None
            if jwt:
                tokens = TokenAuthority.for_data_dir(
                    data_dir,
                    settings.JWT_SECRET_FILE,
                    lifetime_seconds=settings.JWT_LIFETIME_SECONDS,
                )
                options = attrs.evolve(options, tokens=tokens)
            self.engine = Engine(self.store, backend, config)
            routes = Routes(self.engine, protocol, tokens)
            self._httpd = LocalHTTPServer((host, port), routes, options)
        except BaseException:
            if hasattr(self, "engine"):
                self.engine.close()
            self.store.close()
            raise
        self.url = self._httpd.url
        self.faults = options.faults  # what it injects and has injected (None: no faults)
        self.store.lock.announce(self.url)
        self._closed = False
        self._close_lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="tinker-local-http",
            daemon=True,
        )
        self._thread.start()
        logger.info("Tinker local server listening on %s (data directory %s)", self.url, data_dir)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop serving and release threads, sockets and the database (idempotent)."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self.engine.close()
        self._httpd.close_connections()
        self._thread.join(timeout=5.0)
        self.store.close()
        logger.info("Tinker local server on %s stopped", self.url)

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running"
        return f"LocalServer(url={self.url!r}, data_dir={str(self.data_dir)!r}, {state})"


class AttachedServer:
    """A local server that another process runs, used from this one (what `base_url="local"`
    gets when another process already serves the default data directory)."""

    def __init__(self, url: str, data_dir: pathlib.Path, pid: int) -> None:
        self.url = url
        self.data_dir = data_dir
        self.pid = pid

    @property
    def closed(self) -> bool:
        """True once the process that runs the server has ended."""
        if sys.platform == "win32":
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def close(self) -> None:
        """Nothing to release in this process: the server belongs to the other one."""

    def __repr__(self) -> str:
        return f"AttachedServer(url={self.url!r}, data_dir={str(self.data_dir)!r}, pid={self.pid})"
