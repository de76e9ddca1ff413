"""zstd bodies: round trips, several frames, and decompression bounded by max_output_size."""

from __future__ import annotations

import pickle

import pytest

from tinker._wire import compression


def test_round_trip_and_a_frame_with_its_content_size() -> None:
    body = bytes(range(256)) * 100
    packed = compression.compress(body)
    assert packed[:4] == b"\x28\xb5\x2f\xfd"  # the zstd frame magic number
    assert len(packed) < len(body)
    assert compression.decompress(packed, max_output_size=len(body)) == body


def test_concatenated_frames_are_one_body() -> None:
    packed = compression.compress(b"abc") + compression.compress(b"defg")
    assert compression.decompress(packed, max_output_size=7) == b"abcdefg"


def test_an_empty_payload_is_a_valid_frame() -> None:
    assert compression.decompress(compression.compress(b""), max_output_size=0) == b""


@pytest.mark.parametrize("limit", [0, 1 << 20])
def test_a_zip_bomb_stops_at_the_limit(limit: int) -> None:
    bomb = compression.compress(bytes(64 << 20))  # 64 MiB of zeros in a few KiB
    assert len(bomb) < 16 << 10
    with pytest.raises(compression.DecompressedSizeError, match=f"more than {limit} bytes"):
        compression.decompress(bomb, max_output_size=limit)


def test_the_limit_counts_every_frame() -> None:
    packed = compression.compress(b"x" * 10) * 3
    assert len(compression.decompress(packed, max_output_size=30)) == 30
    with pytest.raises(compression.DecompressedSizeError):
        compression.decompress(packed, max_output_size=29)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty body"),
        (b"not zstd at all", "invalid zstd data"),
        (compression.compress(b"hello world" * 50)[:-4], "truncated zstd frame"),
        (compression.compress(b"hello") + b"trailing", "invalid zstd data"),
    ],
    ids=["empty", "garbage", "truncated", "trailing bytes"],
)
def test_invalid_bodies_are_decompression_errors(body: bytes, message: str) -> None:
    with pytest.raises(compression.DecompressionError, match=message) as raised:
        compression.decompress(body, max_output_size=1 << 20)
    assert isinstance(raised.value, ValueError)
    assert not isinstance(raised.value, compression.DecompressedSizeError)


def test_size_error_pickles() -> None:
    error = pickle.loads(pickle.dumps(compression.DecompressedSizeError(5)))
    assert (error.limit, str(error)) == (5, "zstd body expands to more than 5 bytes (the limit)")


def test_a_negative_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="max_output_size must be >= 0"):
        compression.decompress(compression.compress(b"x"), max_output_size=-1)
