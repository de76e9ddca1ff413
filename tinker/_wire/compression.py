"""zstd for `Content-Encoding: zstd` bodies, with decompression bounded in size.

Uses the standard library's `compression.zstd` (Python 3.14+) or its backport
`backports.zstd` (same API), imported on first use. Decompression stops as soon as the
output would exceed `max_output_size`, so a small hostile body cannot expand into a large
allocation; concatenated frames are accepted, as zstd streams allow.
"""

from __future__ import annotations

import sys
from types import ModuleType

__all__ = [
    "DEFAULT_LEVEL",
    "DecompressedSizeError",
    "DecompressionError",
    "compress",
    "decompress",
]

DEFAULT_LEVEL = 3  # zstd's own default level

BytesLike = bytes | bytearray | memoryview


class DecompressionError(ValueError):
    """A body that is not valid zstd (corrupt, truncated, or empty)."""


class DecompressedSizeError(DecompressionError):
    """A zstd body that expands past the allowed size."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"zstd body expands to more than {limit} bytes (the limit)")
        self.limit = limit

    def __reduce__(self) -> tuple[type[DecompressedSizeError], tuple[int]]:
        return type(self), (self.limit,)


def _zstd() -> ModuleType:
    if sys.version_info >= (3, 14):
        from compression import zstd
    else:
        from backports import zstd
    return zstd


def compress(data: BytesLike, *, level: int = DEFAULT_LEVEL) -> bytes:
    """`data` as one zstd frame (with its content size in the header)."""
    result: bytes = _zstd().compress(data, level)
    return result


def decompress(data: BytesLike, *, max_output_size: int) -> bytes:
    """The content of one or more zstd frames; DecompressedSizeError when it would exceed
    `max_output_size` bytes, DecompressionError when `data` is not valid zstd."""
    if max_output_size < 0:
        raise ValueError(f"max_output_size must be >= 0, got {max_output_size}")
    zstd = _zstd()
    remaining = memoryview(data).cast("B")
    if not remaining:
        raise DecompressionError("empty body: no zstd frame")
    out: list[bytes] = []
    size = 0
    while remaining:
        decompressor = zstd.ZstdDecompressor()
        try:
            # One byte more than allowed tells "exactly at the limit" from "past it".
            chunk = decompressor.decompress(remaining, max_length=max_output_size - size + 1)
        except zstd.ZstdError as exc:
            raise DecompressionError(f"invalid zstd data: {exc}") from None
        size += len(chunk)
        if size > max_output_size:
            raise DecompressedSizeError(max_output_size)
        if not decompressor.eof:
            raise DecompressionError("truncated zstd frame (the body ends inside it)")
        out.append(chunk)
        remaining = memoryview(decompressor.unused_data)
    return b"".join(out)
