"""Transport: one `HttpRequest` in, one `Reply` (any status) or a typed connection error out.

One `requests.Session` per traffic kind (its own keep-alive connection pool, sized from the
config), and the protocol's headers on every request: the API key, the platform headers, the
read timeout, and for every method but GET the JSON content type and an idempotency key
(`stainless-python-retry-<uuid>`, reused by the retries of one call, with their count in
`x-stainless-retry-count`). Retrying is not done here: `tinker._retry` runs the attempts.
Header values that carry secrets never reach a log line.
"""

from __future__ import annotations

import enum
import importlib
import logging
import os
import platform
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import requests
import requests.adapters
import requests.structures
import requests.utils
import urllib3
import urllib3.exceptions
import urllib3.util

from tinker import _wire
from tinker.config import LOCAL_BASE_URL, ClientConfig
from tinker.errors import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    status_error,
)

__all__ = ["HttpRequest", "Reply", "Traffic", "Transport", "platform_headers"]

logger = logging.getLogger(__name__)

_SECRET_HEADERS = frozenset({"x-api-key", "cf-access-client-secret", "authorization"})


class Traffic(enum.Enum):
    """Kinds of traffic; each gets its own connection pool so that none starves another."""

    SESSION = "session"
    TRAIN = "train"
    SAMPLE = "sample"
    POLL = "poll"
    TELEMETRY = "telemetry"


@attrs.frozen
class HttpRequest:
    """One HTTP exchange, ready to send: the body is already encoded (JSON bytes or None)."""

    traffic: Traffic
    method: str
    path: str
    content: bytes | None = None
    params: Mapping[str, object] | None = None
    headers: Mapping[str, str] | None = None
    timeout: float | None = None  # read timeout in seconds; None: the config's
    allow_redirects: bool = False


@attrs.frozen
class Reply:
    """One HTTP response: status, headers and the body (parsed JSON, raw text, or None)."""

    status_code: int
    headers: Mapping[str, str]
    body: Any
    is_json: bool
    url: str

    def raise_for_status(self) -> Reply:
        """This reply, or the `status_error` of its status when that is 400 or more."""
        if self.status_code >= 400:
            raise status_error(self.status_code, self.body, response=self)
        return self

    def json(self) -> Any:
        """The parsed JSON body (None when empty); APIResponseValidationError if not JSON."""
        if self.body is not None and not self.is_json:
            raise APIResponseValidationError(
                message=f"Expected a JSON response from {self.url}, got: {str(self.body)[:200]!r}",
                status_code=self.status_code,
                response=self,
                body=self.body,
            )
        return self.body


def _os_name() -> str:
    system = platform.system()
    known = {
        "Darwin": "MacOS",
        "Linux": "Linux",
        "Windows": "Windows",
        "FreeBSD": "FreeBSD",
        "OpenBSD": "OpenBSD",
        "iOS": "iOS",
        "Android": "Android",
    }
    if not system:
        return "Unknown"
    return known.get(system, f"Other:{system}")


def _arch_name() -> str:
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        return "x64"
    if machine in ("arm64", "aarch64"):
        return "arm64"
    if machine.startswith("arm"):
        return "arm"
    if machine in ("i386", "i686", "x86", "x32"):
        return "x32"
    return f"other:{machine}" if machine else "unknown"


def platform_headers(sdk_version: str) -> dict[str, str]:
    """The identification headers sent on every request."""
    return {
        "Accept": "application/json",
        "User-Agent": f"AsyncTinker/Python {sdk_version}",
        "X-Stainless-Package-Version": sdk_version,
        "X-Stainless-OS": _os_name(),
        "X-Stainless-Arch": _arch_name(),
        "X-Stainless-Runtime": platform.python_implementation(),
        "X-Stainless-Runtime-Version": platform.python_version(),
        "X-Stainless-Async": "async:asyncio",
    }


def _seconds_header(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


def resolve_base_url(config: ClientConfig) -> str:
    """The service URL; `base_url="local"` starts (or reuses) the in-process local server."""
    if config.base_url == LOCAL_BASE_URL:
        server = importlib.import_module("tinker.local").shared_server()
        return str(server.url).rstrip("/")
    return config.base_url.rstrip("/")


class Transport:
    """Sends requests on per-traffic keep-alive sessions, one attempt each."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        base_url: str | None = None,
        adapter_factory: Callable[[], requests.adapters.BaseAdapter] | None = None,
    ) -> None:
        self.config = config
        self._adapter_factory = adapter_factory
        self.base_url = base_url if base_url is not None else resolve_base_url(config)
        self._secrets = config.secrets()
        self._environment = _environment_settings(self.base_url, config.verify_tls)
        # Through a proxy every request takes the requests.Session path (it knows proxies).
        self._proxied = (
            requests.utils.select_proxy(self.base_url, self._environment["proxies"]) is not None
        )
        static = platform_headers(config.sdk_version)
        static.update(config.auth_headers())
        static.update(config.default_headers)
        self._sessions = {kind: self._new_session(kind, static) for kind in Traffic}
        self._base_headers = {
            kind: {name: str(value) for name, value in session.headers.items()}
            for kind, session in self._sessions.items()
        }
        self._pools = {kind: self._pool(session) for kind, session in self._sessions.items()}
        self._timeouts: dict[tuple[float, float], urllib3.Timeout] = {}
        parsed = urllib3.util.parse_url(self.base_url)
        self._origin = self.base_url[: len(self.base_url) - len(parsed.path or "")]

    def _new_session(self, kind: Traffic, headers: Mapping[str, str]) -> requests.Session:
        session = requests.Session()
        adapter: requests.adapters.BaseAdapter
        if self._adapter_factory is not None:
            adapter = self._adapter_factory()
        else:
            size = self.config.pool_sizes[kind.value]
            adapter = requests.adapters.HTTPAdapter(
                pool_connections=1, pool_maxsize=size, max_retries=0, pool_block=False
            )
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers.update(headers)
        # Read proxy and CA-bundle settings from the environment once, not on every request
        # (requests' per-request environment scan costs more CPU than the request itself).
        session.trust_env = False
        session.proxies.update(self._environment["proxies"])
        session.verify = self._environment["verify"]
        return session

    def _pool(self, session: requests.Session) -> urllib3.HTTPConnectionPool | None:
        """The keep-alive connection pool of `session`'s mounted adapter for the base URL
        (None for a custom adapter, which is always driven through requests)."""
        adapter = session.get_adapter(self.base_url)
        if not isinstance(adapter, requests.adapters.HTTPAdapter):
            return None
        parsed = urllib3.util.parse_url(self.base_url)
        pool_kwargs: dict[str, Any] = {}
        if parsed.scheme == "https":
            verify = self._environment["verify"]
            pool_kwargs["cert_reqs"] = "CERT_REQUIRED" if verify else "CERT_NONE"
            bundle = verify if isinstance(verify, str) else requests.utils.DEFAULT_CA_BUNDLE_PATH
            if verify:
                pool_kwargs["ca_cert_dir" if os.path.isdir(bundle) else "ca_certs"] = bundle
        pool: urllib3.HTTPConnectionPool = adapter.poolmanager.connection_from_host(
            parsed.host, parsed.port, parsed.scheme or "http", pool_kwargs=pool_kwargs
        )
        return pool

    def url(self, path: str) -> str:
        """Join the base URL and an endpoint path (the path's leading slash is dropped)."""
        return f"{self.base_url}/{path.lstrip('/')}"

    def send(
        self, request: HttpRequest, *, retry_count: int = 0, idempotency_key: str | None = None
    ) -> Reply:
        """One attempt; any status is a Reply. APIConnectionError / APITimeoutError when no
        response arrives. `retry_count` and `idempotency_key` identify the attempt of a call."""
        method = request.method.upper()
        read_timeout = self.config.timeout if request.timeout is None else request.timeout
        call_headers = {
            "x-stainless-retry-count": str(retry_count),
            "x-stainless-read-timeout": _seconds_header(read_timeout),
        }
        if method != "GET":
            call_headers["Content-Type"] = "application/json"
            call_headers["X-Idempotency-Key"] = idempotency_key or new_idempotency_key()
        if request.headers:
            call_headers.update(request.headers)
        url = self.url(request.path)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s %s headers=%s", method, url, self.redact(call_headers))
        try:
            response = self._exchange(
                request.traffic,
                method,
                url,
                request.content,
                request.params,
                call_headers,
                (min(self.config.connect_timeout, read_timeout), read_timeout),
                request.allow_redirects,
            )
        except requests.Timeout as exc:
            raise APITimeoutError() from exc
        except requests.RequestException as exc:
            raise APIConnectionError() from exc
        return _reply(*response)

    def _exchange(
        self,
        traffic: Traffic,
        method: str,
        url: str,
        content: bytes | None,
        params: Mapping[str, object] | None,
        headers: Mapping[str, str],
        timeout: tuple[float, float],
        allow_redirects: bool,
    ) -> tuple[int, Mapping[str, str], bytes, str]:
        """Send through the session's mounted adapter and return (status, headers, body, url).

        A stock HTTPAdapter is driven at the urllib3 level, straight on its connection pool
        (requests' per-request machinery costs more CPU than the request itself). Redirects,
        proxies, and adapters that are replaced or patched (custom transports, mocking
        libraries such as `responses`) take the regular requests path.
        """
        session = self._sessions[traffic]
        if params:
            url = f"{url}?{urllib.parse.urlencode(params, doseq=True)}"
        if allow_redirects or self._proxied:
            return _from_requests(
                session.request(
                    method,
                    url,
                    data=content,
                    headers=headers,
                    timeout=timeout,
                    allow_redirects=allow_redirects,
                )
            )
        merged: dict[str, str] = {**self._base_headers[traffic], **headers}
        if content:
            merged["Content-Length"] = str(len(content))
        elif method not in ("GET", "HEAD"):
            merged["Content-Length"] = "0"
        adapter = session.get_adapter(url)
        pool = self._pools[traffic]
        if pool is None or not _is_stock_adapter(adapter):
            return _from_requests(
                self._via_adapter(session, adapter, method, url, content, merged, timeout)
            )
        target = url[len(self._origin) :]
        try:
            response = pool.urlopen(
                method,
                target,
                body=content,
                headers=merged,
                retries=False,
                redirect=False,
                assert_same_host=False,
                timeout=self._timeout(timeout),
            )
        except urllib3.exceptions.TimeoutError as exc:
            raise requests.Timeout(str(exc)) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise requests.ConnectionError(str(exc)) from exc
        return response.status, response.headers, response.data, url

    def _timeout(self, timeout: tuple[float, float]) -> urllib3.Timeout:
        """A shared urllib3 Timeout per (connect, read) pair (a few distinct values in use)."""
        cached = self._timeouts.get(timeout)
        if cached is None:
            cached = self._timeouts[timeout] = urllib3.Timeout(connect=timeout[0], read=timeout[1])
        return cached

    @staticmethod
    def _via_adapter(
        session: requests.Session,
        adapter: requests.adapters.BaseAdapter,
        method: str,
        url: str,
        content: bytes | None,
        headers: dict[str, str],
        timeout: tuple[float, float],
    ) -> requests.Response:
        """One request through `adapter.send`, keeping the session's cookies."""
        prepared = requests.PreparedRequest()
        prepared.method = method
        prepared.url = requests.utils.requote_uri(url)
        prepared.headers = requests.structures.CaseInsensitiveDict(headers)
        prepared.body = content
        prepared.hooks = {"response": []}
        if session.cookies:
            prepared.prepare_cookies(session.cookies)
        response = adapter.send(
            prepared,
            stream=False,
            timeout=timeout,
            verify=True if session.verify is None else session.verify,
            proxies=session.proxies,
        )
        if response.cookies:
            session.cookies.update(response.cookies)
        return response

    def redact(self, headers: Mapping[str, str]) -> dict[str, str]:
        """A copy of `headers` safe to log: secret values replaced by '***'."""
        return {
            name: "***" if name.lower() in _SECRET_HEADERS or value in self._secrets else value
            for name, value in headers.items()
        }

    def close(self) -> None:
        """Close every pooled connection (the pools held here too, not only the sessions')."""
        for session in self._sessions.values():
            session.close()
        for pool in self._pools.values():
            if pool is not None:
                pool.close()


def _environment_settings(base_url: str, verify_tls: bool) -> dict[str, Any]:
    """Proxies for `base_url` and the CA bundle, as requests would take them from the env."""
    verify: bool | str = verify_tls
    if verify_tls:
        verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    return {"proxies": requests.utils.get_environ_proxies(base_url), "verify": verify}


def new_idempotency_key() -> str:
    """A fresh key for one logical call (reused by its transport retries)."""
    return f"stainless-python-retry-{uuid.uuid4()}"


def _is_stock_adapter(adapter: object) -> bool:
    """True for a plain HTTPAdapter whose `send` nobody replaced."""
    return (
        type(adapter) is requests.adapters.HTTPAdapter
        and getattr(requests.adapters.HTTPAdapter.send, "__module__", None) == "requests.adapters"
    )


def _from_requests(response: requests.Response) -> tuple[int, Mapping[str, str], bytes, str]:
    return response.status_code, response.headers, response.content, response.url


def _reply(status: int, headers: Mapping[str, str], content: bytes, url: str) -> Reply:
    body: Any = None
    is_json = False
    if content:
        try:
            body = _wire.loads(content)
            is_json = True
        except ValueError:
            body = content.decode("utf-8", errors="replace")
    return Reply(status_code=status, headers=headers, body=body, is_json=is_json, url=url)
