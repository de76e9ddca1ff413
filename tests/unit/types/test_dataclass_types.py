"""The types 0.38 made frozen dataclasses: dataclass behaviour, both versions' construction
idioms, numpy-backed values with list views, provenance, and errors that name the field."""

from __future__ import annotations

import dataclasses
import json
import pickle
from typing import Any

import numpy as np
import pytest

from tinker import types as T

DATACLASS_TYPES = [
    T.TensorData,
    T.Datum,
    T.ForwardBackwardInput,
    T.ForwardBackwardOutput,
    T.SampleResponse,
    T.SampledSequence,
    T.TopkLogprobs,
    T.PromptAltTokens,
    T.PromptProvenanceSpan,
    T.SampledProvenanceSpan,
]


def datum(n: int = 3) -> T.Datum:
    return T.Datum(
        model_input=T.ModelInput.from_ints(list(range(1, n + 1))),
        loss_fn_inputs={"target_tokens": list(range(2, n + 2)), "weights": [1.0] * n},
    )


@pytest.mark.parametrize("cls", DATACLASS_TYPES, ids=lambda cls: cls.__name__)
def test_they_are_frozen_dataclasses(cls: type) -> None:
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_replace_fields_and_asdict() -> None:
    original = datum()
    replaced = dataclasses.replace(original, model_input=T.ModelInput.from_ints([7, 8, 9]))
    assert replaced.model_input.to_ints() == [7, 8, 9] and original.model_input.to_ints() == [
        1,
        2,
        3,
    ]
    assert replaced.loss_fn_inputs is not None and "weights" in replaced.loss_fn_inputs
    assert [f.name for f in dataclasses.fields(T.Datum)] == [
        "model_input",
        "loss_fn_inputs",
        "model_input_spans",
        "loss_fn_input_spans",
    ]
    as_dict = dataclasses.asdict(original)
    assert as_dict["model_input_spans"] is None
    assert as_dict["loss_fn_inputs"]["weights"]["dtype"] == "float32"
    with pytest.raises(dataclasses.FrozenInstanceError):
        original.model_input = T.ModelInput.from_ints([1])  # type: ignore[misc]


def test_0_5_1_and_0_38_construction_build_the_same_values() -> None:
    listed = T.TensorData(data=[[1.0, 2.0], [3.0, 4.0]], dtype="float32", shape=[2, 2])
    from_array = T.TensorData.from_numpy(np.array([[1.0, 2.0], [3.0, 4.0]], np.float32))
    assert listed.tolist() == from_array.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert listed.data == [1.0, 2.0, 3.0, 4.0] and listed.shape == from_array.shape == [2, 2]
    old = T.SampledSequence(stop_reason="stop", tokens=[5, 6], logprobs=[-0.5, -0.25])
    new = T.SampledSequence(
        stop_reason="stop",
        tokens_np=np.array([5, 6], np.int32),
        logprobs_np=np.array([-0.5, -0.25], np.float32),
    )
    assert old == new
    assert old.tokens == [5, 6] and type(old.tokens[0]) is int
    assert old.tokens_np.dtype == np.int32 and old.logprobs_np.dtype == np.float32
    response = T.SampleResponse(sequences=[old], prompt_logprobs=[None, -1.5], type="sample")
    assert response.prompt_logprobs == [None, -1.5] and response.type == "sample"
    assert np.isnan(response.prompt_logprobs_np[0])


def test_list_views_are_computed_once_and_survive_pickling() -> None:
    sequence = T.SampledSequence(stop_reason="length", tokens=[1, 2, 3])
    assert sequence.tokens is sequence.tokens  # cached
    again = pickle.loads(pickle.dumps(sequence))
    assert again == sequence and again.tokens == [1, 2, 3]


def test_a_sequence_without_a_server_id_has_sequence_id_none() -> None:
    """0.38 code tells "no id, no provenance" by `sequence_id is None`; an empty string would
    build a span that names no sequence."""
    from tinker import _wire

    unnamed = _wire.structure({"stop_reason": "stop", "tokens": [5]}, T.SampledSequence)
    assert unnamed.sequence_id is None
    for era in ("0.5.1", "0.38"):
        sent = json.loads(_wire.dumps(unnamed, era=era))
        assert "sequence_id" not in sent
        assert _wire.structure(sent, T.SampledSequence).sequence_id is None
    named = dataclasses.replace(unnamed, sequence_id="r/0")
    assert json.loads(_wire.dumps(named, era="0.38"))["sequence_id"] == "r/0"
    with pytest.raises(TypeError, match=r"SampledSequence.sequence_id: expected a str or None"):
        T.SampledSequence(stop_reason="stop", sequence_id=0, tokens=[5])  # type: ignore[arg-type]


def test_provenance_spans() -> None:
    plain = datum()
    traced = plain.with_provenance(
        [T.PromptProvenanceSpan(sequence_id="p", length=1), T.SampledProvenanceSpan(
            sequence_id="s", length=2)],
        [T.SampledProvenanceSpan(sequence_id="s", offset=1, length=3)],
    )  # fmt: skip
    assert plain.model_input_spans is None
    assert traced.loss_fn_input_spans == [
        T.SampledProvenanceSpan(sequence_id="s", offset=1, length=3)
    ]
    with pytest.raises(ValueError, match=r"Datum.model_input_spans: span lengths sum to 2, but"):
        plain.with_provenance(
            [T.PromptProvenanceSpan(sequence_id="p", length=2)],
            [T.SampledProvenanceSpan(sequence_id="s", length=3)],
        )
    with pytest.raises(ValueError, match="set together or not at all"):
        dataclasses.replace(
            plain, model_input_spans=[T.PromptProvenanceSpan(sequence_id="p", length=3)]
        )


def test_sparse_tensors_from_torch() -> None:
    torch = pytest.importorskip("torch")
    dense = torch.zeros((3, 6), dtype=torch.long)
    dense[0, 4] = 9
    sparse = T.TensorData.from_torch_sparse(dense)
    assert sparse.is_sparse and sparse.data == [9]
    assert (sparse.sparse_crow_indices, sparse.sparse_col_indices) == ([0, 1, 1, 1], [4])
    assert sparse.to_numpy(pad_value=-1)[1, 0] == -1 and sparse.tolist()[0][4] == 9
    assert torch.equal(sparse.to_torch(), dense)
    with pytest.raises(TypeError, match="pad_value must be an int"):
        T.TensorData.from_torch_sparse(dense, pad_value=True)


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: T.TensorData(data=[1, 2], dtype="int32"), ValueError, r"TensorData.dtype"),
        (lambda: T.TensorData(data=[1.5], dtype="int64"), TypeError, r"TensorData.data\[0\]"),
        (lambda: T.TensorData(data=[1, 2], dtype="int64", shape=[3]), ValueError, r"shape \[3\]"),
        (lambda: T.TensorData(data=[1e39], dtype="float32"), ValueError, r"does not fit float32"),
        (
            lambda: T.Datum(model_input=T.ModelInput.from_ints([1]), loss_fn_inputs={"x": [1.0]}),
            KeyError,
            r"Datum.loss_fn_inputs\['x'\]",
        ),
        (
            lambda: T.SampledSequence(stop_reason="eos", tokens=[1]),
            ValueError,
            r"SampledSequence.stop_reason",
        ),
        (
            lambda: T.SampleResponse(sequences=[], prompt_cache_hit_tokens="3"),
            TypeError,
            r"SampleResponse.prompt_cache_hit_tokens",
        ),
        (
            lambda: T.PromptProvenanceSpan(sequence_id="", length=1),
            ValueError,
            r"PromptProvenanceSpan.sequence_id",
        ),
        (
            lambda: T.ForwardBackwardInput(data=[], loss_fn="mse"),
            ValueError,
            r"ForwardBackwardInput.loss_fn",
        ),
    ],
)
def test_bad_values_name_the_field(build: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        build()


def test_from_numpy_keeps_a_writable_array_and_copies_any_other() -> None:
    owned = np.arange(6, dtype=np.int64).reshape(2, 3)
    kept = T.TensorData.from_numpy(owned)
    assert kept.values is owned and kept.shape == [2, 3] and kept.dtype == "int64"
    frozen = np.arange(4, dtype=np.float32)
    frozen.flags.writeable = False
    copied = T.TensorData.from_numpy(frozen)
    assert not np.shares_memory(copied.values, frozen) and copied.values.flags.writeable
    widened = T.TensorData.from_numpy(np.array([1, 2], dtype=np.int32))
    assert widened.values.dtype == np.int64 and widened.data == [1, 2]
    assert copied.model_fields_set == frozenset({"data", "dtype", "shape"})
    listed = T.TensorData(data=[0.0, 1.0, 2.0, 3.0], dtype="float32", shape=[4])
    assert copied.model_dump() == listed.model_dump()  # equality is identity, as in 0.38
