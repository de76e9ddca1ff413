"""Runtime: the threads, connections and session state behind one ServiceClient.

A Runtime owns a fixed set of threads: a bounded submit pool (ordered lanes and sample retries
run there), a small pool for blocking work of the async twins (`spawn`), the poller's bounded
workers, one timer thread, one heartbeat thread and one telemetry flusher. Their number does
not depend on how many futures are in flight: at most submit_workers (16) + blocking_workers
(8) + poll workers (64, capped by the poll connection pool) + 3, see `Runtime.thread_bound`.
Pool threads start on demand and poll workers exit after 30 s without work.

Runtimes live in a per-process registry keyed by (base_url, session_id): a pickled Runtime (or a
client handle holding one) re-attaches to the same session in another process without creating
a new session. After `os.fork()` the child rebuilds threads, connections and locks lazily on
first use; the parent is untouched.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import importlib
import itertools
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from tinker._futures import (
    APIFuture,
    Poller,
    QueueStateObserver,
    reject,
    resolve,
    transform,
)
from tinker._http import Reply, Traffic, Transport, encode_json, json_body
from tinker._retry import TRANSPORT, RetryConfig, RetryPolicy, run_with_deadline
from tinker._sample_retry import SampleRetryHandler
from tinker._telemetry import Telemetry, is_user_error
from tinker._throttle import SampleLimiter, Timers
from tinker.config import LOCAL_BASE_URL, ClientConfig
from tinker.errors import APIResponseValidationError, TinkerError, status_error

if TYPE_CHECKING:
    import requests.adapters

__all__ = ["ClientClosedError", "Heartbeat", "OrderedLane", "Runtime", "RuntimeOptions", "Traffic"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

HEARTBEAT_INTERVAL = 10.0
HEARTBEAT_WARN_AFTER = 120.0
CLOSE_BUDGET = 1.5  # what close() may spend draining telemetry
DEFAULT_SUBMIT_WORKERS = 16
DEFAULT_BLOCKING_WORKERS = 8
DEFAULT_POLL_WORKERS = 64  # measured: benchmarks/bench_transport.py --poll


class ClientClosedError(TinkerError):
    """The client was closed while the operation waited."""


# -- wire conversion -------------------------------------------------------------------------


def _wire() -> Any:
    return importlib.import_module("tinker._wire")


def encode_body(body: object) -> bytes:
    """JSON bytes of a request body: a dict (or list) as is, an attrs request model via _wire."""
    if isinstance(body, (dict, list)):
        return encode_json(body)
    if attrs.has(type(body)):
        encoded: bytes = _wire().dumps(body)
        return encoded
    raise TypeError(f"request body must be a dict or a request model, got {type(body).__name__}")


def from_wire(data: Any, result: type[T] | None) -> Any:
    """Structure a response body into `result` (None or dict: the parsed JSON as is)."""
    if result is None or result is dict:
        return data
    return _wire().structure(data, result)


# -- heartbeat -------------------------------------------------------------------------------


class Heartbeat:
    """Sends `beat()` every 10 s on a daemon thread; warns once 120 s pass without success."""

    def __init__(
        self,
        beat: Callable[[], None],
        *,
        session_id: str,
        interval: float = HEARTBEAT_INTERVAL,
        warn_after: float = HEARTBEAT_WARN_AFTER,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        self._beat = beat
        self.session_id = session_id
        self.interval = interval
        self.warn_after = warn_after
        self._clock = clock
        self._stop = threading.Event()
        self._wait = wait if wait is not None else self._stop.wait
        self.last_success = clock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the heartbeat thread (the first beat goes out one interval from now)."""
        self._thread = threading.Thread(target=self._run, name="tinker-heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._wait(self.interval) and not self._stop.is_set():
            self.beat_once()

    def beat_once(self) -> bool:
        """Send one heartbeat; failures are logged, never raised. True on success."""
        try:
            self._beat()
        except Exception as exc:
            silent_for = self._clock() - self.last_success
            if silent_for > self.warn_after:
                logger.warning(
                    "Session %s: no successful heartbeat for %.0fs (last error: %s). The "
                    "connection may be unreliable. If this persists, the session will be "
                    "terminated.",
                    self.session_id,
                    silent_for,
                    exc,
                )
            else:
                logger.debug("heartbeat failed: %s", exc)
            return False
        self.last_success = self._clock()
        return True

    def stop(self) -> None:
        """Stop at once (the thread wakes from its wait)."""
        self._stop.set()


# -- ordered lane ----------------------------------------------------------------------------


_SKIP = object()


class OrderedLane:
    """Runs submits strictly in seq_id order on a shared pool without blocking any worker.

    Seq ids are reserved in the caller's thread; `submit` parks the function until every earlier
    seq id has finished (or was skipped). The worker that finishes one submit runs the next
    parked one, so no thread ever waits for its turn.
    """

    def __init__(
        self,
        dispatch: Callable[[Callable[[], None]], None],
        before_wait: Callable[[], None] | None = None,
    ) -> None:
        self._dispatch = dispatch
        self._before_wait = before_wait
        self._lock = threading.Lock()
        self._next_seq = 1
        self._next_run = 1
        self._parked: dict[int, tuple[Any, APIFuture[Any] | None]] = {}
        self._running = False

    def reserve(self, n: int = 1) -> list[int]:
        """Take the next `n` seq ids (1, 2, 3, ... per lane)."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        with self._lock:
            first = self._next_seq
            self._next_seq += n
        return list(range(first, first + n))

    def submit(self, seq_id: int, fn: Callable[[], T]) -> APIFuture[T]:
        """Run `fn` once every earlier reserved seq id has been submitted (ok or failed)."""
        future: APIFuture[T] = APIFuture()
        future._before_wait = self._before_wait
        self._park(seq_id, fn, future)
        return future

    def skip(self, seq_id: int) -> None:
        """Give up a reserved seq id without a submit, so later ones are not held back."""
        self._park(seq_id, _SKIP, None)

    def _park(self, seq_id: int, fn: Any, future: APIFuture[Any] | None) -> None:
        with self._lock:
            if not self._next_run <= seq_id < self._next_seq:
                raise ValueError(f"seq_id {seq_id} was not reserved or has already run")
            if seq_id in self._parked:
                raise ValueError(f"seq_id {seq_id} was already submitted")
            self._parked[seq_id] = (fn, future)
            ready = self._take_ready()
        if ready:
            self._start()

    def _take_ready(self) -> bool:
        """Under the lock: claim the lane if the next seq id is parked and nothing runs."""
        if self._running or self._next_run not in self._parked:
            return False
        self._running = True
        return True

    def _start(self) -> None:
        try:
            self._dispatch(self._drain)
        except BaseException as exc:  # the pool is shut down: fail what waits
            self.fail_pending(exc)

    def _drain(self) -> None:
        while True:
            with self._lock:
                fn, future = self._parked.pop(self._next_run)
            if fn is not _SKIP and future is not None:
                try:
                    value = fn()
                except BaseException as exc:
                    reject(future, exc)
                else:
                    resolve(future, value)
            with self._lock:
                self._next_run += 1
                self._running = False
                if not self._take_ready():
                    return

    def fail_pending(self, exc: BaseException) -> None:
        """Fail every parked submit (the runtime is closing)."""
        with self._lock:
            parked = list(self._parked.values())
            self._parked.clear()
        for _, future in parked:
            if future is not None:
                reject(future, exc)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()


# -- runtime ---------------------------------------------------------------------------------


_registry: dict[tuple[str, str], Runtime] = {}
_registry_lock = threading.Lock()


@attrs.frozen
class RuntimeOptions:
    """Tuning knobs of a Runtime (thread bounds, clocks); defaults suit production."""

    submit_workers: int = DEFAULT_SUBMIT_WORKERS
    blocking_workers: int = DEFAULT_BLOCKING_WORKERS
    poll_workers: int | None = None
    heartbeat: bool = True
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] | None = None
    # Builds the requests adapter mounted for every kind of traffic (custom transports, proxies).
    http_adapter: Callable[[], requests.adapters.BaseAdapter] | None = None


class Runtime:
    """Owns the pools, poller, session heartbeat and telemetry of one session."""

    def __init__(
        self,
        config: ClientConfig,
        session_id: str,
        *,
        options: RuntimeOptions | None = None,
        transport: Transport | None = None,
        new_session: bool = False,
    ) -> None:
        self.config = config
        self.session_id = session_id
        self.options = options or RuntimeOptions()
        self._clock = self.options.clock
        self._closed = False
        self._closing = threading.Event()
        self._lock = threading.RLock()
        self._counters_lock = threading.Lock()
        self._model_seq = itertools.count()
        self._sampling_seq = itertools.count()
        self._lanes: weakref.WeakSet[OrderedLane] = weakref.WeakSet()
        self._new_session = new_session
        self._build(transport)
        if new_session and self.telemetry is not None:
            self.telemetry.session_start()

    @property
    def thread_bound(self) -> int:
        """The most threads this runtime ever runs at once."""
        return (
            self.options.submit_workers
            + self.options.blocking_workers
            + self._poller.max_workers
            + 3  # timers, heartbeat, telemetry flusher
        )

    def _build(self, transport: Transport | None, *, after_fork: bool = False) -> None:
        """Create threads, pools and connections (at start, and in a forked child, where the
        fork hook has already replaced the timers and the limiter)."""
        self._pid = os.getpid()
        self.transport = transport or Transport(
            self.config, adapter_factory=self.options.http_adapter
        )
        self.transport.sleep = self._sleep
        self._submit_pool = concurrent.futures.ThreadPoolExecutor(
            self.options.submit_workers, thread_name_prefix="tinker-submit"
        )
        self._blocking_pool = concurrent.futures.ThreadPoolExecutor(
            self.options.blocking_workers, thread_name_prefix="tinker-blocking"
        )
        if not after_fork:
            self.timers = Timers(clock=self._clock)
            self.sample_limiter = self._new_limiter()
        self.telemetry: Telemetry | None = None
        if self.config.telemetry:
            self.telemetry = Telemetry(
                self._send_telemetry,
                session_id=self.session_id,
                sdk_version=self.config.sdk_version,
                secrets=self.config.secrets(),
                timeout=self.config.telemetry_timeout,
            )
            self.telemetry.start()
        poll_workers = self.options.poll_workers or min(
            DEFAULT_POLL_WORKERS, self.config.pool_sizes["poll"]
        )
        self._poller = Poller(
            self._send_poll,
            max_workers=poll_workers,
            clock=self._clock,
            on_event=self._poll_event,
        )
        self._heartbeat: Heartbeat | None = None
        if self.options.heartbeat:
            self._heartbeat = Heartbeat(
                self._send_heartbeat, session_id=self.session_id, clock=self._clock
            )
            self._heartbeat.start()

    def _new_limiter(self) -> SampleLimiter:
        return SampleLimiter(
            self.config.max_sample_submits or 1, clock=self._clock, sleep=self._sleep
        )

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        config: ClientConfig,
        *,
        user_metadata: Mapping[str, Any] | None = None,
        options: RuntimeOptions | None = None,
    ) -> Runtime:
        """Create a session on the service (blocking, transport retries only) and run it."""
        config.apply_log_level()
        placeholder = cls._bootstrap_transport(config, options)
        body = {
            "tags": list(config.tags),
            "user_metadata": dict(user_metadata or {}),
            "sdk_version": config.sdk_version,
        }
        try:
            reply = placeholder.request(
                Traffic.SESSION, "POST", "/api/v1/create_session", content=encode_json(body)
            )
            data = json_body(reply)
            session_id = data.get("session_id") if isinstance(data, dict) else None
            if not isinstance(session_id, str):
                raise APIResponseValidationError(
                    f"create_session answered without a session_id: {data!r}",
                    status_code=reply.status_code,
                    response=reply,
                    body=data,
                )
        except BaseException:
            placeholder.close()
            raise
        for key, level in (
            ("info_message", logging.INFO),
            ("warning_message", logging.WARNING),
            ("error_message", logging.ERROR),
        ):
            message = data.get(key)
            if message:
                logger.log(level, "%s", message)
        runtime = cls(config, session_id, options=options, transport=placeholder, new_session=True)
        runtime._register()
        return runtime

    @classmethod
    def _bootstrap_transport(
        cls, config: ClientConfig, options: RuntimeOptions | None
    ) -> Transport:
        sleep = options.sleep if options is not None and options.sleep is not None else time.sleep
        adapter = options.http_adapter if options is not None else None
        return Transport(config, sleep=sleep, adapter_factory=adapter)

    @classmethod
    def attach(
        cls, config: ClientConfig, session_id: str, *, options: RuntimeOptions | None = None
    ) -> Runtime:
        """The open Runtime of this process for the session, or a new one (no new session)."""
        key = (config.base_url, session_id)
        with _registry_lock:
            existing = _registry.get(key)
            if existing is not None and not existing._closed:
                return existing
            runtime = cls(config, session_id, options=options)
            _registry[key] = runtime
        return runtime

    def _register(self) -> None:
        with _registry_lock:
            _registry[(self.config.base_url, self.session_id)] = self

    def __reduce__(self) -> tuple[Any, ...]:
        # base_url="local" names this process's embedded server: send its real address.
        config = self.config
        if config.base_url == LOCAL_BASE_URL:
            config = attrs.evolve(config, base_url=self.transport.base_url)
        return (_attach, (config, self.session_id))

    # -- liveness (fork) -------------------------------------------------------------------

    def _sleep(self, seconds: float) -> None:
        """Retry pause that ends early (raising) when the runtime closes."""
        if self.options.sleep is not None:
            self.options.sleep(seconds)
            if self._closed:
                raise ClientClosedError("client closed")
            return
        if self._closing.wait(seconds):
            raise ClientClosedError("client closed")

    def _live(self) -> None:
        """Raise if closed; rebuild threads and sockets on first use after a fork."""
        if self._closed:
            raise ClientClosedError("this client has been closed")
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                inherited = self._poller.inherited_jobs()
                logger.debug("rebuilding the runtime of session %s after fork", self.session_id)
                self._build(None, after_fork=True)
                self._poller.adopt(inherited)

    def _after_fork_in_child(self) -> None:
        """Replace locks and events that a vanished parent thread might hold."""
        self._lock = threading.RLock()
        self._counters_lock = threading.Lock()
        self._closing = threading.Event()
        # Objects that clients may reach directly get fresh locks now (they start no threads
        # until used); the rest is rebuilt on first use.
        self.timers = Timers(clock=self._clock)
        self.sample_limiter = self._new_limiter()
        for lane in list(self._lanes):
            lane._after_fork()

    # -- calls -----------------------------------------------------------------------------

    def call(
        self,
        traffic: Traffic,
        method: str,
        path: str,
        *,
        body: object | None = None,
        params: Mapping[str, object] | None = None,
        result: type[T] | None = None,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Any:
        """One request, blocking in the calling thread, retried per `retry` (default: transport
        retries only). Returns `result`-typed data, the parsed JSON (result None), or the raw
        `Reply` (result=Reply, which also returns 3xx instead of raising)."""
        self._live()
        content = None if body is None else encode_body(body)
        policy = retry or TRANSPORT

        def attempt() -> Any:
            reply = self.transport.request(
                traffic,
                method,
                path,
                content=content,
                params=params,
                headers=headers,
                timeout=timeout,
                max_retries=policy.max_retries,
                allow_redirects=allow_redirects,
            )
            return self._decode(reply, result)

        if not policy.deadline_layer:
            return attempt()
        return run_with_deadline(
            attempt,
            deadline=policy.deadline or self.config.submit_retry_seconds,
            is_retryable=policy.is_retryable,
            clock=self._clock,
            sleep=self._sleep,
            what=f"{method} {path}",
            on_failure=self._report_submit_failure,
        )

    def _report_submit_failure(
        self, error: BaseException, attempt: int, elapsed: float, will_retry: bool
    ) -> None:
        if self.telemetry is None:
            return
        data: dict[str, Any] = {
            "exception": str(error),
            "exception_type": type(error).__name__,
            "attempt_count": attempt,
            "elapsed_time": elapsed,
            "should_retry": will_retry,
            "is_user_error": is_user_error(error),
        }
        status = getattr(error, "status_code", None)
        if isinstance(status, int):
            data["status_code"] = status
        severity = "WARNING" if will_retry or data["is_user_error"] else "ERROR"
        self.telemetry.generic_event(
            "InternalClientHolder.execute_with_retries.exception", data, severity
        )

    @staticmethod
    def _decode(reply: Reply, result: type[T] | None) -> Any:
        if result is Reply:
            return reply
        if reply.status_code >= 300:
            raise status_error(reply.status_code, reply.body, response=reply)
        data = json_body(reply)
        try:
            return from_wire(data, result)
        except Exception as exc:
            raise APIResponseValidationError(
                f"Response from {reply.url} does not match {getattr(result, '__name__', result)}:"
                f" {exc}",
                status_code=reply.status_code,
                response=reply,
                body=data,
            ) from exc

    def spawn(self, fn: Callable[..., T], *args: Any) -> APIFuture[T]:
        """Run blocking work `fn(*args)` on the runtime's bounded pool (for async twins)."""
        self._live()
        try:
            inner = self._blocking_pool.submit(fn, *args)
        except RuntimeError as exc:  # shut down by a concurrent close
            raise ClientClosedError("this client has been closed") from exc
        future = transform(inner, _identity)
        future._before_wait = self._revive
        return future

    def submit(self, fn: Callable[..., T], *args: Any) -> APIFuture[T]:
        """Run a short submit `fn(*args)` on the submit pool (used by sampling)."""
        self._live()
        future: APIFuture[T] = APIFuture()
        future._before_wait = self._revive

        def run() -> None:
            try:
                resolve(future, fn(*args))
            except BaseException as exc:
                reject(future, exc)

        self._dispatch(run)
        return future

    def _dispatch(self, fn: Callable[[], None]) -> None:
        self._live()
        self._submit_pool.submit(fn)

    def lane(self) -> OrderedLane:
        """A new ordered submit lane (one per TrainingClient)."""
        self._live()
        lane = OrderedLane(self._dispatch, self._revive)
        self._lanes.add(lane)
        return lane

    def track(
        self,
        request_id: str,
        request_type: str,
        result: type[T] | None,
        *,
        observer: QueueStateObserver | None = None,
        submitted_at: float | None = None,
        on_expired: Callable[[], None] | None = None,
    ) -> APIFuture[T]:
        """Poll a server-side future until it resolves into `result` (None: parsed JSON).

        `submitted_at` is `time.monotonic()` taken when the client operation started.
        """
        self._live()

        def structure(body: Any) -> Any:
            return from_wire(body, result)

        future = self._poller.track(
            request_id,
            request_type,
            structure,
            type_name=getattr(result, "__name__", "object"),
            observer=observer,
            submitted_at=submitted_at,
            on_expired=on_expired,
        )
        future._before_wait = self._revive
        return future

    def _revive(self) -> None:
        """In a forked child, rebuild before someone waits on a future of this runtime."""
        if not self._closed and self._pid != os.getpid():
            self._live()

    def next_model_seq_id(self) -> int:
        """0, 1, 2, ... per session: one per created training model."""
        with self._counters_lock:
            return next(self._model_seq)

    def next_sampling_session_seq_id(self) -> int:
        """0, 1, 2, ... per session, shared by all sampling-session creations."""
        with self._counters_lock:
            return next(self._sampling_seq)

    def sample_retrier(self, config: RetryConfig, *, name: str = "sampler") -> SampleRetryHandler:
        """A sample-level retry handler (PROTOCOL.md 10.4) running on this runtime's timers."""
        self._live()
        return SampleRetryHandler(config, timers=self, clock=self._clock, name=name)

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        """Run the short callback `fn` after `delay` seconds on the runtime's timer thread."""
        self._live()
        self.timers.call_later(delay, fn)

    @property
    def poller(self) -> Poller:
        """The poller resolving this runtime's server-side futures."""
        return self._poller

    # -- background traffic ----------------------------------------------------------------

    def _send_poll(self, request_id: str, headers: Mapping[str, str]) -> Reply:
        return self.transport.send(
            Traffic.POLL,
            "POST",
            "/api/v1/retrieve_future",
            content=encode_json({"request_id": request_id}),
            headers=headers,
            timeout=self.config.poll_timeout,
        )

    def _send_heartbeat(self) -> None:
        self.transport.request(
            Traffic.SESSION,
            "POST",
            "/api/v1/session_heartbeat",
            content=encode_json({"session_id": self.session_id}),
            timeout=self.config.heartbeat_timeout,
            max_retries=0,
        )

    def _send_telemetry(self, body: dict[str, Any], timeout: float, final: bool) -> None:
        reply = self.transport.request(
            Traffic.TELEMETRY,
            "POST",
            "/api/v1/telemetry",
            content=encode_json(body),
            timeout=timeout,
            max_retries=0 if final else 2,
        )
        data = json_body(reply)
        if not isinstance(data, dict) or data.get("status") != "accepted":
            raise APIResponseValidationError(
                f"telemetry not accepted: {data!r}", status_code=reply.status_code, body=data
            )

    def _poll_event(self, name: str, data: dict[str, Any], severity: str) -> None:
        if self.telemetry is not None:
            self.telemetry.generic_event(name, data, severity)

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once close() ran."""
        return self._closed

    def close(self) -> None:
        """Stop every thread and drop connections; idempotent, returns within ~2 s."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._closing.set()
        with _registry_lock:
            key = (self.config.base_url, self.session_id)
            if _registry.get(key) is self:
                del _registry[key]
        if self._pid != os.getpid():  # forked child that never used this runtime
            return
        if self._heartbeat is not None:
            self._heartbeat.stop()
        closed = ClientClosedError("the client was closed before this request was submitted")
        for lane in list(self._lanes):
            lane.fail_pending(closed)
        self._poller.close()
        self.timers.close()
        self._submit_pool.shutdown(wait=False, cancel_futures=True)
        self._blocking_pool.shutdown(wait=False, cancel_futures=True)
        if self.telemetry is not None:
            self.telemetry.close(timeout=CLOSE_BUDGET)
        self.transport.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Runtime session_id={self.session_id!r} base_url={self.config.base_url!r} {state}>"


def _identity(value: T) -> T:
    return value


def _attach(config: ClientConfig, session_id: str) -> Runtime:
    return Runtime.attach(config, session_id)


def _after_fork_in_child() -> None:
    global _registry_lock
    _registry_lock = threading.Lock()
    for runtime in list(_registry.values()):
        runtime._after_fork_in_child()


def _close_all_at_exit() -> None:
    for runtime in list(_registry.values()):
        try:
            runtime.close()
        except Exception:
            logger.debug("closing a runtime at exit failed", exc_info=True)


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_all_at_exit)
