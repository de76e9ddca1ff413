"""The OpenTelemetry side of client metrics: instruments on a meter named "tinker".

Loaded only when the `opentelemetry` package is installed (tinker.metrics checks); without a
configured meter provider, the API's default one records nothing at next to no cost.

Instruments (attributes in brackets): `tinker.client.requests` [endpoint, outcome: the status
or the error type], `tinker.client.request.duration` in s [endpoint], `tinker.client.sent` and
`tinker.client.received` in bytes [endpoint], `tinker.client.retries` [cause],
`tinker.client.queue_states` [state].
"""

from __future__ import annotations

from typing import Any

from tinker._version import __version__
from tinker.metrics import LATENCY_BUCKETS

__all__ = ["OpenTelemetrySink"]


class OpenTelemetrySink:
    """Records client measurements on OpenTelemetry instruments of one meter provider."""

    def __init__(self, meter_provider: Any) -> None:
        meter = meter_provider.get_meter("tinker", __version__)
        self._requests = meter.create_counter(
            "tinker.client.requests", unit="{request}", description="HTTP requests sent"
        )
        self._duration = meter.create_histogram(
            "tinker.client.request.duration",
            unit="s",
            description="Time from sending a request to its whole answer",
            explicit_bucket_boundaries_advisory=list(LATENCY_BUCKETS),
        )
        self._sent = meter.create_counter(
            "tinker.client.sent", unit="By", description="Request body bytes sent"
        )
        self._received = meter.create_counter(
            "tinker.client.received", unit="By", description="Response body bytes received"
        )
        self._retries = meter.create_counter(
            "tinker.client.retries", unit="{retry}", description="Failed attempts tried again"
        )
        self._queue_states = meter.create_counter(
            "tinker.client.queue_states",
            unit="{poll}",
            description="Queue states reported by polls of pending requests",
        )

    @classmethod
    def from_global_provider(cls) -> OpenTelemetrySink:
        """Instruments on the process's meter provider (`opentelemetry.metrics`' global)."""
        from opentelemetry import metrics

        return cls(metrics.get_meter_provider())

    def request(
        self, endpoint: str, outcome: str, seconds: float, sent: int, received: int
    ) -> None:
        """One attempt of a request to `endpoint`."""
        where = {"endpoint": endpoint}
        self._requests.add(1, {"endpoint": endpoint, "outcome": outcome})
        self._duration.record(seconds, where)
        if sent:
            self._sent.add(sent, where)
        if received:
            self._received.add(received, where)

    def retry(self, cause: str) -> None:
        """A failed attempt tried again, for `cause`."""
        self._retries.add(1, {"cause": cause})

    def queue_state(self, state: str) -> None:
        """A poll reported a queue in `state`."""
        self._queue_states.add(1, {"state": state})
