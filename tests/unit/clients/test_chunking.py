"""Chunk packing limits and the per-suffix metric reducers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinker._chunking import (
    LEGACY_CHUNK_LIMITS,
    MAX_CHUNK_LEN,
    MAX_CHUNK_NUMBER_COUNT,
    chunk_data,
    chunk_limits,
    datum_byte_estimate,
    datum_number_count,
    merge_metrics,
    merge_outputs,
)


@dataclass
class _Input:
    length: int


@dataclass
class _Tensor:
    data: list[float]
    dtype: str = "float32"


@dataclass
class _Datum:
    model_input: _Input
    loss_fn_inputs: dict[str, _Tensor] = field(default_factory=dict)


@dataclass
class _Output:
    loss_fn_output_type: str
    loss_fn_outputs: list[Any]
    metrics: Mapping[str, float]


def _datum(tokens: int, targets: int = 0, weights: int = 0) -> _Datum:
    inputs = {}
    if targets:
        inputs["target_tokens"] = _Tensor([0.0] * targets, "int64")
    if weights:
        inputs["weights"] = _Tensor([1.0] * weights)
    return _Datum(_Input(tokens), inputs)


def test_number_count_is_tokens_plus_every_input_element() -> None:
    assert datum_number_count(_datum(5, targets=5, weights=5)) == 15
    assert datum_number_count(_datum(7)) == 7


def test_130_datums_make_128_plus_2() -> None:
    data = [_datum(3, 3, 3) for _ in range(130)]
    chunks = chunk_data(data)
    assert [len(c) for c in chunks] == [128, 2]
    assert [d for c in chunks for d in c] == data
    assert all(a is b for a, b in zip([d for c in chunks for d in c], data, strict=True))


def test_number_limit_is_inclusive_and_greedy() -> None:
    half = MAX_CHUNK_NUMBER_COUNT // 2
    # two halves fit exactly; the third opens a new chunk
    chunks = chunk_data([_datum(half), _datum(half), _datum(1)])
    assert [len(c) for c in chunks] == [2, 1]
    chunks = chunk_data([_datum(half), _datum(half + 1), _datum(1)])
    assert [len(c) for c in chunks] == [1, 2]


def test_oversized_datum_gets_its_own_chunk() -> None:
    big = _datum(MAX_CHUNK_NUMBER_COUNT + 10)
    chunks = chunk_data([_datum(1), big, _datum(1)])
    assert [len(c) for c in chunks] == [1, 1, 1]
    assert chunks[1][0] is big


def test_empty_batch_has_no_chunks() -> None:
    assert chunk_data([]) == []
    assert MAX_CHUNK_LEN == 128


def test_reducers() -> None:
    chunks = [
        {"a:sum": 1.0, "b:mean": 2.0, "c:min": 3.0, "d:max": 3.0, "e:slack": 1.0, "f:unique": 7.0},
        {"a:sum": 2.0, "b:mean": 5.0, "c:min": -1.0, "d:max": 9.0, "e:slack": 4.0, "f:unique": 8.0},
        {"a:sum": 4.0, "b:mean": 8.0, "c:min": 0.0, "d:max": 0.0, "e:slack": 4.0, "f:unique": 9.0},
    ]
    merged = merge_metrics(chunks, [2, 1, 1])
    assert merged["a:sum"] == 7.0
    assert merged["b:mean"] == pytest.approx((2 * 2 + 5 + 8) / 4)
    assert merged["c:min"] == -1.0
    assert merged["d:max"] == 9.0
    assert merged["e:slack"] == pytest.approx(4.0 - (2 * 1 + 4 + 4) / 4)
    assert merged["f:unique"] == 7.0
    assert merged["f:unique_1"] == 8.0
    assert merged["f:unique_2"] == 9.0
    assert "f:unique_3" not in merged


def test_hash_unordered_ignores_order_but_not_values() -> None:
    a = merge_metrics([{"h:hash_unordered": 1.0}, {"h:hash_unordered": 2.0}], [1, 1])
    b = merge_metrics([{"h:hash_unordered": 2.0}, {"h:hash_unordered": 1.0}], [1, 1])
    c = merge_metrics([{"h:hash_unordered": 2.0}, {"h:hash_unordered": 3.0}], [1, 1])
    assert a == b
    assert a != c
    assert isinstance(a["h:hash_unordered"], float)


def test_single_chunk_still_goes_through_the_merge() -> None:
    assert merge_metrics([{"loss:sum": 3.5, "x:weird": 1.0}], [4]) == {"loss:sum": 3.5}
    with pytest.raises(ValueError, match=r"'loss'.*exactly one ':'"):
        merge_metrics([{"loss": 3.5}], [4])


@pytest.mark.parametrize("key", ["loss", "a:b:sum", ""])
def test_key_without_exactly_one_colon_is_a_clear_error(key: str) -> None:
    with pytest.raises(ValueError, match="exactly one ':'"):
        merge_metrics([{key: 1.0}, {key: 2.0}], [1, 1])


def test_missing_and_unknown_keys_are_dropped() -> None:
    merged = merge_metrics([{"a:sum": 1.0, "b:sum": 1.0, "c:median": 1.0}, {"a:sum": 1.0}], [1, 1])
    assert merged == {"a:sum": 2.0}


def test_mean_with_zero_outputs_falls_back_to_plain_mean() -> None:
    assert merge_metrics([{"m:mean": 1.0}, {"m:mean": 3.0}], [0, 0]) == {"m:mean": 2.0}


def test_merge_outputs_concatenates_in_order_and_takes_first_type() -> None:
    outputs = [
        _Output("CE", ["o1", "o2"], {"loss:sum": 1.0, "l:mean": 1.0}),
        _Output("other", ["o3"], {"loss:sum": 2.0, "l:mean": 4.0}),
    ]
    kind, merged, metrics = merge_outputs(outputs)
    assert kind == "CE"
    assert merged == ["o1", "o2", "o3"]
    assert metrics == {"loss:sum": 3.0, "l:mean": pytest.approx(2.0)}
    assert merge_outputs([]) == ("", [], {})


@given(
    st.lists(st.integers(min_value=1, max_value=400), max_size=300),
    st.integers(min_value=1, max_value=40),
    st.integers(min_value=1, max_value=1000),
)
@settings(max_examples=200, deadline=None)
def test_packing_is_ordered_within_limits_and_greedy(
    sizes: list[int], max_len: int, max_numbers: int
) -> None:
    data = [_datum(size) for size in sizes]
    chunks = chunk_data(data, max_len=max_len, max_numbers=max_numbers)
    assert [d for chunk in chunks for d in chunk] == data
    for index, chunk in enumerate(chunks):
        numbers = sum(datum_number_count(d) for d in chunk)
        assert 1 <= len(chunk) <= max_len
        assert numbers <= max_numbers or len(chunk) == 1
        if index + 1 < len(chunks):  # greedy: the next datum did not fit
            following = datum_number_count(chunks[index + 1][0])
            assert len(chunk) == max_len or numbers + following > max_numbers


def test_the_0_38_limits_count_estimated_protobuf_bytes() -> None:
    # 10 tokens at 4 bytes, 10 int64 targets at 8, 10 float32 weights at 4.
    assert datum_byte_estimate(_datum(10, targets=10, weights=10)) == 160
    limits = chunk_limits("0.38", 1024, 320)
    batch = [_datum(10, targets=10, weights=10)] * 5
    assert [len(c) for c in chunk_data(batch, limits=limits)] == [2, 2, 1]
    by_count = chunk_limits("0.38", 3, 10**9)
    assert [len(c) for c in chunk_data(batch, limits=by_count)] == [3, 2]
    assert chunk_limits("0.5.1", 3, 10) is LEGACY_CHUNK_LIMITS
