"""Transport: one `HttpRequest` in, one `Reply` (any status) or a typed connection error out.

One `requests.Session` per traffic kind (its own keep-alive connection pool, sized from the
config), and the protocol's headers on every request: the API key, the platform headers, the
read timeout, and for every method but GET the JSON content type and an idempotency key
(`stainless-python-retry-<uuid>`, reused by the retries of one call, with their count in
`x-stainless-retry-count`). Retrying is not done here: `tinker._retry` runs the attempts.
Header values that carry secrets never reach a log line.

Every response is bounded: its body may not exceed the config's `max_response_bytes`
(APIResponseValidationError) and must arrive in full within the read timeout after its headers
(APITimeoutError), however slowly the server trickles it. A request that gets no answer is an
APIConnectionError naming the URL: `is_unreachable` tells a connection that could not be made
(refused, unresolvable host, connect timeout: nothing is listening there) from one lost on
the way. `silence` remembers since when no request has had an answer, so that callers can
stop retrying at once against a server that has long been gone.
"""

from __future__ import annotations

import enum
import importlib
import logging
import os
import platform
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
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
from tinker._auth import JwtCredential, looks_like_jwt, token_expiry
from tinker._credentials import run_credential_command
from tinker.config import LOCAL_BASE_URL, ClientConfig
from tinker.errors import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    TinkerError,
    status_error,
)
from tinker.metrics import ClientMetrics

__all__ = [
    "BodyLimitExceeded",
    "HttpRequest",
    "Reply",
    "Silence",
    "Traffic",
    "Transport",
    "body_chunks",
    "bounded_body",
    "close_local_server",
    "display_url",
    "is_unreachable",
    "new_idempotency_key",
    "platform_headers",
]

logger = logging.getLogger(__name__)

_SECRET_HEADERS = frozenset({"x-api-key", "cf-access-client-secret", "authorization"})
# Bytes asked of one socket read of a response body.
BODY_CHUNK = 1 << 16


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
    """One HTTP response: status, headers and the body (parsed JSON, protobuf bytes, raw text,
    or None)."""

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


def close_local_server() -> None:
    """Stop the embedded server behind `base_url="local"` if this process runs one."""
    local = sys.modules.get("tinker.local")
    if local is not None:
        local.close_shared_server()


class Silence:
    """Since when the server has not answered: the time of the first request that got no
    answer after the last one that got any (None while the server answers)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._since: float | None = None

    def since(self) -> float | None:
        """When the current silence began (None: the last request was answered)."""
        return self._since

    def answered(self) -> None:
        """A response arrived (any status)."""
        self._since = None

    def unanswered(self) -> None:
        """A request got no response (refused, lost, timed out)."""
        with self._lock:
            if self._since is None:
                self._since = self._clock()


class Transport:
    """Sends requests on per-traffic keep-alive sessions, one attempt each."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        base_url: str | None = None,
        adapter_factory: Callable[[], requests.adapters.BaseAdapter] | None = None,
        metrics: ClientMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.metrics = metrics if metrics is not None else ClientMetrics.for_client()
        self.silence = Silence(clock)
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
        # The access token source when the server asks for the JWT exchange (tinker._auth).
        self.credential: JwtCredential | None = None
        # The server wants the exchange authenticated by the credential command, not the key.
        self.exchange_with_command = False
        key = config.api_key
        # An API key that is itself a token stops working when it expires.
        self._key_expiry = token_expiry(key) if key is not None and looks_like_jwt(key) else None
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
        self,
        request: HttpRequest,
        *,
        retry_count: int = 0,
        idempotency_key: str | None = None,
        authenticate: bool = True,
    ) -> Reply:
        """One attempt; any status is a Reply. APIConnectionError / APITimeoutError when no
        response arrives. `retry_count` and `idempotency_key` identify the attempt of a call.

        With a `credential` (JWT auth), the request carries its token as X-API-Key instead of
        the API key (unless `authenticate` is false: the exchange itself), and a 401 that calls
        the token invalid is sent once more with a fresh one.
        """
        credential = self.credential if authenticate else None
        if credential is None:
            raw = self.raw_credential(exchange=not authenticate)
            return self._send_once(request, retry_count, idempotency_key, raw)
        token = credential.token()
        reply = self._send_once(request, retry_count, idempotency_key, token)
        if reply.status_code == 401 and "invalid_token" in reply.headers.get(
            "WWW-Authenticate", ""
        ):
            logger.debug("the server refused the access token; fetching a new one")
            credential.invalidate(token)
            reply = self._send_once(request, retry_count, idempotency_key, credential.token())
        return reply

    def raw_credential(self, *, exchange: bool = False) -> str | None:
        """The credential command's output where it stands in for the API key: always when
        there is no key, and in the exchange of a server that prefers the command (unless the
        key is itself a token). None: the API key header stands. TinkerError when the key is a
        token that has expired."""
        if self._key_expiry is not None and self._key_expiry <= time.time():
            raise TinkerError("the api_key is a token (JWT) that has expired: get a new one")
        command = self.config.credential_command
        key = self.config.api_key
        if command is None:
            return None
        if key is None or (exchange and self.exchange_with_command and not looks_like_jwt(key)):
            return run_credential_command(command)
        return None

    def _send_once(
        self,
        request: HttpRequest,
        retry_count: int,
        idempotency_key: str | None,
        token: str | None,
    ) -> Reply:
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
        if token is not None:
            call_headers["X-API-Key"] = token
        url = self.url(request.path)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s %s headers=%s", method, url, self.redact(call_headers))
        timeout = (min(self.config.connect_timeout, read_timeout), read_timeout)
        started = time.perf_counter()
        try:
            response = self._answer(request, method, url, call_headers, timeout)
        except BaseException as exc:
            self._measure(request, method, started, None, type(exc).__name__)
            raise
        self._measure(request, method, started, response)
        return _reply(*response)

    def _measure(
        self,
        request: HttpRequest,
        method: str,
        started: float,
        response: tuple[int, Mapping[str, str], bytes, str] | None,
        error: str | None = None,
    ) -> None:
        """Record one attempt in the client metrics: its answer, or the error of none."""
        self.metrics.request(
            method,
            request.path,
            status=None if response is None else response[0],
            error=error,
            seconds=time.perf_counter() - started,
            sent=len(request.content) if request.content else 0,
            received=0 if response is None else len(response[2]),
        )

    def _answer(
        self,
        request: HttpRequest,
        method: str,
        url: str,
        headers: Mapping[str, str],
        timeout: tuple[float, float],
    ) -> tuple[int, Mapping[str, str], bytes, str]:
        """One exchange: (status, headers, body, url), or the typed error of no answer."""
        read_timeout = timeout[1]
        try:
            response = self._exchange(
                request.traffic,
                method,
                url,
                request.content,
                request.params,
                headers,
                timeout,
                request.allow_redirects,
            )
        except BodyLimitExceeded as exc:
            shown = display_url(url)
            if exc.too_large:
                raise APIResponseValidationError(
                    f"The response from {shown} is larger than max_response_bytes "
                    f"({self.config.max_response_bytes} bytes); it was not read to the end"
                ) from None
            raise APITimeoutError(
                f"The response from {shown} did not arrive in full within {read_timeout:g} s "
                f"of its headers ({exc.received} bytes received)"
            ) from None
        except (urllib3.exceptions.DecodeError, requests.exceptions.ContentDecodingError):
            raise APIResponseValidationError(
                f"The response from {display_url(url)} could not be decompressed"
            ) from None
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            self.silence.unanswered()
            raise _connection_error(exc, url, timeout) from _root_cause(exc)
        self.silence.answered()
        return response

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
            return self._from_requests(
                session.request(
                    method,
                    url,
                    data=content,
                    headers=headers,
                    timeout=timeout,
                    allow_redirects=allow_redirects,
                    stream=True,
                ),
                timeout[1],
            )
        merged: dict[str, str] = {**self._base_headers[traffic], **headers}
        if content:
            merged["Content-Length"] = str(len(content))
        elif method not in ("GET", "HEAD"):
            merged["Content-Length"] = "0"
        adapter = session.get_adapter(url)
        pool = self._pools[traffic]
        if pool is None or not _is_stock_adapter(adapter):
            return self._from_requests(
                self._via_adapter(session, adapter, method, url, content, merged, timeout),
                timeout[1],
            )
        target = url[len(self._origin) :]
        response = pool.urlopen(
            method,
            target,
            body=content,
            headers=merged,
            retries=False,
            redirect=False,
            assert_same_host=False,
            timeout=self._timeout(timeout),
            preload_content=False,
        )
        body = self._read(response, body_chunks(response), response.headers, timeout[1])
        return response.status, response.headers, body, url

    def _read(
        self,
        response: urllib3.BaseHTTPResponse | requests.Response,
        chunks: Iterable[bytes],
        headers: Mapping[str, str],
        seconds: float,
    ) -> bytes:
        """The whole body within the limits; a connection left mid-body is closed, not reused."""
        complete = False
        try:
            body = b"".join(
                bounded_body(
                    chunks,
                    max_bytes=self.config.max_response_bytes,
                    seconds=seconds,
                    declared=headers.get("Content-Length"),
                )
            )
            complete = True
            return body
        finally:
            if not complete:
                response.close()
            if isinstance(response, urllib3.BaseHTTPResponse):
                response.release_conn()

    def _from_requests(
        self, response: requests.Response, seconds: float
    ) -> tuple[int, Mapping[str, str], bytes, str]:
        body = self._read(response, body_chunks(response), response.headers, seconds)
        response.close()
        return response.status_code, response.headers, body, response.url

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
            stream=True,
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


def _reply(status: int, headers: Mapping[str, str], content: bytes, url: str) -> Reply:
    """A Reply with the body parsed as JSON when it is JSON, kept as bytes when it is
    protobuf, else kept as text; JSON nested too deeply to parse is an
    APIResponseValidationError."""
    body: Any = None
    is_json = False
    if content and "protobuf" in headers.get("Content-Type", ""):
        body = content
    elif content:
        try:
            body = _wire.loads(content)
            is_json = True
        except ValueError:
            body = content.decode("utf-8", errors="replace")
        except RecursionError:
            raise APIResponseValidationError(
                f"The response from {display_url(url)} is JSON nested too deeply to decode",
                status_code=status,
            ) from None
    return Reply(status_code=status, headers=headers, body=body, is_json=is_json, url=url)


# -- bounded bodies ----------------------------------------------------------------------------


class BodyLimitExceeded(Exception):
    """A response body broke a limit: larger than allowed (`too_large`), or too slow."""

    def __init__(self, message: str, *, too_large: bool, received: int) -> None:
        super().__init__(message)
        self.too_large = too_large
        self.received = received


def body_chunks(response: urllib3.BaseHTTPResponse | requests.Response) -> Iterator[bytes]:
    """A response's decoded body, piece by piece as it arrives: each piece is what one socket
    read brought (so a trickled body yields often), not a fixed-size block."""
    raw = response.raw if isinstance(response, requests.Response) else response
    read1 = getattr(raw, "read1", None)
    if read1 is None:  # a custom adapter's response: requests reads it in blocks
        assert isinstance(response, requests.Response)
        yield from response.iter_content(BODY_CHUNK)
        return
    while chunk := read1(BODY_CHUNK, decode_content=True):
        yield chunk


def bounded_body(
    chunks: Iterable[bytes],
    *,
    max_bytes: int,
    seconds: float,
    declared: str | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[bytes]:
    """`chunks`, stopped with BodyLimitExceeded past `max_bytes` in all (or a `declared`
    Content-Length above it) or once `seconds` have passed since the first was asked for."""
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise BodyLimitExceeded(
            f"declared length {declared} > {max_bytes}", too_large=True, received=0
        )
    deadline = clock() + seconds
    received = 0
    for chunk in chunks:
        received += len(chunk)
        if received > max_bytes:
            raise BodyLimitExceeded(
                f"more than {max_bytes} bytes", too_large=True, received=received
            )
        if clock() > deadline:
            raise BodyLimitExceeded(
                f"not complete within {seconds:g} s", too_large=False, received=received
            )
        yield chunk


# -- connection errors -------------------------------------------------------------------------


def display_url(url: str) -> str:
    """`url` fit for messages: any user:password part is dropped."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.username is None and parsed.password is None:
        return url
    host = parsed.hostname or ""
    netloc = f"{host}:{parsed.port}" if parsed.port is not None else host
    return urllib.parse.urlunsplit(parsed._replace(netloc=netloc))


def _root_cause(exc: BaseException) -> BaseException:
    """The urllib3 (or socket) error inside what requests or urllib3 raised."""
    current = exc
    for _ in range(8):
        if isinstance(current, urllib3.exceptions.MaxRetryError) and current.reason is not None:
            current = current.reason
        elif (
            isinstance(current, requests.RequestException)
            and current.args
            and isinstance(current.args[0], BaseException)
        ):
            current = current.args[0]
        else:
            break
    return current


def _os_reason(exc: BaseException) -> str:
    """The operating system's words for the failure inside `exc` (e.g. "connection refused")."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror.lower()
        current = current.__cause__ or current.__context__
    return type(exc).__name__


def _connection_error(
    exc: BaseException, url: str, timeout: tuple[float, float]
) -> APIConnectionError:
    """The typed error of a request that got no answer, naming the URL and why."""
    root = _root_cause(exc)
    shown = display_url(url)
    if isinstance(root, urllib3.exceptions.NameResolutionError):
        host = urllib.parse.urlsplit(url).hostname
        return APIConnectionError(
            f"Cannot connect to {shown}: the host name {host!r} does not resolve "
            "(is base_url right?)"
        )
    if isinstance(root, urllib3.exceptions.NewConnectionError):
        return APIConnectionError(
            f"Cannot connect to {shown}: {_os_reason(root)} (is the server running, and is "
            "base_url right?)"
        )
    if isinstance(root, urllib3.exceptions.ConnectTimeoutError):
        return APIConnectionError(
            f"Cannot connect to {shown}: no connection within {timeout[0]:g} s (connect_timeout)"
        )
    if isinstance(root, (urllib3.exceptions.ReadTimeoutError, TimeoutError)):
        return APITimeoutError(f"No answer from {shown} within {timeout[1]:g} s")
    return APIConnectionError(f"The connection to {shown} failed: {_describe(root)}")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib3.exceptions.ProtocolError) and len(exc.args) > 1:
        inner = exc.args[1]
        if isinstance(inner, BaseException):
            return f"{type(inner).__name__}: {inner}" if str(inner) else type(inner).__name__
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def is_unreachable(error: BaseException) -> bool:
    """True for a request that never reached a server: the connection could not be made
    (refused, unresolvable host, connect timeout), as opposed to one lost on the way."""
    return isinstance(error, APIConnectionError) and isinstance(
        error.__cause__, urllib3.exceptions.ConnectTimeoutError
    )
