"""What a command runs with: output streams, format, prompts and the (injectable) SDK clients."""

from __future__ import annotations

import sys
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from tinker.cli.progress import Progress

if TYPE_CHECKING:  # the clients load only when a command needs them
    from tinker.service_client import ServiceClient

__all__ = [
    "CliError",
    "ClientFactory",
    "Clients",
    "Connection",
    "Context",
    "RestClientLike",
    "SdkClients",
]


class CliError(Exception):
    """A user-facing failure with a message ready to print after 'Error: '."""


class RestClientLike(Protocol):
    """The RestClient methods the CLI calls (official names; each returns a Future)."""

    def list_training_runs(self, limit: int = 20, offset: int = 0) -> Future[Any]: ...
    def get_training_run(self, training_run_id: str) -> Future[Any]: ...
    def list_checkpoints(self, training_run_id: str) -> Future[Any]: ...
    def list_user_checkpoints(self, limit: int = 100, offset: int = 0) -> Future[Any]: ...
    def get_checkpoint_archive_url_from_tinker_path(self, tinker_path: str) -> Future[Any]: ...
    def delete_checkpoint_from_tinker_path(self, tinker_path: str) -> Future[Any]: ...
    def publish_checkpoint_from_tinker_path(self, tinker_path: str) -> Future[Any]: ...
    def unpublish_checkpoint_from_tinker_path(self, tinker_path: str) -> Future[Any]: ...
    def list_sessions(self, limit: int = 20, offset: int = 0) -> Future[Any]: ...
    def get_session(self, session_id: str) -> Future[Any]: ...


class Clients(Protocol):
    """Source of SDK clients for one CLI invocation; closed when the command ends."""

    def rest_client(self) -> RestClientLike: ...
    def service_client(self) -> Any: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Connection:
    """Connection options from the command line; None falls back to the environment."""

    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)


ClientFactory = Callable[[Connection], Clients]


class SdkClients:
    """Real clients: one ServiceClient (created on first use) and its RestClient."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._service: ServiceClient | None = None

    def service_client(self) -> ServiceClient:
        if self._service is None:
            from tinker.service_client import ServiceClient

            kwargs: dict[str, Any] = {}
            if self._connection.base_url is not None:
                kwargs["base_url"] = self._connection.base_url
            if self._connection.api_key is not None:
                kwargs["api_key"] = self._connection.api_key
            self._service = ServiceClient(**kwargs)
        return self._service

    def rest_client(self) -> RestClientLike:
        return self.service_client().create_rest_client()

    def close(self) -> None:
        service, self._service = self._service, None
        if service is not None:
            service.close()


@dataclass
class Context:
    """Per-invocation state handed to every command."""

    output_format: str = "table"
    connection: Connection = field(default_factory=Connection)
    client_factory: ClientFactory = SdkClients
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    prompt: Callable[[str], str] = input
    interactive: bool = field(default_factory=lambda: sys.stdin.isatty())
    _clients: Clients | None = field(default=None, init=False, repr=False)

    @property
    def json(self) -> bool:
        return self.output_format == "json"

    @property
    def clients(self) -> Clients:
        if self._clients is None:
            self._clients = self.client_factory(self.connection)
        return self._clients

    def rest(self) -> RestClientLike:
        return self.clients.rest_client()

    def progress(self, label: str, *, unit: str = "items") -> Progress:
        """A progress display on stderr: only on a terminal and never in JSON mode."""
        isatty = getattr(self.stderr, "isatty", None)
        enabled = not self.json and bool(isatty and isatty())
        return Progress(self.stderr, label, enabled=enabled, unit=unit)

    def out(self, text: str) -> None:
        print(text, file=self.stdout)

    def out_json(self, value: Any) -> None:
        from tinker.cli.render import json_text

        self.out(json_text(value))

    def err(self, text: str) -> None:
        print(text, file=self.stderr)

    def close(self) -> None:
        if self._clients is not None:
            clients, self._clients = self._clients, None
            clients.close()
