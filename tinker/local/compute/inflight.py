"""In-flight sampling: samplers that follow a training run's weights instead of a snapshot.

Each training run that publishes in-flight weights has one `InflightTarget`, a mutable slot
holding the newest `SamplerWeights` and a version number. The server decides when to publish
(on every `save_weights_for_sampler(kind="inflight")`, in the run's training order, so a
client created by that save samples from weights at least as new as it). An
`InflightSampler` reads the target when each request starts and samples from whatever it
holds then; later publishes move every in-flight sampler of the run at once. Each sampler has
its own namespace in the prefix cache (a fresh KV namespace per sampling session), keyed by the
weights version, so a publish never serves a stale prefix and never clears the cache.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from tinker.local.compute.generation import LoraSampler, SampleResult, SamplerWeights
from tinker.local.compute.prefix_cache import PrefixCache


class InflightTarget:
    """The newest published weights of one training run (thread-safe)."""

    def __init__(self, weights: SamplerWeights) -> None:
        self._lock = threading.Lock()
        self._version = 0
        self._weights = weights

    def publish(self, weights: SamplerWeights) -> int:
        """Make `weights` what every in-flight sampler reads next; returns the new version."""
        with self._lock:
            self._version += 1
            self._weights = weights
            return self._version

    def current(self) -> tuple[int, SamplerWeights]:
        """(version, weights) as of now."""
        with self._lock:
            return self._version, self._weights


class InflightSampler:
    """A Sampler over an InflightTarget: each request uses the weights current when it starts."""

    def __init__(
        self,
        target: InflightTarget,
        *,
        dtype: npt.DTypeLike = np.float32,
        prefix_cache: PrefixCache | None = None,
    ) -> None:
        self._target = target
        self._dtype = np.dtype(dtype)
        self._cache = prefix_cache if prefix_cache is not None else PrefixCache()
        self._namespace = object()
        self._lock = threading.Lock()
        self._sampler: LoraSampler | None = None
        self._version = -1

    @property
    def version(self) -> int:
        """The weights version of the most recent request (-1 before the first)."""
        with self._lock:
            return self._version

    def _sampler_now(self) -> LoraSampler:
        version, weights = self._target.current()
        with self._lock:
            if self._sampler is None or version != self._version:
                self._sampler = LoraSampler(
                    weights,
                    dtype=self._dtype,
                    prefix_cache=self._cache,
                    weights_key=(self._namespace, version),
                )
                self._version = version
            return self._sampler

    def sample(self, prompt: Sequence[int], **options: Any) -> SampleResult:
        """LoraSampler.sample on the target's current weights (same options)."""
        return self._sampler_now().sample(prompt, **options)
