"""Prompt prefill with a prefix cache: keys/values and logits of prompt prefixes seen before.

A prompt is always prefilled in blocks of PREFILL_BLOCK tokens starting at position 0, so the
arithmetic for a block is the same whether the blocks before it were computed now or restored
from the cache: a cache hit gives results bit-identical to a cold prefill. After a prefill, the
longest block-aligned prefix of the prompt is stored (its keys, values and logits), keyed by the
sampler's weights key and the prefix's tokens; every shorter block-aligned prefix of it is
findable too. Entries are evicted least recently used first once the cache holds more than its
byte budget. A lookup takes the longest stored prefix of the new prompt; the number of prompt
tokens it covers is the request's `prompt_cache_hit_tokens`.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from tinker.local.compute.transformer import KVCache, Transformer

Array = npt.NDArray[Any]

#: Prompt tokens per prefill step; also the granularity of cached prefixes.
PREFILL_BLOCK = 32
#: Default byte budget of a cache of one sampler's own (keys, values and logits of all entries).
DEFAULT_CACHE_BYTES = 16 << 20


@attrs.frozen
class Prefill:
    """A prefilled prompt: its KV cache (batch 1), logits at every prompt position (T, V),
    and how many leading prompt tokens came from the prefix cache."""

    kv: KVCache
    logits: Array
    hit_tokens: int


@attrs.frozen
class _Entry:
    tokens: Array
    keys: tuple[Array, ...]
    values: tuple[Array, ...]
    logits: Array
    aliases: tuple[Hashable, ...]

    @property
    def nbytes(self) -> int:
        arrays = (*self.keys, *self.values, self.logits, self.tokens)
        return sum(a.nbytes for a in arrays)


def _prefix_keys(weights_key: Hashable, tokens: Array, block: int) -> list[Hashable]:
    """Key of every block-aligned prefix (lengths block, 2 block, ...), shortest first."""
    digest = hashlib.blake2b(digest_size=16)
    keys: list[Hashable] = []
    data = np.ascontiguousarray(tokens, dtype="<i8")
    for stop in range(block, len(data) + 1, block):
        digest.update(data[stop - block : stop].tobytes())
        keys.append((weights_key, stop, digest.copy().digest()))
    return keys


class PrefixCache:
    """Bounded LRU of prompt prefixes (module docstring); thread-safe."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES, block: int = PREFILL_BLOCK) -> None:
        self.max_bytes = max_bytes
        self.block = block
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._index: dict[Hashable, Hashable] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Bytes held by the cached entries."""
        with self._lock:
            return self._bytes

    def lookup(self, weights_key: Hashable, tokens: Array) -> tuple[int, _Entry | None]:
        """(length, entry) of the longest cached block-aligned prefix of `tokens`."""
        keys = _prefix_keys(weights_key, tokens, self.block)
        with self._lock:
            for key in reversed(keys):
                owner = self._index.get(key)
                if owner is None:
                    continue
                entry = self._entries[owner]
                length = key[1]  # type: ignore[index]
                if np.array_equal(entry.tokens[:length], tokens[:length]):
                    self._entries.move_to_end(owner)
                    return length, entry
        return 0, None

    def store(self, weights_key: Hashable, tokens: Array, kv: KVCache, logits: Array) -> None:
        """Keep the longest block-aligned prefix of a prefilled prompt (kv batch row 0)."""
        keys = _prefix_keys(weights_key, tokens, self.block)
        if not keys:
            return
        length = len(keys) * self.block
        entry = _Entry(
            _frozen(tokens[:length]),
            tuple(_frozen(k[0, :, :length]) for k in kv.keys),
            tuple(_frozen(v[0, :, :length]) for v in kv.values),
            _frozen(logits[:length]),
            tuple(keys),
        )
        if entry.nbytes > self.max_bytes:
            return
        with self._lock:
            if keys[-1] in self._entries:
                self._entries.move_to_end(keys[-1])
                return
            self._entries[keys[-1]] = entry
            self._bytes += entry.nbytes
            for alias in keys:
                self._index[alias] = keys[-1]
            while self._bytes > self.max_bytes:
                self._evict()

    def _evict(self) -> None:
        key, entry = self._entries.popitem(last=False)
        self._bytes -= entry.nbytes
        for alias in entry.aliases:
            if self._index.get(alias) == key:
                del self._index[alias]


def _frozen(array: Array) -> Array:
    copy = np.array(array)
    copy.flags.writeable = False
    return copy


def prefill(
    network: Transformer,
    tokens: Array,
    capacity: int,
    cache: PrefixCache | None,
    weights_key: Hashable,
) -> Prefill:
    """Prefill `tokens` block by block into a KV cache of `capacity`, reusing and then
    updating the longest cached prefix."""
    config = network.config
    kv = KVCache(config, 1, capacity, network.dtype)
    logits = np.empty((len(tokens), config.vocab_size), dtype=network.dtype)
    block = cache.block if cache is not None else PREFILL_BLOCK
    hit, entry = (0, None) if cache is None else cache.lookup(weights_key, tokens)
    if entry is not None:
        for layer in range(config.n_layers):
            kv.keys[layer][0, :, :hit] = entry.keys[layer][:, :hit]
            kv.values[layer][0, :, :hit] = entry.values[layer][:, :hit]
        logits[:hit] = entry.logits[:hit]
        kv.length = hit
    for start in range(hit, len(tokens), block):
        stop = min(start + block, len(tokens))
        logits[start:stop] = network.forward(tokens[None, start:stop], cache=kv)[0]
    if cache is not None and len(tokens) - hit >= block:
        cache.store(weights_key, tokens, kv, logits)
    return Prefill(kv, logits, hit)
