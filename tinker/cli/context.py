"""What a command runs with: output streams, format, prompts and the (injectable) SDK clients."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from tinker.cli.progress import Progress

if TYPE_CHECKING:  # the clients load only when a command needs them
    from tinker._runtime import Runtime
    from tinker.rest_client import AdminClient, RestClient
    from tinker.service_client import ServiceClient

__all__ = [
    "AdminClientLike",
    "CliError",
    "ClientFactory",
    "Clients",
    "Connection",
    "Context",
    "RestClientLike",
    "SdkClients",
    "is_terminal",
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
    def export_session_trace(self, session_id: str) -> Future[str]: ...


class AdminClientLike(Protocol):
    """The AdminClient methods the CLI calls (organization billing reports)."""

    def get_billing_usage(self, starting_on: Any, ending_before: Any) -> Future[Any]: ...
    def get_current_checkpoint_storage_usage(self, project_id: str | None) -> Future[Any]: ...


class Clients(Protocol):
    """Source of SDK clients for one CLI invocation; closed when the command ends."""

    def rest_client(self) -> RestClientLike: ...
    def admin_client(self) -> AdminClientLike: ...
    def service_client(self) -> Any: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Connection:
    """Connection options from the command line; None falls back to the environment."""

    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)


ClientFactory = Callable[[Connection], Clients]


# The SDK's whole-call retries (up to 5 minutes, for unattended programs) are off for the
# CLI's REST calls, so a refused connection is reported at once; the transport layer still
# retries lost connections and 408/409/429/5xx answers.
REST_RETRY_SECONDS = 0.001


class SdkClients:
    """Real clients. The RestClient runs without a session (no heartbeat, no telemetry), so
    listing, inspecting and managing checkpoints leave no session behind; a ServiceClient (and
    with it a session) is made only for commands that train or sample."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._service: ServiceClient | None = None
        self._rest_runtime: Runtime | None = None
        self._rest: RestClient | None = None
        self._admin: AdminClient | None = None

    def _settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {}
        if self._connection.base_url is not None:
            settings["base_url"] = self._connection.base_url
        if self._connection.api_key is not None:
            settings["api_key"] = self._connection.api_key
        return settings

    def service_client(self) -> ServiceClient:
        if self._service is None:
            from tinker.service_client import ServiceClient

            self._service = ServiceClient(**self._settings())
        return self._service

    def rest_client(self) -> RestClientLike:
        if self._rest is None:
            from tinker._runtime import Runtime, RuntimeOptions
            from tinker.config import ClientConfig
            from tinker.rest_client import RestClient

            config = ClientConfig.from_env(
                **self._settings(), telemetry=False, submit_retry_seconds=REST_RETRY_SECONDS
            )
            # No session id: REST calls name what they act on in the URL.
            self._rest_runtime = Runtime(config, "", options=RuntimeOptions(heartbeat=False))
            self._rest = RestClient(self._rest_runtime)
        return self._rest

    def admin_client(self) -> AdminClientLike:
        """An AdminClient on the RestClient's session-less runtime (same settings, no session)."""
        if self._admin is None:
            from tinker.rest_client import AdminClient

            self.rest_client()
            self._admin = AdminClient(self._rest_runtime)
        return self._admin

    def close(self) -> None:
        service, self._service = self._service, None
        runtime, self._rest_runtime, self._rest = self._rest_runtime, None, None
        self._admin = None
        if runtime is not None:
            runtime.close()
        if service is not None:
            service.close()


def is_terminal(stream: TextIO) -> bool:
    """Whether `stream` is a terminal (False for anything without a working isatty)."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed
        return False


@dataclass
class Context:
    """Per-invocation state handed to every command."""

    output_format: str = "table"
    connection: Connection = field(default_factory=Connection)
    client_factory: ClientFactory = SdkClients
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    prompt: Callable[[str], str] = input
    # Asks for a secret without echoing it (on the terminal, not on stdout).
    secret_prompt: Callable[[str], str] = getpass.getpass
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    interactive: bool = field(default_factory=lambda: sys.stdin.isatty())
    _clients: Clients | None = field(default=None, init=False, repr=False)

    @property
    def json(self) -> bool:
        return self.output_format == "json"

    @property
    def secrets(self) -> tuple[str | None, ...]:
        """The API keys this invocation may use (the option, TINKER_API_KEY and the stored
        default key): never to be shown in its output."""
        from tinker._credential_file import stored_default_key

        return (self.connection.api_key, os.environ.get("TINKER_API_KEY"), stored_default_key())

    @property
    def clients(self) -> Clients:
        if self._clients is None:
            self._clients = self.client_factory(self.connection)
        return self._clients

    def rest(self) -> RestClientLike:
        return self.clients.rest_client()

    def admin(self) -> AdminClientLike:
        return self.clients.admin_client()

    def progress(self, label: str, *, unit: str = "items") -> Progress:
        """A progress display on stderr: only on a terminal and never in JSON mode."""
        enabled = not self.json and is_terminal(self.stderr)
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
