"""Property tests: every message survives encode -> decode bit for bit, and re-encodes to the
same bytes. Float payloads are random bit patterns (NaN payloads and negative zero included)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from proto_support import assert_same

from tinker._wire import proto
from tinker._wire.proto import messages as m

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
UINT32 = st.integers(0, 2**32 - 1)
TEXT = st.text(max_size=6)
DOUBLE = st.floats(allow_nan=False) | st.just(-0.0)


def numbers(dtype: str, size: int) -> st.SearchStrategy[Any]:
    """A 1-D array of `dtype` with random bit patterns."""
    width = np.dtype(dtype).itemsize
    return st.binary(min_size=width * size, max_size=width * size).map(
        lambda raw: np.frombuffer(raw, dtype).copy()
    )


def sized(dtype: str, max_size: int = 6) -> st.SearchStrategy[Any]:
    return st.integers(0, max_size).flatmap(lambda n: numbers(dtype, n))


ELEMENT_TYPES = st.sampled_from([m.DType.FLOAT32, m.DType.INT64, m.DType.INT32, m.DType.BFLOAT16])


@st.composite
def shapes_of(draw: st.DrawFn, count: int) -> tuple[int, ...]:
    """A shape holding `count` values: none, 1-D, or 2-D."""
    kind = draw(st.sampled_from(["none", "flat", "rows"]))
    if kind == "none":
        return ()
    if kind == "flat" or count == 0:
        return (count,)
    divisors = [d for d in range(1, count + 1) if count % d == 0]
    rows = draw(st.sampled_from(divisors))
    return (rows, count // rows)


@st.composite
def csr(draw: st.DrawFn, dtype: m.DType) -> tuple[tuple[int, int], m.SparseCsr]:
    rows, cols = draw(st.integers(0, 4)), draw(st.integers(1, 5))
    mask = np.array(draw(st.lists(st.booleans(), min_size=rows * cols, max_size=rows * cols)))
    mask = mask.reshape(rows, cols)
    values = draw(numbers(m.wire_dtype(dtype).str, int(mask.sum())))
    crow = np.concatenate([[0], np.cumsum(mask.sum(axis=1))]).astype("<i8")
    return (rows, cols), m.SparseCsr(
        values=values, crow_indices=crow, col_indices=np.nonzero(mask)[1].astype("<i8")
    )


@st.composite
def tensors(draw: st.DrawFn) -> m.Tensor:
    dtype = draw(ELEMENT_TYPES)
    encoding = draw(st.sampled_from(["dense", "sparse", "none"]))
    if encoding == "sparse":
        shape, sparse = draw(csr(dtype))
        return m.Tensor(dtype=dtype, shape=shape, sparse_csr=sparse)
    if encoding == "none":
        return m.Tensor(dtype=dtype, shape=draw(st.sampled_from([(), (0,), (2, 0)])))
    dense = draw(sized(m.wire_dtype(dtype).str))
    return m.Tensor(dtype=dtype, shape=draw(shapes_of(dense.size)), dense=dense)


@st.composite
def batched(draw: st.DrawFn, datums: int) -> m.BatchedTensor:
    dtype = draw(ELEMENT_TYPES)
    element = m.wire_dtype(dtype)
    trailing = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    rows = draw(st.lists(st.integers(0, 3), min_size=datums, max_size=datums))
    row = math.prod(trailing)
    data = draw(numbers(element.str, sum(rows) * row))
    offsets = np.concatenate([[0], np.cumsum(rows) * row * element.itemsize]).astype("<i8")
    return m.BatchedTensor(data=data, offsets=offsets, dtype=dtype, trailing_shape=trailing)


@st.composite
def records(draw: st.DrawFn) -> m.ArrayRecord:
    datums = draw(st.integers(0, 4))
    fields = draw(st.dictionaries(TEXT, batched(datums), max_size=3))
    count = datums if not fields else draw(st.sampled_from([0, datums]))
    return m.ArrayRecord(fields=fields, num_datums=count, type_tag=draw(TEXT))


OUTPUTS = st.builds(
    m.ForwardBackwardOutput,
    loss_fn_outputs=st.lists(records(), max_size=3),
    metrics=st.dictionaries(TEXT, DOUBLE, max_size=3),
    loss_fn_output_type=TEXT,
)

TEXT_CHUNKS = st.builds(m.EncodedTextChunk, tokens=sized("<i4"))
DIMENSIONS = st.builds(m.ImageDimensions, width=UINT32, height=UINT32)
IMAGES = st.builds(
    m.ImageChunk,
    data=st.binary(max_size=8),
    format=TEXT,
    expected_tokens=st.none() | INT32,
    override_dimensions=st.none() | DIMENSIONS,
)
DMELS = st.builds(m.DmelChunk, dmel=st.binary(max_size=8))
CHUNKS = TEXT_CHUNKS | IMAGES | DMELS


def runs(cls: type[Any]) -> st.SearchStrategy[Any]:
    return st.builds(cls, sequence_id=TEXT, offset=INT64, length=INT64)


SPANS = runs(m.PromptProvenanceSpan) | runs(m.SampledProvenanceSpan)
DATUMS = st.builds(
    m.Datum,
    model_input=st.lists(CHUNKS, max_size=3),
    loss_fn_inputs=st.dictionaries(TEXT, tensors(), max_size=3),
    model_input_spans=st.lists(SPANS, max_size=2),
    loss_fn_input_spans=st.lists(SPANS, max_size=2),
)
REQUESTS = st.builds(
    m.ForwardBackwardRequest,
    model_id=TEXT,
    seq_id=INT32,
    data=st.lists(DATUMS, max_size=3),
    loss_fn=TEXT,
    loss_fn_config=st.dictionaries(TEXT, DOUBLE, max_size=3),
    forward_only=st.booleans(),
    loss_fn_config_v2=st.dictionaries(TEXT, st.none() | DOUBLE | TEXT, max_size=3),
)


@st.composite
def topks(draw: st.DrawFn) -> m.TopkLogprobs:
    k, length = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    return m.TopkLogprobs(
        token_ids=draw(numbers("<i4", k * length)),
        logprobs=draw(numbers("<f4", k * length)),
        k=k,
        length=length,
    )


SEQUENCES = st.builds(
    m.SampledSequence,
    tokens=sized("<i4"),
    stop_reason=st.sampled_from(list(m.StopReason)),
    logprobs=st.none() | sized("<f4"),
    topk_sampled_logprobs=st.none() | topks(),
)
ALT_TOKENS = st.builds(
    m.PromptAltTokens, tokens=st.none() | tensors(), logprobs=st.none() | tensors()
)
SAMPLES = st.builds(
    m.SampleResponse,
    sequences=st.lists(SEQUENCES, max_size=3),
    prompt_logprobs=st.none() | sized("<f4"),
    topk_prompt_logprobs=st.none() | topks(),
    prompt_cache_hit_tokens=INT32,
    target_prompt_logprobs=st.none() | tensors(),
    prompt_alt_tokens=st.none() | ALT_TOKENS,
)
FLOAT32 = st.floats(width=32, allow_nan=False)
PARAMS = st.builds(
    m.SamplingParams,
    max_tokens=st.none() | INT32,
    seed=st.none() | st.integers(0, 2**64 - 1),
    temperature=st.none() | FLOAT32,
    top_k=st.none() | INT32,
    top_p=st.none() | FLOAT32,
    stop=st.none()
    | st.builds(m.StopStrings, values=st.lists(TEXT, max_size=3))
    | st.builds(m.StopTokens, values=st.lists(INT32, max_size=3)),
)

EVERY_MESSAGE: dict[str, st.SearchStrategy[Any]] = {
    "ForwardBackwardRequest": REQUESTS,
    "Datum": DATUMS,
    "chunks": CHUNKS,
    "ImageDimensions": DIMENSIONS,
    "provenance spans": SPANS,
    "Tensor": tensors(),
    "BatchedTensor": st.integers(0, 3).flatmap(batched),
    "ArrayRecord": records(),
    "ForwardBackwardOutput": OUTPUTS,
    "SampleResponse": SAMPLES,
    "SampledSequence": SEQUENCES,
    "TopkLogprobs": topks(),
    "PromptAltTokens": ALT_TOKENS,
    "SamplingParams": PARAMS,
    "StopStrings": st.builds(m.StopStrings, values=st.lists(TEXT, max_size=3)),
    "StopTokens": st.builds(m.StopTokens, values=st.lists(INT32, max_size=3)),
}


@pytest.mark.parametrize("kind", sorted(EVERY_MESSAGE))
@SETTINGS
@given(data=st.data())
def test_every_message_round_trips_bit_for_bit(kind: str, data: st.DataObject) -> None:
    message = data.draw(EVERY_MESSAGE[kind])
    encoded = proto.encode(message)
    decoded = proto.decode(encoded, type(message))
    assert_same(decoded, message)
    assert proto.encode(decoded) == encoded


@SETTINGS
@given(REQUESTS)
def test_decoded_arrays_are_read_only_views(message: m.ForwardBackwardRequest) -> None:
    decoded = proto.decode(proto.encode(message), m.ForwardBackwardRequest)
    for datum in decoded.data:
        for tensor in datum.loss_fn_inputs.values():
            if tensor.dense is not None and tensor.dense.size:
                assert not tensor.dense.flags.writeable
