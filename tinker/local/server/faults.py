"""Fault injection for reliability tests: seeded random 5xx, 429, 408, dropped connections, latency.

Off by default. Rules are per endpoint family (session, train, sample, poll, rest, telemetry);
the `*` rule covers every family except telemetry, which is only faulted when named. 429 is
only injected on asample (where the service uses it for back-pressure), 408 only on
retrieve_future (where it means "still pending").

Spec strings (CLI `--faults`): `train.5xx=0.2,sample.429=0.1,poll.408=0.5,*.latency=0.01,seed=7`
with kinds 5xx, 429, 408, drop (before the request is handled), drop_response (after it was
handled, so the client must retry an operation that already ran) and latency (seconds).
"""

from __future__ import annotations

import collections
import random
import threading
from collections.abc import Mapping

import attrs

FAMILIES = ("session", "train", "sample", "poll", "rest", "telemetry")
_KINDS = {
    "5xx": "error_5xx",
    "429": "rate_limit_429",
    "408": "timeout_408",
    "drop": "drop",
    "drop_response": "drop_response",
    "latency": "latency",
}


def _probability(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if attribute.name != "latency" and not 0.0 <= value <= 1.0:
        raise ValueError(f"fault rate {attribute.name} must be within [0, 1], got {value}")
    if value < 0:
        raise ValueError(f"fault {attribute.name} must not be negative, got {value}")


@attrs.frozen
class FaultRule:
    """Probabilities of each fault (and a fixed added latency in seconds) for one family."""

    error_5xx: float = attrs.field(default=0.0, validator=_probability)
    rate_limit_429: float = attrs.field(default=0.0, validator=_probability)
    timeout_408: float = attrs.field(default=0.0, validator=_probability)
    drop: float = attrs.field(default=0.0, validator=_probability)
    drop_response: float = attrs.field(default=0.0, validator=_probability)
    latency: float = attrs.field(default=0.0, validator=_probability)


@attrs.frozen
class FaultDecision:
    """What to do to one request."""

    status: int | None = None
    drop_before: bool = False
    drop_after: bool = False
    delay: float = 0.0


NO_FAULT = FaultDecision()


class Faults:
    """Seeded fault injector shared by the request threads (decisions are taken under a lock)."""

    def __init__(self, rules: Mapping[str, FaultRule], *, seed: int | None = 0) -> None:
        unknown = set(rules) - {*FAMILIES, "*"}
        if unknown:
            raise ValueError(f"unknown fault families {sorted(unknown)}; known: {FAMILIES}")
        self._rules = dict(rules)
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.injected: collections.Counter[str] = collections.Counter()

    @classmethod
    def parse(cls, spec: str) -> Faults:
        """Build from `family.kind=value,...` and an optional `seed=N`; ValueError if malformed."""
        fields: dict[str, dict[str, float]] = collections.defaultdict(dict)
        seed = 0
        for item in filter(None, (part.strip() for part in spec.split(","))):
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"fault spec item {item!r} must look like family.kind=value")
            if key == "seed":
                seed = int(value)
                continue
            family, dot, kind = key.partition(".")
            if not dot or kind not in _KINDS:
                raise ValueError(
                    f"fault spec key {key!r} must be <family>.<kind> with kind in {sorted(_KINDS)}"
                )
            fields[family][_KINDS[kind]] = float(value)
        return cls({family: FaultRule(**values) for family, values in fields.items()}, seed=seed)

    def decide(self, family: str, endpoint: str) -> FaultDecision:
        """Draw the faults for one request to `endpoint` of `family`."""
        rule = self._rules.get(family) or (self._rules.get("*") if family != "telemetry" else None)
        if rule is None:
            return NO_FAULT
        with self._lock:
            draws = [self._random.random() for _ in range(5)]
        status = None
        if endpoint == "asample" and draws[0] < rule.rate_limit_429:
            status = 429
        elif endpoint == "retrieve_future" and draws[1] < rule.timeout_408:
            status = 408
        elif draws[2] < rule.error_5xx:
            status = 503
        decision = FaultDecision(
            status=status,
            drop_before=status is None and draws[3] < rule.drop,
            drop_after=status is None and draws[4] < rule.drop_response,
            delay=rule.latency,
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
