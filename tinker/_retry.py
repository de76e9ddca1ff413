"""Retry policies as values: which failures retry, how long to wait, and when to give up.

Three layers (PROTOCOL.md section 10): the transport layer (a bounded number of attempts of one
HTTP call, honouring Retry-After), the submit layer (a wall-clock deadline around a whole call)
and the sample-level `RetryConfig` (no attempt cap, a progress timeout instead). Everything here
is pure: clocks, sleeps and random numbers are passed in, so tests drive them.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
from collections.abc import Callable, Mapping
from typing import TypeVar

import attrs

from tinker.errors import APIConnectionError, APIStatusError
from tinker.lib.retryable_exception import RetryableException

__all__ = [
    "NO_RETRY",
    "POLL_BACKOFF",
    "SAMPLE_SUBMIT",
    "SUBMIT",
    "SUBMIT_BACKOFF",
    "TRANSPORT",
    "TRANSPORT_BACKOFF",
    "Backoff",
    "RetryConfig",
    "RetryPolicy",
    "is_retryable_status",
    "retry_after_seconds",
    "run_with_deadline",
    "should_retry_response",
]

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Status codes that the transport and submit layers retry (plus every status >= 500).
RETRYABLE_STATUSES = frozenset({408, 409, 429})
# A server-provided Retry-After is used exactly when it lies in (0, MAX_RETRY_AFTER] seconds.
MAX_RETRY_AFTER = 60.0


@attrs.frozen
class Backoff:
    """Exponential backoff: `min(initial * 2**n, maximum)` with optional jitter.

    `jitter` is a fraction. One-sided jitter (the transport layer) only shortens the delay by up
    to that fraction; symmetric jitter (the sample layer) moves it either way and clamps the
    result to [0, maximum].
    """

    initial: float
    maximum: float
    jitter: float = 0.0
    symmetric: bool = False

    def nominal(self, n: int) -> float:
        """The delay before retry `n` (0-based) without jitter."""
        return min(self.initial * 2.0 ** min(n, 64), self.maximum)

    def delay(self, n: int, uniform: Callable[[], float] = random.random) -> float:
        """The delay before retry `n` (0-based), with jitter drawn from `uniform()` in [0, 1)."""
        base = self.nominal(n)
        if not self.jitter:
            return base
        if self.symmetric:
            return min(max(base + base * self.jitter * (2.0 * uniform() - 1.0), 0.0), self.maximum)
        return base * (1.0 - self.jitter * uniform())


TRANSPORT_BACKOFF = Backoff(initial=0.5, maximum=10.0, jitter=0.25)
SUBMIT_BACKOFF = Backoff(initial=1.0, maximum=30.0)
# Polling backs off on connection errors exactly like the submit layer: 1, 2, 4, ... 30 s.
POLL_BACKOFF = SUBMIT_BACKOFF


def is_retryable_status(status_code: int, *, retry_429: bool = True) -> bool:
    """408, 409, 429 (unless excluded) and every 5xx are worth another attempt."""
    if status_code == 429:
        return retry_429
    return status_code in RETRYABLE_STATUSES or status_code >= 500


def should_retry_response(status_code: int, headers: Mapping[str, str]) -> bool:
    """Transport-layer decision for an error response; `x-should-retry` overrides the status."""
    override = headers.get("x-should-retry")
    if override == "true":
        return True
    if override == "false":
        return False
    return is_retryable_status(status_code)


def retry_after_seconds(headers: Mapping[str, str], now: float) -> float | None:
    """The server's requested delay (`retry-after-ms`, else `retry-after`) if in (0, 60] s.

    `retry-after` may be seconds or an HTTP date; `now` is the wall-clock time (time.time()).
    """
    seconds: float | None = None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            seconds = float(raw_ms) / 1000.0
        except ValueError:
            seconds = None
    if seconds is None:
        raw = headers.get("retry-after")
        if raw is not None:
            try:
                seconds = float(raw)
            except ValueError:
                try:
                    seconds = email.utils.parsedate_to_datetime(raw).timestamp() - now
                except (TypeError, ValueError, IndexError, OverflowError):
                    seconds = None
    if seconds is not None and 0.0 < seconds <= MAX_RETRY_AFTER:
        return seconds
    return None


@attrs.frozen
class RetryPolicy:
    """How one call retries.

    `max_retries` bounds the transport layer (None: the client's `max_retries`, 10 by default).
    With `deadline_layer`, the whole call is retried on connection errors and 408/409/429/5xx
    (429 only if `retry_429`) with `min(2**a, 30)` s pauses until `deadline` seconds (None: the
    client's `submit_retry_seconds`, 300 by default) have passed since the first attempt.
    """

    max_retries: int | None = None
    deadline_layer: bool = False
    deadline: float | None = None
    retry_429: bool = True

    def is_retryable(self, exc: BaseException) -> bool:
        """Whether the deadline layer retries after `exc`."""
        if isinstance(exc, APIStatusError):
            return is_retryable_status(exc.status_code, retry_429=self.retry_429)
        return isinstance(exc, (APIConnectionError, TimeoutError))


# Transport retries only: create_session, create_model, create_sampling_session.
TRANSPORT = RetryPolicy()
# Transport retries inside the 5-minute layer: training submits, get_info, REST calls.
SUBMIT = RetryPolicy(deadline_layer=True)
# One attempt: heartbeats and polls.
NO_RETRY = RetryPolicy(max_retries=0)
# The asample submit: one attempt per try, 5-minute layer, 429 left to the sample limiter.
SAMPLE_SUBMIT = RetryPolicy(max_retries=0, deadline_layer=True, retry_429=False)


def run_with_deadline(
    attempt: Callable[[], T],
    *,
    deadline: float,
    is_retryable: Callable[[BaseException], bool],
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    what: str,
    on_failure: Callable[[BaseException, int, float, bool], None] | None = None,
) -> T:
    """Call `attempt` until it succeeds, fails for good, or `deadline` seconds have passed.

    Pauses `min(2**a, 30)` s between attempts, trimmed so that no pause ends past the deadline;
    after the deadline the last error is raised. Every retry logs a warning naming `what`;
    `on_failure(error, attempt_number, elapsed, will_retry)` hears of every failed attempt.
    """
    start = clock()
    retries = 0
    while True:
        try:
            return attempt()
        except Exception as exc:
            elapsed = clock() - start
            will_retry = is_retryable(exc) and elapsed < deadline
            if on_failure is not None:
                on_failure(exc, retries + 1, elapsed, will_retry)
            if not will_retry:
                raise
            delay = min(SUBMIT_BACKOFF.delay(retries), deadline - elapsed)
            logger.warning(
                "%s failed (%s: %s); retry %d in %.1fs (giving up %.0fs after the first attempt)",
                what,
                type(exc).__name__,
                exc,
                retries + 1,
                delay,
                deadline,
            )
            sleep(delay)
            retries += 1


def _default_retryable_exceptions() -> tuple[type[BaseException], ...]:
    kinds: list[type[BaseException]] = [asyncio.TimeoutError, TimeoutError]
    kinds += [APIConnectionError, RetryableException]
    return tuple(dict.fromkeys(kinds))  # the two TimeoutErrors are one class from 3.11


def _positive_int(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or value <= 0:
        raise ValueError(f"{attribute.name} must be an int > 0, got {value!r}")


def _non_negative(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


@attrs.frozen
class RetryConfig:
    """Sample-level retries: no attempt cap, a progress timeout instead (hashable value)."""

    max_connections: int = attrs.field(default=1000, validator=_positive_int)
    progress_timeout: float = attrs.field(default=1800.0, validator=_non_negative)
    retry_delay_base: float = attrs.field(default=0.5, validator=_non_negative)
    retry_delay_max: float = attrs.field(default=10.0, validator=_non_negative)
    jitter_factor: float = attrs.field(default=0.25, validator=_non_negative)
    enable_retry_logic: bool = True
    retryable_exceptions: tuple[type[BaseException], ...] = attrs.field(
        factory=_default_retryable_exceptions, converter=tuple
    )

    def backoff(self) -> Backoff:
        """The delay schedule: base * 2**(attempt-1), capped, with symmetric jitter."""
        return Backoff(
            initial=self.retry_delay_base,
            maximum=self.retry_delay_max,
            jitter=self.jitter_factor,
            symmetric=True,
        )

    def is_retryable(self, exc: BaseException) -> bool:
        """Retry the configured exception types and 408/409/429/5xx status errors."""
        if not self.enable_retry_logic:
            return False
        if isinstance(exc, APIStatusError):
            return is_retryable_status(exc.status_code)
        return isinstance(exc, self.retryable_exceptions)

    def stuck_error(self) -> APIConnectionError:
        """The error raised when no request made progress for `progress_timeout` seconds."""
        return APIConnectionError(
            f"No progress made in {float(self.progress_timeout)}s. Requests appear to be stuck."
        )
