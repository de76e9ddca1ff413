"""Runtime: the lifecycle of the threads, connections and state behind one session.

A Runtime owns the transport, the worker pools, the poller and the heartbeat and telemetry
threads of one session, and the runner that sends ApiCalls over them; it builds them, rebuilds
them in a forked child, and closes them. Its threads are fixed, whatever the number of futures
in flight, and start on demand: the training submit pool (16), the sampling submit pool (16),
the blocking pool of the async twins (8), the poll workers (64, capped by the poll connection
pool), and the timer, heartbeat and telemetry threads: 107 at most (`thread_bound`). Retry
pauses wait in the pools' queues or on the timer thread, never in a sleeping worker.

Every future a client hands out is registered here (`operation`). `close()` (and interpreter
exit, see tinker._session) fails each one still pending at once with ClientClosedError, stops
every retry, and logs one line saying how many were abandoned; nothing runs after that.

After `os.fork()` the child gets fresh locks and empty pools at once (see tinker._session) and
rebuilds its connections and service threads on first use; the parent is untouched.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import functools
import itertools
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from tinker._attribution import attribute_public_methods
from tinker._calls import ApiCall, CallRunner
from tinker._cancels import CANCEL_TIMEOUT, CancelDrain
from tinker._chunking import ChunkLimits, batch_byte_estimate, chunk_limits
from tinker._futures import APIFuture, reject
from tinker._handshake import refresh_dynamic, use_access_tokens
from tinker._heartbeat import Heartbeat, heartbeat_call
from tinker._lanes import OrderedLane
from tinker._limits import InFlightLimit, SampleLimiter, SampleRetries
from tinker._poller import Poller, PollLimits
from tinker._retry import RetryConfig, RetryEnv, RetryExecutor
from tinker._telemetry import Telemetry, send_batch
from tinker._transport import Reply, Traffic, Transport, display_url
from tinker._validation import FinishStatus, check_finish
from tinker._wire.codec import WireCodec
from tinker._workers import ClientClosedError, Pauses, WorkerPool
from tinker.config import LEGACY_SERVER, LOCAL_BASE_URL, ClientConfig, ServerConfig
from tinker.metrics import ClientMetrics, MetricsSnapshot

if TYPE_CHECKING:
    import requests.adapters

    from tinker import types

__all__ = [
    "ClientBase",
    "ClientClosedError",
    "Runtime",
    "RuntimeOptions",
    "codec_of",
    "finish_status",
    "log_abandoned",
]

logger = logging.getLogger(__name__)
T = TypeVar("T")

SAMPLE_BYTES_PER_TOKEN = 10  # what a prompt token counts in the sample dispatch budget
SAMPLE_BACKOFF_FACTOR = 20  # ... while the shared 429 back-off runs
CLOSE_BUDGET = 1.5  # what close() may spend draining telemetry
DEFAULT_SUBMIT_WORKERS = 16
DEFAULT_SAMPLE_WORKERS = 16
DEFAULT_BLOCKING_WORKERS = 8
DEFAULT_POLL_WORKERS = 64  # measured: benchmarks/bench_transport.py --poll
SERVICE_THREADS = 3  # timers, heartbeat, telemetry flusher


def finish_status(exc_type: type[BaseException] | None) -> FinishStatus:
    """How a `with` block ended, as a session finish status: no exception "success", an
    Exception "errored", anything else (KeyboardInterrupt, SystemExit) "interrupted"."""
    if exc_type is None:
        return "success"
    return "errored" if issubclass(exc_type, Exception) else "interrupted"


def codec_of(server: ServerConfig) -> WireCodec:
    """The wire codec of the negotiated protocol era."""
    return WireCodec(era=server.era, compress_forward_backward=server.compress_forward_backward)


@attrs.frozen
class RuntimeOptions:
    """Tuning knobs of a Runtime (thread bounds, clocks); defaults suit production.

    `sleep` replaces every retry pause and back-off wait (tests drive a fake clock with it):
    the pause calls `sleep(seconds)` and the operation goes on at once.
    """

    submit_workers: int = DEFAULT_SUBMIT_WORKERS
    sample_workers: int = DEFAULT_SAMPLE_WORKERS
    blocking_workers: int = DEFAULT_BLOCKING_WORKERS
    poll_workers: int | None = None
    heartbeat: bool = True
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] | None = None
    # Builds the requests adapter mounted for every kind of traffic (custom transports, proxies).
    http_adapter: Callable[[], requests.adapters.BaseAdapter] | None = None


class Runtime:
    """Owns the pools, poller, transport, heartbeat and telemetry of one session."""

    def __init__(
        self,
        config: ClientConfig,
        session_id: str,
        *,
        options: RuntimeOptions | None = None,
        transport: Transport | None = None,
        new_session: bool = False,
        on_close: Callable[[Runtime], None] | None = None,
        server: ServerConfig = LEGACY_SERVER,
    ) -> None:
        self.config = config
        self.server = server
        self.session_id = session_id
        self._owns_session = new_session
        self.options = options = options or RuntimeOptions()
        self._clock = options.clock
        self._on_close = on_close
        self._closed = False
        self._closing = threading.Event()
        self._lock = threading.RLock()
        self._counters_lock = threading.Lock()
        self._model_seq = itertools.count()
        self._sampling_seq = itertools.count()
        self._custom_loss_seq = itertools.count()
        self._lanes: weakref.WeakSet[OrderedLane] = weakref.WeakSet()
        self._sample_retries: weakref.WeakSet[SampleRetries] = weakref.WeakSet()
        self._operations: set[concurrent.futures.Future[Any]] = set()
        self._operations_lock = threading.Lock()
        pauses = Pauses(options.sleep)
        self.metrics = transport.metrics if transport is not None else ClientMetrics.for_client()
        self.timers = WorkerPool(1, name="tinker-timers")
        self.executor = RetryExecutor(
            sleep=self._sleep,
            timers=self.timers,
            pauses=pauses,
            stopped=self._is_closed,
            metrics=self.metrics,
        )
        self._pools = {
            Traffic.TRAIN: WorkerPool(options.submit_workers, name="tinker-submit"),
            Traffic.SAMPLE: WorkerPool(options.sample_workers, name="tinker-sample"),
        }
        self._blocking_pool = WorkerPool(options.blocking_workers, name="tinker-blocking")
        self.poller = Poller(
            self._send_poll,
            max_workers=options.poll_workers
            or min(DEFAULT_POLL_WORKERS, config.pool_sizes["poll"]),
            clock=self._clock,
            on_event=self._poll_event,
            executor=self.executor,
            before_wait=self._revive,
            limits=PollLimits(
                deadline=config.future_timeout,
                unreachable_after=config.submit_retry_seconds,
                billing_pause=server.billing_pause_seconds,
            ),
            metrics=self.metrics,
        )
        if server.batch_poller:
            self.poller.batch_send = self._send_batch_poll
            self.poller.response_bytes = InFlightLimit.byte_budget(
                server.inflight_response_bytes, what="result payloads", timers=self.timers
            )
        self._cancels: CancelDrain | None = None
        self._apply_dynamic(server)
        self.sample_limiter = SampleLimiter(
            config.max_sample_submits or 1, timers=self.timers, clock=self._clock, pauses=pauses
        )
        # The byte budgets of submits in flight (0.38): a submit waits while its budget is
        # overdrawn, holding no thread; one larger than the whole budget still goes.
        self.train_bytes = InFlightLimit.byte_budget(
            server.dispatch_bytes, what="forward_backward submits", timers=self.timers
        )
        self.sample_bytes = InFlightLimit.byte_budget(
            server.sample_dispatch_bytes, what="sample submits", timers=self.timers
        )
        self._connect(transport)
        if server.current:
            self._schedule_refresh()
        if new_session and self.telemetry is not None:
            self.telemetry.session_start()

    @property
    def thread_bound(self) -> int:
        """The most threads this runtime ever runs at once."""
        pools = (*self._pools.values(), self._blocking_pool, self.poller.pool)
        return sum(pool.max_workers for pool in pools) + SERVICE_THREADS

    def _connect(self, transport: Transport | None) -> None:
        """Create the connections, the call runner and the service threads (at start, and in a
        forked child on first use)."""
        self._pid = os.getpid()
        if transport is None:
            transport = Transport(
                self.config,
                adapter_factory=self.options.http_adapter,
                metrics=self.metrics,
                clock=self._clock,
            )
            if self.server.jwt_auth:
                use_access_tokens(transport)
        self.transport = transport
        self.poller.server = display_url(self.transport.base_url)
        env = RetryEnv(
            clock=self._clock,
            max_retries=self.config.max_retries,
            deadline=self.config.submit_retry_seconds,
            on_failure=self._report_failure,
            silent_since=self.transport.silence.since,
        )
        self._calls = CallRunner(
            self.transport,
            executor=self.executor,
            env=env,
            poller=self.poller,
            pools=self._pools,
            codec=codec_of(self.server),
        )
        self.telemetry: Telemetry | None = None
        if self.config.telemetry:
            self.telemetry = Telemetry(
                functools.partial(send_batch, self._calls.call),
                session_id=self.session_id,
                sdk_version=self.config.sdk_version,
                secrets=self.config.secrets(),
                timeout=self.config.telemetry_timeout,
            )
            self.telemetry.start()
        self._heartbeat: Heartbeat | None = None
        if self.options.heartbeat:
            beat = heartbeat_call(
                self.session_id, self.config.heartbeat_timeout, typed=self.server.current
            )
            self._heartbeat = Heartbeat(
                functools.partial(self._calls.call, beat),
                session_id=self.session_id,
                clock=self._clock,
            )
            self._heartbeat.start()

    # -- what clients use ------------------------------------------------------------------

    def call(self, call: ApiCall) -> Any:
        """Run `call` in this thread (blocking through retries; see CallRunner.call)."""
        self._live()
        return self._calls.call(call)

    def submit(self, call: ApiCall) -> APIFuture[APIFuture[Any]]:
        """Send `call` in the background (see CallRunner.submit)."""
        self._live()
        budget, size = self._dispatch_budget(call.body)
        if budget is None:
            future = self._calls.submit(call)
        else:
            future = budget.run(functools.partial(self._calls.submit, call), weight=size)
        future._before_wait = self._revive
        return future

    def _dispatch_budget(self, body: object) -> tuple[InFlightLimit | None, int]:
        """The byte budget a submit of `body` holds while it is sent, and its estimated size
        (0.38: forward_backward chunks by their protobuf estimate, samples by 10 bytes a prompt
        token, 20 times that during the shared 429 back-off)."""
        if not self.server.current:
            return None, 0
        from tinker import types

        if isinstance(body, types.ForwardBackwardRequest):
            return self.train_bytes, batch_byte_estimate(body.forward_backward_input.data)
        if isinstance(body, types.ForwardRequest):
            return self.train_bytes, batch_byte_estimate(body.forward_input.data)
        if isinstance(body, types.SampleRequest):
            size = SAMPLE_BYTES_PER_TOKEN * body.prompt.length
            if self.sample_limiter.backoff_remaining() > 0:
                size *= SAMPLE_BACKOFF_FACTOR
            return self.sample_bytes, size
        return None, 0

    def spawn(self, fn: Callable[..., T], *args: Any) -> APIFuture[T]:
        """Run blocking work `fn(*args)` on the blocking pool (the async twins' work)."""
        self._live()
        # The work runs in the caller's context (the public method it belongs to).
        future = self._blocking_pool.run(contextvars.copy_context().run, fn, *args)
        future._before_wait = self._revive
        return self.operation(future)

    def operation(self, future: APIFuture[T]) -> APIFuture[T]:
        """Register a future handed to a caller: close() fails it if it is still pending."""
        with self._operations_lock:
            if self._closed:
                reject(future, ClientClosedError("this client has been closed"))
                return future
            self._operations.add(future)
        future.add_done_callback(self._operation_done)
        return future

    def _operation_done(self, future: concurrent.futures.Future[Any]) -> None:
        with self._operations_lock:
            self._operations.discard(future)

    @property
    def pending_operations(self) -> int:
        """Futures handed to callers and not yet done."""
        return len(self._operations)

    def lane(self, first_seq_id: int = 1) -> OrderedLane:
        """A new ordered submit lane (one per TrainingClient)."""
        self._live()
        lane = OrderedLane(self._revive, first_seq_id=first_seq_id)
        self._lanes.add(lane)
        return lane

    def sample_retries(self, config: RetryConfig, *, name: str = "sampler") -> SampleRetries:
        """Sample-level retries for one SamplingClient, under the session's shared 429 back-off."""
        self._live()
        retries = SampleRetries(
            config,
            executor=self.executor,
            timers=self.timers,
            clock=self._clock,
            on_rate_limited=self.sample_limiter.back_off,
            name=name,
        )
        self._sample_retries.add(retries)
        return retries

    @property
    def chunk_limits(self) -> ChunkLimits:
        """How forward/forward_backward batches are split into requests on this server."""
        server = self.server
        return chunk_limits(server.era, server.max_chunk_len, server.max_chunk_bytes)

    def next_model_seq_id(self) -> int:
        """0, 1, 2, ... per session: one per created training model."""
        with self._counters_lock:
            return next(self._model_seq)

    def next_sampling_session_seq_id(self) -> int:
        """0, 1, 2, ... per session, shared by all sampling-session creations."""
        with self._counters_lock:
            return next(self._sampling_seq)

    def next_custom_loss_seq_id(self) -> int:
        """0, 1, 2, ... per session: one per custom loss uploaded with create_custom_loss."""
        with self._counters_lock:
            return next(self._custom_loss_seq)

    # -- background traffic ----------------------------------------------------------------

    def _send_poll(
        self, request_id: str, headers: Mapping[str, str], allow_metadata_only: bool
    ) -> Reply:
        codec = self._calls.codec
        poll = ApiCall(
            sdk_method=None,  # background traffic
            traffic=Traffic.POLL,
            method="POST",
            path="/api/v1/retrieve_future",
            body=codec.poll_body(request_id, allow_metadata_only=allow_metadata_only),
            headers=headers,
            timeout=self.config.poll_timeout,
        )
        return self.transport.send(poll.encode(codec))

    def _send_batch_poll(self, body: Mapping[str, Any], timeout: float) -> Reply:
        poll = ApiCall(
            sdk_method=None,  # background traffic
            traffic=Traffic.POLL,
            method="POST",
            path="/api/v1/retrieve_futures",
            body=dict(body),
            timeout=timeout,
        )
        return self.transport.send(poll.encode(self._calls.codec))

    def _apply_dynamic(self, server: ServerConfig) -> None:
        """Act on the switches of the dynamic config: cancels of abandoned samples."""
        self.server = server
        if not server.sample_cancel:
            self.poller.cancel = None
            return
        if self._cancels is None or self._cancels.batch != server.sample_cancel_batch:
            self._cancels = CancelDrain(
                self._send_cancel,
                self.poller.pool,
                batch=server.sample_cancel_batch,
                clock=self._clock,
            )
        self.poller.cancel = self._cancels.cancel

    def _schedule_refresh(self) -> None:
        """Refresh the dynamic config after its period (the request runs on the blocking
        pool; no thread waits for the period)."""
        self.timers.call_later(self.server.dynamic_refresh_seconds, self._refresh_in_background)

    def _refresh_in_background(self) -> None:
        self._blocking_pool.run(self.refresh_dynamic_config)

    def refresh_dynamic_config(self) -> None:
        """Fetch `client/dynamic_config` again and act on it; a failure keeps the old values.
        Then schedule the next refresh."""
        if self._closed:
            return
        try:
            self._apply_dynamic(refresh_dynamic(self._calls, self.server))
        except Exception as exc:
            logger.debug("refreshing the dynamic config failed (%s); keeping the old one", exc)
        self._schedule_refresh()

    def _send_cancel(self, request_id: str) -> None:
        """One attempt of cancel_future for an abandoned sample (the drain logs a failure)."""
        cancel = ApiCall(
            sdk_method=None,  # background traffic
            traffic=Traffic.POLL,
            method="POST",
            path="/api/v1/cancel_future",
            body={"request_id": request_id},
            timeout=CANCEL_TIMEOUT,
        )
        self.transport.send(cancel.encode(self._calls.codec)).raise_for_status()

    def _poll_event(self, name: str, data: dict[str, Any], severity: str) -> None:
        if self.telemetry is not None:
            self.telemetry.generic_event(name, data, severity)

    def _report_failure(
        self, error: BaseException, attempt: int, elapsed: float, will_retry: bool
    ) -> None:
        if self.telemetry is not None:
            self.telemetry.submit_failure(error, attempt, elapsed, will_retry)

    # -- liveness (close, fork) ------------------------------------------------------------

    def _sleep(self, seconds: float) -> None:
        """Retry pause of a blocking call; ends early (raising) when the runtime closes."""
        if self.options.sleep is not None:
            self.options.sleep(seconds)
            if self._closed:
                raise ClientClosedError("client closed")
            return
        if self._closing.wait(seconds):
            raise ClientClosedError("client closed")

    def _is_closed(self) -> bool:
        return self._closed

    def _live(self) -> None:
        """Raise if closed; reconnect on first use after a fork."""
        if self._closed:
            raise ClientClosedError("this client has been closed")
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                logger.debug("reconnecting the runtime of session %s after fork", self.session_id)
                self._connect(None)
                self.poller.resume_inherited()

    def _revive(self) -> None:
        """In a forked child, reconnect before someone waits on a future of this runtime."""
        if not self._closed and self._pid != os.getpid():
            self._live()

    def _after_fork_in_child(self) -> None:
        """Replace every lock and pool a vanished parent thread might hold (no thread starts
        here); connections and service threads are rebuilt on first use."""
        self._lock = threading.RLock()
        self._counters_lock = threading.Lock()
        self._closing = threading.Event()
        self.metrics._after_fork_in_child()
        for pool in (self.timers, *self._pools.values(), self._blocking_pool):
            pool._after_fork_in_child()
        self.poller._after_fork_in_child()
        self.sample_limiter._after_fork_in_child()
        for lane in list(self._lanes):
            lane._after_fork_in_child()
        for retries in list(self._sample_retries):
            retries._after_fork_in_child()

    @property
    def closed(self) -> bool:
        """True once close() ran."""
        return self._closed

    def close(self, status: str = "success", detail: str | None = None) -> None:
        """Stop every thread, fail what is pending and drop connections; idempotent, ~2 s.

        Every operation still pending fails at once with ClientClosedError, and one log line
        says how many there were; then a session this runtime created on a 0.38 server is
        finished with `status` ("success", "errored" or "interrupted") and `detail`.
        """
        self.close_with(check_finish(status, detail))

    def close_with(self, reason: types.SessionFinishRequest) -> None:
        """close() with a finish reason the caller has checked already."""
        log_abandoned(self._close(reason), "the client was closed")

    def shutdown(self) -> int:
        """close() without finishing the session or logging: the number of operations it
        failed (0 when already closed)."""
        return self._close(None)

    def _close(self, reason: types.SessionFinishRequest | None) -> int:
        """Fail what is pending, finish the session when `reason` is given, stop every thread
        and drop connections; the number of operations failed (0 when already closed).

        The caller's futures fail before any request is sent, so what was pending when close
        was called is what fails, however long the finish request takes.
        """
        with self._lock:
            if self._closed:
                return 0
            with self._operations_lock:
                self._closed = True
                pending = [future for future in self._operations if not future.done()]
                self._operations.clear()
        self._closing.set()
        if self._on_close is not None:
            self._on_close(self)
        if self._pid != os.getpid():  # forked child that never used this runtime
            return 0
        closed = ClientClosedError("the client was closed before this operation finished")
        for future in pending:  # also those with a request in flight on a worker
            reject(future, closed)
        if reason is not None:
            self._finish(reason)
        if self._heartbeat is not None:
            self._heartbeat.stop()
        for lane in list(self._lanes):
            lane.fail_pending(closed)
        for retries in list(self._sample_retries):
            retries.fail_waiting(closed)
        self.sample_limiter.fail_waiting(closed)
        self.poller.close(closed)
        if self._cancels is not None:  # the samples it left pending, and any queued before
            self._cancels.close(CLOSE_BUDGET)
        for pool in (self.timers, *self._pools.values(), self._blocking_pool):
            pool.close(closed)
        if self.telemetry is not None:
            self.telemetry.close(timeout=CLOSE_BUDGET)
        self.transport.close()
        return len(pending)

    def _finish(self, reason: types.SessionFinishRequest) -> None:
        """Tell a 0.38 server why the session ends (once, one attempt of at most the heartbeat
        timeout; a failure is logged, not raised)."""
        if not (self.server.current and self._owns_session):
            return
        self._owns_session = False
        finish = ApiCall(
            traffic=Traffic.TRAIN,
            method="POST",
            path=f"/api/v1/sessions/{self.session_id}/finish",
            # built by hand, like the service's own SDK: "detail" is sent even when null
            body={"reason": {"type": reason.reason.type}, "detail": reason.detail},
            timeout=self.config.heartbeat_timeout,
        )
        try:  # one bounded attempt, like the rest of close (which may run in an event loop)
            self.transport.send(finish.encode(self._calls.codec)).raise_for_status()
        except Exception as exc:
            logger.warning("could not finish session %s on the server: %s", self.session_id, exc)

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def portable_config(self) -> ClientConfig:
        """The config another process needs to reach this session: base_url="local" names
        this process's embedded server, so its real address goes instead."""
        if self.config.base_url == LOCAL_BASE_URL:
            return attrs.evolve(self.config, base_url=self.transport.base_url)
        return self.config

    def __reduce__(self) -> tuple[Any, ...]:
        return (_attach, (self.portable_config(), self.session_id, self.server))

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Runtime session_id={self.session_id!r} base_url={self.config.base_url!r} {state}>"


def log_abandoned(count: int, when: str) -> None:
    """The one line that says how many pending operations a close abandoned (none: silent)."""
    if count:
        logger.warning(
            "%s with %d operation%s pending; %s failed with ClientClosedError",
            when,
            count,
            "" if count == 1 else "s",
            "it" if count == 1 else "they",
        )


def _attach(config: ClientConfig, session_id: str, server: ServerConfig = LEGACY_SERVER) -> Runtime:
    """Unpickle a runtime: this process's open runtime of the session, or a new one."""
    from tinker._session import attach  # the session registry sits above this module

    return attach(config, session_id, server=server)


class ClientBase:
    """What every client shares: the runtime (session, pools, poller) it runs on."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        attribute_public_methods(cls)

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    @property
    def holder(self) -> Runtime:
        """The runtime (session, pools, poller) this client runs on."""
        return self._runtime

    def get_telemetry(self) -> Telemetry | None:
        """The session's telemetry, or None when disabled."""
        return self._runtime.telemetry

    def metrics(self) -> MetricsSnapshot:
        """What this session's requests did so far in this process (every client of the
        session shares them): per endpoint, retries by cause, queue states; see tinker.metrics.
        """
        return self._runtime.metrics.snapshot()
