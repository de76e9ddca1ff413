"""Set-field tracking, equality, hashing, pickling, copying and the pydantic-style helpers."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
import typing

import attrs
import pytest

from tinker import _wire
from tinker import types as T


def test_defaults_are_readable_but_not_set() -> None:
    params = T.SamplingParams()
    assert params.temperature == 1.0 and params.top_k == -1 and params.max_tokens is None
    assert T.fields_set(params) == frozenset()
    assert T.fields_set(T.SamplingParams(temperature=1.0)) == {"temperature"}


def test_explicit_none_is_sent() -> None:
    assert _wire.unstructure(T.SamplingParams(seed=None)) == {"seed": None}
    assert _wire.unstructure(T.SamplingParams()) == {}


def test_equality_ignores_which_fields_were_set() -> None:
    assert T.SamplingParams(temperature=1.0) == T.SamplingParams()
    assert T.SamplingParams(temperature=0.5) != T.SamplingParams()


def test_frozen_requests_hash_and_refuse_assignment() -> None:
    a, b = T.AdamParams(learning_rate=1e-3), T.AdamParams(learning_rate=1e-3)
    assert hash(a) == hash(b) and len({a, b}) == 1
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        a.learning_rate = 1.0  # type: ignore[misc]


def test_results_are_frozen_and_a_copy_marks_the_replaced_field_set() -> None:
    response = T.SampleResponse(sequences=[])
    with pytest.raises(dataclasses.FrozenInstanceError):
        response.prompt_logprobs_np = None  # type: ignore[misc]
    changed = response.model_copy(update={"prompt_logprobs_np": [None, -1.0]})
    assert response.prompt_logprobs is None and changed.prompt_logprobs == [None, -1.0]
    assert _wire.unstructure(changed) == {
        "sequences": [],
        "type": "sample",
        "prompt_logprobs": [None, -1.0],
    }


@pytest.mark.parametrize(
    "clone", [copy.copy, copy.deepcopy, lambda o: pickle.loads(pickle.dumps(o))]
)
def test_copies_keep_values_and_set_fields(clone: object) -> None:
    request = T.SampleRequest(
        prompt=T.ModelInput.from_ints([1, 2]),
        sampling_params=T.SamplingParams(max_tokens=3, seed=None),
        seq_id=0,
    )
    copied = clone(request)  # type: ignore[operator]
    assert copied == request
    assert _wire.dumps(copied) == _wire.dumps(request)
    assert T.fields_set(copied.sampling_params) == {"max_tokens", "seed"}


def test_model_dump_modes() -> None:
    chunk = T.ImageChunk(data=b"abc", format="png", height=2, tokens=4, width=2)
    python = chunk.model_dump()
    assert python["data"] == b"abc" and python["type"] == "image"
    assert python["expected_tokens"] is None
    assert chunk.model_dump(mode="json")["data"] == "YWJj"
    assert chunk.model_dump(exclude_none=True).keys() == {
        "data",
        "format",
        "height",
        "tokens",
        "width",
        "type",
    }
    assert chunk.model_dump(mode="json", exclude_unset=True) == _wire.unstructure(chunk)
    nested = T.ModelInput.from_ints([1]).model_dump()
    assert nested == {"chunks": [{"tokens": [1], "type": "encoded_text"}]}
    with pytest.raises(ValueError, match="mode"):
        chunk.model_dump(mode="xml")  # type: ignore[arg-type]


def test_model_dump_json() -> None:
    assert T.AdamParams(eps=1e-8).model_dump_json(exclude_unset=True) == '{"eps":1e-08}'


def test_model_validate_and_copy() -> None:
    params = T.SamplingParams.model_validate({"max_tokens": 5, "unknown": 1})
    assert params == T.SamplingParams(max_tokens=5)
    assert T.SamplingParams.model_validate(params) is params
    updated = params.model_copy(update={"temperature": 0.2})
    assert updated.temperature == 0.2 and params.temperature == 1.0
    assert T.fields_set(updated) == {"max_tokens", "temperature"}
    with pytest.raises(TypeError, match="temperature"):
        params.model_copy(update={"temperature": "x"})
    with pytest.raises(TypeError, match="no field 'nope'"):
        params.model_copy(update={"nope": 1})


def test_model_construct_skips_checks() -> None:
    tensor = T.TensorData.model_construct(data=[1, 2], dtype="int64")
    assert tensor.shape is None and T.fields_set(tensor) == {"data", "dtype"}
    with pytest.raises(TypeError, match="TensorData: dtype is required"):
        T.TensorData.model_construct(data=[1])


def test_signature_shows_the_fields() -> None:
    parameters = inspect.signature(T.LoraConfig).parameters
    assert list(parameters) == ["rank", "seed", "train_unembed", "train_mlp", "train_attn"]


def test_model_input_helpers() -> None:
    base = T.ModelInput.from_ints([1, 2])
    longer = base.append_int(3)
    assert base.to_ints() == [1, 2] and longer.to_ints() == [1, 2, 3]
    assert [c.tokens for c in longer.chunks] == [[1, 2], [3]]  # type: ignore[union-attr]
    image = T.ImageChunk(data=b"", format="png", height=1, tokens=5, width=1)
    mixed = longer.append(image)
    assert mixed.length == 8 and longer.length == 3
    with pytest.raises(ValueError, match="to_ints"):
        mixed.to_ints()
    assert T.ModelInput.empty().length == 0 and T.ModelInput.empty().to_ints() == []


def test_tensor_data_numpy_round_trip() -> None:
    np = pytest.importorskip("numpy")
    array = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
    tensor = T.TensorData.from_numpy(array)
    assert tensor.dtype == "float32" and tensor.shape == [2, 3]
    assert np.array_equal(tensor.to_numpy(), array) and tensor.to_numpy().dtype == np.float32
    assert tensor.tolist() == array.tolist()
    ints = T.TensorData.from_numpy(np.array([1, -2], dtype=np.int8))
    assert (ints.dtype, ints.shape, ints.data) == ("int64", [2], [1, -2])
    assert ints.to_numpy().dtype == np.int64
    assert ints != T.TensorData(data=[1, -2], dtype="int64", shape=[2])  # identity, as in 0.38
    assert T.TensorData(data=[1.5, 2.5], dtype="float32").to_numpy().shape == (2,)


def test_tensor_data_numpy_dtype_rules() -> None:
    np = pytest.importorskip("numpy")
    with pytest.warns(UserWarning, match="float64 array to float32"):
        tensor = T.TensorData.from_numpy(np.array([0.1]))
    assert tensor.data == [float(np.float32(0.1))]
    for bad, message in [
        (np.array([1], dtype=np.uint8), "unsigned"),
        (np.array([True]), "bool"),
        (np.array(["a"], dtype=object), "object"),
    ]:
        with pytest.raises(ValueError, match=message):
            T.TensorData.from_numpy(bad)
    with pytest.raises(TypeError, match="numpy array"):
        T.TensorData.from_numpy([1, 2])  # type: ignore[arg-type]


def test_torch_helpers_when_torch_is_installed() -> None:
    torch = pytest.importorskip("torch")
    tensor = T.TensorData.from_torch(torch.tensor([[1.0, 2.0]], dtype=torch.float64))
    assert tensor.dtype == "float32" and tensor.shape == [1, 2]
    assert torch.equal(tensor.to_torch(), torch.tensor([[1.0, 2.0]]))
    d = T.Datum(
        model_input=T.ModelInput.from_ints([1, 2]),
        loss_fn_inputs={"target_tokens": torch.tensor([3, 4]), "weights": torch.ones(2)},
    )
    assert d.loss_fn_inputs["target_tokens"].dtype == "int64"


def test_official_module_paths() -> None:
    from tinker.types.checkpoint import Checkpoint, ParsedCheckpointTinkerPath
    from tinker.types.datum import Datum
    from tinker.types.future_retrieve_response import FutureRetrieveResponse
    from tinker.types.model_input import ModelInput
    from tinker.types.request_error_category import RequestErrorCategory
    from tinker.types.sampling_params import SamplingParams
    from tinker.types.telemetry_batch import TelemetryBatch
    from tinker.types.tensor_data import TensorData

    assert Datum is T.Datum and ModelInput is T.ModelInput and TensorData is T.TensorData
    assert SamplingParams is T.SamplingParams and Checkpoint is T.Checkpoint
    assert ParsedCheckpointTinkerPath is T.ParsedCheckpointTinkerPath
    assert RequestErrorCategory is T.RequestErrorCategory
    assert RequestErrorCategory.User.value == "user"
    assert TelemetryBatch is T.TelemetrySendRequest
    assert T.RequestFailedResponse in typing.get_args(FutureRetrieveResponse)


def test_model_dump_is_a_copy() -> None:
    model_input = T.ModelInput.from_ints([1, 2])
    dumped = model_input.model_dump()
    dumped["chunks"][0]["tokens"].append(3)
    assert model_input.to_ints() == [1, 2]


def test_try_again_always_names_its_type() -> None:
    pending = T.TryAgainResponse(request_id="R", queue_state="active")
    assert _wire.dumps(pending) == b'{"type":"try_again","request_id":"R","queue_state":"active"}'


def test_nested_models_accept_dicts_like_pydantic() -> None:
    request = T.SampleRequest(
        prompt={"chunks": [{"tokens": [1, 2]}]},  # type: ignore[arg-type]
        sampling_params={"max_tokens": 4},  # type: ignore[arg-type]
    )
    assert request.prompt == T.ModelInput.from_ints([1, 2])
    assert _wire.unstructure(request) == {
        "prompt": {"chunks": [{"tokens": [1, 2]}]},
        "sampling_params": {"max_tokens": 4},
    }


def test_float32_data_mixing_ints_and_floats_is_sent_as_floats() -> None:
    assert T.TensorData(data=[1.5, 2], dtype="float32").data == [1.5, 2.0]
    assert T.TensorData(data=[1, 0], dtype="float32").data == [1, 0]  # all ints stay as given
    assert _wire.dumps(T.TensorData(data=[1.5, 2], dtype="float32")) == (
        b'{"data":[1.5,2.0],"dtype":"float32"}'
    )


def test_telemetry_batch_is_the_send_request_and_events_keep_official_order() -> None:
    assert T.TelemetryBatch is T.TelemetrySendRequest
    event = T.UnhandledExceptionEvent(
        error_message="boom",
        error_type="RuntimeError",
        event_id="e",
        event_session_index=3,
        severity="ERROR",
        timestamp="2025-11-25T06:15:14Z",  # type: ignore[arg-type]
        traceback=None,
    )
    assert _wire.dumps(event) == (
        b'{"error_message":"boom","error_type":"RuntimeError","event":"UNHANDLED_EXCEPTION",'
        b'"event_id":"e","event_session_index":3,"severity":"ERROR",'
        b'"timestamp":"2025-11-25T06:15:14Z","traceback":null}'
    )


def test_types_are_reachable_from_the_top_level_package() -> None:
    import tinker

    assert tinker.AdamParams is T.AdamParams
    assert tinker.types.ModelInput is T.ModelInput


def test_models_do_not_share_the_callers_lists() -> None:
    tokens = [1, 2]
    model_input = T.ModelInput.from_ints(tokens)
    values = [0.5, 1.0]
    tensor = T.TensorData(data=values, dtype="float32")
    tokens.append(3)
    values.append(2.0)
    assert model_input.to_ints() == [1, 2] and tensor.data == [0.5, 1.0]


def test_model_copy_applies_field_conversions() -> None:
    datum = T.Datum(model_input=T.ModelInput.from_ints([1]), loss_fn_inputs={"weights": [1.0]})
    updated = datum.model_copy(update={"loss_fn_inputs": {"target_tokens": [4]}})
    (key, tensor), *_ = updated.loss_fn_inputs.items()
    assert len(updated.loss_fn_inputs) == 1
    assert (key, tensor.dtype, tensor.shape, tensor.data) == ("target_tokens", "int64", [1], [4])
    failed = T.RequestFailedResponse(error="x", category="user")
    assert failed.model_copy(update={"category": "odd"}).category is T.RequestErrorCategory.Unknown
