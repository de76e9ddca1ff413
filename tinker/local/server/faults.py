"""Fault injection for reliability tests: seeded random 5xx, 429, 402, 408, dropped
connections, stalls, latency.

Off by default. Rules are per endpoint family (session, train, sample, poll, rest, telemetry);
the `*` rule covers every family except telemetry, which is only faulted when named. Only
answers a client of the request's protocol era is specified to survive are injected:
* 408 only on retrieve_future (where it means "still pending");
* 429 on every endpoint, except the polls of 0.5.1 clients (to which a 429 poll is fatal),
  unless `rate_limit_all_polls` says the clients retry them (this SDK does);
* 402 (billing paused) only into requests of 0.38 clients, and not on the calls 0.38 does not
  pause on (create_session, create_model, create_sampling_session, heartbeats, telemetry and
  the token exchange, which retry at the transport level only or not at all).
A request counts as 0.38 when it shows it (server.http Request.from_038_client).

A billing pause simulates an account whose billing lapsed for a while: until it ends, every
request a 0.38 client would pause on answers 402 (`pause_billing(seconds)`, or
`billing_paused=<seconds>` in a spec, counted from the start).

Spec strings (CLI `--faults`): `train.5xx=0.2,sample.429=0.1,poll.408=0.5,*.latency=0.01,seed=7`
with kinds 5xx, 429, 402, 408, drop (before the request is handled), drop_response (after it
was handled, so the client must retry an operation that already ran), stall (the server is
silent for `stall_seconds`, default 5, then handles the request: a client that timed out
retries an operation that may run late) and latency (seconds); `rate_limit_all_polls=1` lets
429s fall on the polls of 0.5.1 clients too.
"""

from __future__ import annotations

import collections
import random
import threading
import time
from collections.abc import Callable, Mapping

import attrs

FAMILIES = ("session", "train", "sample", "poll", "rest", "telemetry")
_KINDS = {
    "5xx": "error_5xx",
    "429": "rate_limit_429",
    "402": "payment_402",
    "408": "timeout_408",
    "drop": "drop",
    "drop_response": "drop_response",
    "stall": "stall",
    "stall_seconds": "stall_seconds",
    "latency": "latency",
}
_DURATIONS = frozenset({"latency", "stall_seconds"})


def _probability(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if attribute.name not in _DURATIONS and not 0.0 <= value <= 1.0:
        raise ValueError(f"fault rate {attribute.name} must be within [0, 1], got {value}")
    if value < 0:
        raise ValueError(f"fault {attribute.name} must not be negative, got {value}")


@attrs.frozen
class FaultRule:
    """Probabilities of each fault (and a fixed added latency in seconds) for one family."""

    error_5xx: float = attrs.field(default=0.0, validator=_probability)
    rate_limit_429: float = attrs.field(default=0.0, validator=_probability)
    payment_402: float = attrs.field(default=0.0, validator=_probability)
    timeout_408: float = attrs.field(default=0.0, validator=_probability)
    drop: float = attrs.field(default=0.0, validator=_probability)
    drop_response: float = attrs.field(default=0.0, validator=_probability)
    stall: float = attrs.field(default=0.0, validator=_probability)
    stall_seconds: float = attrs.field(default=5.0, validator=_probability)
    latency: float = attrs.field(default=0.0, validator=_probability)


@attrs.frozen
class FaultDecision:
    """What to do to one request."""

    status: int | None = None
    drop_before: bool = False
    drop_after: bool = False
    delay: float = 0.0
    stalled: bool = False


NO_FAULT = FaultDecision()
# Polls: a 429 there is fatal to 0.5.1 clients.
_POLLS = frozenset({"retrieve_future"})
# Calls that 0.38 clients do not pause on when billing is paused (no 5-minute retry layer).
_NO_BILLING_PAUSE = frozenset(
    {
        "create_session",
        "create_model",
        "create_sampling_session",
        "session_heartbeat",
        "telemetry",
        "auth_token",
    }
)


def _never() -> bool:
    return False


class Faults:
    """Seeded fault injector shared by the request threads (decisions are taken under a lock)."""

    def __init__(
        self,
        rules: Mapping[str, FaultRule],
        *,
        seed: int | None = 0,
        clock: Callable[[], float] = time.monotonic,
        rate_limit_all_polls: bool = False,
    ) -> None:
        unknown = set(rules) - {*FAMILIES, "*"}
        if unknown:
            raise ValueError(f"unknown fault families {sorted(unknown)}; known: {FAMILIES}")
        self._rules = dict(rules)
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._clock = clock
        self._billing_paused_until = 0.0
        self._rate_limit_all_polls = rate_limit_all_polls
        self.injected: collections.Counter[str] = collections.Counter()

    def pause_billing(self, seconds: float) -> None:
        """From now on for `seconds`, answer 402 to every request of a 0.38 client that it
        pauses on (0 ends a pause)."""
        if not seconds >= 0:
            raise ValueError(f"a billing pause lasts 0 seconds or more, got {seconds}")
        with self._lock:
            self._billing_paused_until = self._clock() + seconds

    @classmethod
    def parse(cls, spec: str) -> Faults:
        """Build from `family.kind=value,...` and an optional `seed=N`; ValueError if malformed."""
        fields: dict[str, dict[str, float]] = collections.defaultdict(dict)
        seed = 0
        paused = 0.0
        all_polls = False
        for item in filter(None, (part.strip() for part in spec.split(","))):
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"fault spec item {item!r} must look like family.kind=value")
            if key == "seed":
                seed = int(value)
                continue
            if key == "billing_paused":
                paused = float(value)
                continue
            if key == "rate_limit_all_polls":
                all_polls = value.strip().lower() in ("1", "true", "yes")
                continue
            family, dot, kind = key.partition(".")
            if not dot or kind not in _KINDS:
                raise ValueError(
                    f"fault spec key {key!r} must be <family>.<kind> with kind in {sorted(_KINDS)}"
                )
            fields[family][_KINDS[kind]] = float(value)
        rules = {family: FaultRule(**values) for family, values in fields.items()}
        faults = cls(rules, seed=seed, rate_limit_all_polls=all_polls)
        if paused:
            faults.pause_billing(paused)
        return faults

    def decide(
        self, family: str, endpoint: str, from_038_client: Callable[[], bool] = _never
    ) -> FaultDecision:
        """Draw the faults for one request to `endpoint` of `family`; `from_038_client` tells
        whether the request comes from a 0.38 client (asked only when it matters)."""
        with self._lock:
            paused = self._clock() < self._billing_paused_until
        if paused and endpoint not in _NO_BILLING_PAUSE and from_038_client():
            decision = FaultDecision(status=402)
            self._count(family, decision)
            return decision
        rule = self._rules.get(family) or (self._rules.get("*") if family != "telemetry" else None)
        if rule is None:
            return NO_FAULT
        with self._lock:  # a seventh draw only when stalls are on: seeded runs stay as they were
            draws = [self._random.random() for _ in range(7 if rule.stall else 6)]
        status = None
        retried_poll = endpoint not in _POLLS or self._rate_limit_all_polls or from_038_client()
        if draws[0] < rule.rate_limit_429 and retried_poll:
            status = 429
        elif endpoint == "retrieve_future" and draws[1] < rule.timeout_408:
            status = 408
        elif (
            draws[5] < rule.payment_402 and endpoint not in _NO_BILLING_PAUSE and from_038_client()
        ):
            status = 402
        elif draws[2] < rule.error_5xx:
            status = 503
        drop_before = status is None and draws[3] < rule.drop
        drop_after = status is None and draws[4] < rule.drop_response
        answered = status is None and not drop_before and not drop_after
        stalled = answered and rule.stall > 0 and draws[6] < rule.stall
        decision = FaultDecision(
            status=status,
            drop_before=drop_before,
            drop_after=drop_after,
            delay=rule.latency + (rule.stall_seconds if stalled else 0.0),
            stalled=stalled,
        )
        self._count(family, decision)
        return decision

    def _count(self, family: str, decision: FaultDecision) -> None:
        with self._lock:
            if decision.status is not None:
                self.injected[f"{family}.{decision.status}"] += 1
            if decision.drop_before:
                self.injected[f"{family}.drop"] += 1
            if decision.drop_after:
                self.injected[f"{family}.drop_response"] += 1
            if decision.stalled:
                self.injected[f"{family}.stall"] += 1
