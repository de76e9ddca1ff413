"""Client metrics: what one ServiceClient's requests did, counted where every request passes.

Per endpoint (`"POST /api/v1/forward_backward"`; ids in REST paths become `{id}`): requests by
status, requests that got no answer, a latency histogram and the bytes sent and received.
Besides: retries by cause (`http_503`, `connection`, ...), and the queue states that polls
reported. `ServiceClient.metrics()` returns a `MetricsSnapshot`; when the `opentelemetry`
package is installed every measurement also goes to OpenTelemetry instruments (see
`tinker._otel_metrics`). Recording costs a lock and a few dict updates per request.
"""

from __future__ import annotations

import bisect
import importlib.util
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from tinker.errors import APIConnectionError, APIStatusError, APITimeoutError

__all__ = [
    "LATENCY_BUCKETS",
    "ClientMetrics",
    "EndpointMetrics",
    "LatencyHistogram",
    "MetricsSink",
    "MetricsSnapshot",
    "endpoint_name",
    "retry_cause",
]

#: Upper bounds (seconds) of the latency histogram's buckets; one more bucket holds the rest.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip

# Path segments that name a collection: the segment after one is an id (`{id}` in metrics).
_COLLECTIONS = frozenset({"training_runs", "checkpoints", "sessions", "samplers", "models"})
_NAMES_KEPT = 512  # distinct (method, path) pairs whose endpoint name is cached


def endpoint_name(method: str, path: str) -> str:
    """The endpoint a request went to, e.g. "GET /api/v1/training_runs/{id}/checkpoints"."""
    segments = path.split("?", 1)[0].split("/")
    for index in range(1, len(segments)):
        if segments[index - 1] in _COLLECTIONS and segments[index]:
            segments[index] = "{id}"
    return f"{method.upper()} {'/'.join(segments)}"


def retry_cause(error: BaseException) -> str | None:
    """Why a failed attempt is retried: `http_<status>`, `timeout`, `connection`, or the
    error's type; None when the error is no failure (an error with a `retry_cause` attribute
    names its own cause, e.g. a poll that is simply not ready yet: None)."""
    if hasattr(error, "retry_cause"):
        own: str | None = error.retry_cause
        return own
    if isinstance(error, APIStatusError):
        return f"http_{error.status_code}"
    if isinstance(error, (APITimeoutError, TimeoutError)):
        return "timeout"
    if isinstance(error, APIConnectionError):
        return "connection"
    return type(error).__name__


@dataclass(frozen=True)
class LatencyHistogram:
    """Request latencies in seconds: `counts[i]` fell at or below `LATENCY_BUCKETS[i]` (and
    above the bucket before); the last count is everything slower."""

    count: int = 0
    total: float = 0.0
    minimum: float | None = None
    maximum: float | None = None
    counts: tuple[int, ...] = (0,) * (len(LATENCY_BUCKETS) + 1)

    def __add__(self, other: LatencyHistogram) -> LatencyHistogram:
        """Both histograms' latencies together."""
        bounds = [v for v in (self.minimum, other.minimum) if v is not None]
        tops = [v for v in (self.maximum, other.maximum) if v is not None]
        return LatencyHistogram(
            count=self.count + other.count,
            total=self.total + other.total,
            minimum=min(bounds) if bounds else None,
            maximum=max(tops) if tops else None,
            counts=tuple(a + b for a, b in zip(self.counts, other.counts, strict=True)),
        )

    @property
    def mean(self) -> float | None:
        """The mean latency, None before any request."""
        return self.total / self.count if self.count else None

    def quantile(self, q: float) -> float | None:
        """An upper bound of the `q` quantile (0 < q <= 1): the bound of the bucket it falls
        in (the maximum for the last bucket); None before any request."""
        if not 0.0 < q <= 1.0:
            raise ValueError(f"q must be in (0, 1], got {q!r}")
        if not self.count:
            return None
        wanted = q * self.count
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= wanted and count:
                return LATENCY_BUCKETS[index] if index < len(LATENCY_BUCKETS) else self.maximum
        return self.maximum


@dataclass(frozen=True)
class EndpointMetrics:
    """What the requests to one endpoint did: answers by status, requests with no answer
    (`errors`, by error type), latency (answered or not) and bytes."""

    requests: int = 0
    statuses: Mapping[int, int] = field(default_factory=dict)
    errors: Mapping[str, int] = field(default_factory=dict)
    latency: LatencyHistogram = LatencyHistogram()
    bytes_sent: int = 0
    bytes_received: int = 0

    def __add__(self, other: EndpointMetrics) -> EndpointMetrics:
        """Both endpoints' requests together."""
        return EndpointMetrics(
            requests=self.requests + other.requests,
            statuses=_summed(self.statuses, other.statuses),
            errors=_summed(self.errors, other.errors),
            latency=self.latency + other.latency,
            bytes_sent=self.bytes_sent + other.bytes_sent,
            bytes_received=self.bytes_received + other.bytes_received,
        )


K = TypeVar("K")


def _summed(first: Mapping[K, int], second: Mapping[K, int]) -> dict[K, int]:
    """Counts by key, both mappings together."""
    total = dict(first)
    for key, count in second.items():
        total[key] = total.get(key, 0) + count
    return total


@dataclass(frozen=True)
class MetricsSnapshot:
    """A consistent copy of a client's metrics at one moment (plain data, safe to keep)."""

    endpoints: Mapping[str, EndpointMetrics]
    retries: Mapping[str, int]
    queue_states: Mapping[str, int]

    @property
    def requests(self) -> int:
        """Requests sent, every endpoint together."""
        return sum(endpoint.requests for endpoint in self.endpoints.values())

    @property
    def bytes_sent(self) -> int:
        """Request body bytes sent, every endpoint together."""
        return sum(endpoint.bytes_sent for endpoint in self.endpoints.values())

    @property
    def bytes_received(self) -> int:
        """Response body bytes received, every endpoint together."""
        return sum(endpoint.bytes_received for endpoint in self.endpoints.values())

    def __add__(self, other: MetricsSnapshot) -> MetricsSnapshot:
        """The two recorders' counts together (a session and the session-less REST calls)."""
        endpoints = dict(self.endpoints)
        for name, theirs in other.endpoints.items():
            ours = endpoints.get(name)
            endpoints[name] = theirs if ours is None else ours + theirs
        return MetricsSnapshot(
            endpoints=endpoints,
            retries=_summed(self.retries, other.retries),
            queue_states=_summed(self.queue_states, other.queue_states),
        )

    def as_dict(self) -> dict[str, Any]:
        """The snapshot as JSON-ready data (for logs and dashboards)."""
        return {
            "endpoints": {
                name: {
                    "requests": e.requests,
                    "statuses": {str(status): n for status, n in e.statuses.items()},
                    "errors": dict(e.errors),
                    "latency": {
                        "count": e.latency.count,
                        "total": e.latency.total,
                        "min": e.latency.minimum,
                        "max": e.latency.maximum,
                        "buckets": list(
                            zip([*LATENCY_BUCKETS, None], e.latency.counts, strict=True)
                        ),
                    },
                    "bytes_sent": e.bytes_sent,
                    "bytes_received": e.bytes_received,
                }
                for name, e in self.endpoints.items()
            },
            "retries": dict(self.retries),
            "queue_states": dict(self.queue_states),
        }


class MetricsSink(Protocol):
    """Something else that hears of every measurement (the OpenTelemetry bridge)."""

    def request(
        self, endpoint: str, outcome: str, seconds: float, sent: int, received: int
    ) -> None: ...

    def retry(self, cause: str) -> None: ...

    def queue_state(self, state: str) -> None: ...


class _Endpoint:
    """The running totals of one endpoint (mutable; read under the ClientMetrics lock)."""

    __slots__ = (
        "buckets", "errors", "maximum", "minimum", "received", "requests", "sent", "statuses",
        "total",
    )  # fmt: skip

    def __init__(self) -> None:
        self.requests = 0
        self.statuses: dict[int, int] = {}
        self.errors: dict[str, int] = {}
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.total = 0.0
        self.minimum: float | None = None
        self.maximum: float | None = None
        self.sent = 0
        self.received = 0

    def frozen(self) -> EndpointMetrics:
        return EndpointMetrics(
            requests=self.requests,
            statuses=dict(self.statuses),
            errors=dict(self.errors),
            latency=LatencyHistogram(
                count=self.requests,
                total=self.total,
                minimum=self.minimum,
                maximum=self.maximum,
                counts=tuple(self.buckets),
            ),
            bytes_sent=self.sent,
            bytes_received=self.received,
        )


class ClientMetrics:
    """The metrics recorder of one client session (thread-safe); `snapshot()` reads it.

    `sink` also hears of every measurement; `for_client()` gives it the OpenTelemetry bridge
    when `opentelemetry` is installed.
    """

    def __init__(self, sink: MetricsSink | None = None) -> None:
        self.sink = sink
        self._names: dict[tuple[str, str], str] = {}
        self._start()

    def _start(self) -> None:
        """Empty totals and a fresh lock."""
        self._lock = threading.Lock()
        self._endpoints: dict[str, _Endpoint] = {}
        self._retries: dict[str, int] = {}
        self._queue_states: dict[str, int] = {}

    @classmethod
    def for_client(cls) -> ClientMetrics:
        """A recorder that also reports to OpenTelemetry when the package is installed."""
        if importlib.util.find_spec("opentelemetry") is None:
            return cls()
        from tinker._otel_metrics import OpenTelemetrySink

        return cls(OpenTelemetrySink.from_global_provider())

    def endpoint(self, method: str, path: str) -> str:
        """The endpoint name of (method, path), cached for the few paths a client uses."""
        name = self._names.get((method, path))
        if name is None:
            name = endpoint_name(method, path)
            if len(self._names) < _NAMES_KEPT:
                self._names[(method, path)] = name
        return name

    def request(
        self,
        method: str,
        path: str,
        *,
        status: int | None,
        error: str | None = None,
        seconds: float,
        sent: int,
        received: int,
    ) -> None:
        """One attempt: its answer's `status`, or the `error` type when none came."""
        name = self.endpoint(method, path)
        with self._lock:
            totals = self._endpoints.get(name)
            if totals is None:
                totals = self._endpoints[name] = _Endpoint()
            totals.requests += 1
            if status is not None:
                totals.statuses[status] = totals.statuses.get(status, 0) + 1
            else:
                kind = error or "error"
                totals.errors[kind] = totals.errors.get(kind, 0) + 1
            totals.buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
            totals.total += seconds
            if totals.minimum is None or seconds < totals.minimum:
                totals.minimum = seconds
            if totals.maximum is None or seconds > totals.maximum:
                totals.maximum = seconds
            totals.sent += sent
            totals.received += received
        if self.sink is not None:
            outcome = str(status) if status is not None else (error or "error")
            self.sink.request(name, outcome, seconds, sent, received)

    def retried(self, error: BaseException) -> None:
        """A failed attempt will be tried again (errors that are no failure are not counted)."""
        cause = retry_cause(error)
        if cause is None:
            return
        with self._lock:
            self._retries[cause] = self._retries.get(cause, 0) + 1
        if self.sink is not None:
            self.sink.retry(cause)

    def queue_state(self, state: str) -> None:
        """A poll answered that its request waits in a queue in `state` ("active", ...)."""
        with self._lock:
            self._queue_states[state] = self._queue_states.get(state, 0) + 1
        if self.sink is not None:
            self.sink.queue_state(state)

    def snapshot(self) -> MetricsSnapshot:
        """A consistent copy of everything recorded so far."""
        with self._lock:
            return MetricsSnapshot(
                endpoints={name: totals.frozen() for name, totals in self._endpoints.items()},
                retries=dict(self._retries),
                queue_states=dict(self._queue_states),
            )

    def _after_fork_in_child(self) -> None:
        """Start over: the child counts its own requests, under a fresh lock (a vanished
        parent thread may have held the old one)."""
        self._start()
