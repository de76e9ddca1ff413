"""Bad arguments fail early with ValueError/TypeError naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from tinker import types as T


def datum(n: int, **inputs: Any) -> T.Datum:
    return T.Datum(model_input=T.ModelInput.from_ints(list(range(n))), loss_fn_inputs=inputs)


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (
            lambda: T.SamplingParams(temperature="hot"),
            TypeError,
            r"SamplingParams\.temperature: expected float, got str 'hot'",
        ),
        (lambda: T.SamplingParams(max_tokens=2.5), TypeError, r"SamplingParams\.max_tokens"),
        (lambda: T.SamplingParams(max_tokens=True), TypeError, r"SamplingParams\.max_tokens"),
        (lambda: T.SamplingParams(stop=[1, "a"]), TypeError, r"SamplingParams\.stop"),
        (lambda: T.SamplingParams(top_p=1.5), ValueError, r"SamplingParams\.top_p"),
        (lambda: T.SamplingParams(temperature=-1.0), ValueError, "temperature"),
        (lambda: T.AdamParams(learning_rate=None), TypeError, r"AdamParams\.learning_rate"),
        (lambda: T.AdamParams(momentum=0.9), TypeError, "momentum"),
        (lambda: T.LoraConfig(rank=0), ValueError, r"LoraConfig\.rank"),
        (
            lambda: T.LoraConfig(rank=8, train_mlp=False, train_attn=False, train_unembed=False),
            ValueError,
            "at least one",
        ),
        (
            lambda: T.EncodedTextChunk(tokens=[1, 2.5]),
            TypeError,
            r"EncodedTextChunk\.tokens\[1\]: expected int, got float 2\.5",
        ),
        (lambda: T.EncodedTextChunk(tokens="abc"), TypeError, r"EncodedTextChunk\.tokens"),
        (
            lambda: T.ImageChunk(data=b"x", format="gif", height=1, tokens=1, width=1),
            ValueError,
            r"ImageChunk\.format: expected one of 'png', 'jpeg', got str 'gif'",
        ),
        (
            lambda: T.ImageChunk(data=3, format="png", height=1, tokens=1, width=1),
            TypeError,
            r"ImageChunk\.data",
        ),
        (lambda: T.ModelInput(chunks=[[1, 2]]), TypeError, r"ModelInput\.chunks\[0\]"),
        (lambda: T.TensorData(data=[1, 2], dtype="int32"), ValueError, r"TensorData\.dtype"),
        (lambda: T.TensorData(data=[1.5], dtype="int64"), TypeError, "int64 needs ints"),
        (
            lambda: T.TensorData(data=[1, 2, 3], dtype="int64", shape=[2, 2]),
            ValueError,
            r"shape \[2, 2\] needs 4 values, data has 3",
        ),
        (lambda: T.TensorData(data=["a"], dtype="float32"), TypeError, r"TensorData\.data"),
        (
            lambda: T.ForwardBackwardInput(data=[], loss_fn="mse"),
            ValueError,
            r"ForwardBackwardInput\.loss_fn",
        ),
        (
            lambda: T.SampleRequest(
                prompt=T.ModelInput.empty(), sampling_params=T.SamplingParams(), num_samples=0
            ),
            ValueError,
            "num_samples",
        ),
        (
            lambda: T.CreateSessionRequest(tags="a,b", user_metadata=None, sdk_version="1"),
            TypeError,
            r"CreateSessionRequest\.tags",
        ),
        (
            lambda: T.CreateSessionRequest(tags=[], user_metadata={1: "x"}, sdk_version="1"),
            TypeError,
            "user_metadata",
        ),
    ],
)
def test_constructor_checks(build: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        build()


def test_positional_arguments_are_refused() -> None:
    with pytest.raises(TypeError):
        T.AdamParams(1e-3)  # type: ignore[misc]


def test_numbers_are_normalised_to_plain_python() -> None:
    np = pytest.importorskip("numpy")
    params = T.SamplingParams(max_tokens=np.int64(5), temperature=np.float32(0.5), seed=np.int32(1))
    assert type(params.max_tokens) is int and type(params.temperature) is float
    assert type(params.seed) is int
    chunk = T.EncodedTextChunk(tokens=np.array([1, 2, 3], dtype=np.int32))
    assert chunk.tokens == [1, 2, 3] and type(chunk.tokens) is list
    assert type(chunk.tokens[0]) is int
    mixed = T.EncodedTextChunk(tokens=(np.int64(4), 5))
    assert mixed.tokens == [4, 5] and {type(t) for t in mixed.tokens} == {int}


def test_datum_list_dtype_by_key() -> None:
    d = datum(3, target_tokens=[1, 2, 3], weights=[1, 0, 1], advantages=[0.5, 0.5, 0.5])
    assert d.loss_fn_inputs["target_tokens"].dtype == "int64"
    assert d.loss_fn_inputs["weights"].dtype == "float32"
    assert d.loss_fn_inputs["advantages"].shape == [3]


def test_datum_list_under_unknown_key_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="mask"):
        datum(2, target_tokens=[1, 2], mask=[1, 1])


def test_datum_numpy_inputs() -> None:
    np = pytest.importorskip("numpy")
    d = datum(
        2,
        target_tokens=np.array([3, 4], dtype=np.int16),
        weights=np.array([[1.0], [0.5]], dtype=np.float32),
    )
    target = d.loss_fn_inputs["target_tokens"]
    assert (target.dtype, target.shape, target.data) == ("int64", [2], [3, 4])
    assert d.loss_fn_inputs["weights"].shape == [2, 1]
    assert d.loss_fn_inputs["weights"].data == [1.0, 0.5]


def test_datum_accepts_tensor_dicts() -> None:
    d = datum(
        1,
        target_tokens={"data": [5], "dtype": "int64"},
        weights=T.TensorData(data=[1.0], dtype="float32"),
    )
    target = d.loss_fn_inputs["target_tokens"]
    assert (target.dtype, target.shape, target.data) == ("int64", None, [5])


def test_datum_rejects_other_values() -> None:
    with pytest.raises(TypeError, match=r"Datum\.loss_fn_inputs\['weights'\]"):
        datum(1, weights=3.0)


# --- validate_batch -------------------------------------------------------------------------


def good(n: int = 3) -> T.Datum:
    return datum(n, target_tokens=list(range(n)), weights=[1.0] * n)


def test_validate_batch_accepts_a_good_batch() -> None:
    T.validate_batch([good(3), good(5)], "cross_entropy")
    rl = datum(2, target_tokens=[1, 2], logprobs=[-1.0, -2.0], advantages=[0.5, 0.5])
    for loss in ("importance_sampling", "ppo", "cispo", "dro"):
        T.validate_batch([rl], loss)


def test_validate_batch_length_mismatch_names_datum_and_field() -> None:
    short = datum(17, target_tokens=list(range(17)), weights=[1.0] * 16)
    with pytest.raises(ValueError) as info:
        T.validate_batch([good(), good(), good(), short], "cross_entropy")
    assert str(info.value) == (
        "data[3].loss_fn_inputs['weights']: expected 17 entries (model_input.length), got 16"
    )


def test_validate_batch_uses_first_dimension_of_shape() -> None:
    np = pytest.importorskip("numpy")
    two_d = datum(
        2,
        target_tokens=np.zeros((2, 3), dtype=np.int64),
        weights=np.ones((2, 3), dtype=np.float32),
    )
    T.validate_batch([two_d], "cross_entropy")


def test_validate_batch_missing_and_unexpected_keys() -> None:
    with pytest.raises(
        ValueError, match=r"data\[0\]\.loss_fn_inputs: cross_entropy needs 'weights'"
    ):
        T.validate_batch([datum(1, target_tokens=[1])], "cross_entropy")
    with pytest.raises(
        ValueError, match=r"data\[1\]\.loss_fn_inputs: importance_sampling needs 'advantages'"
    ):
        rl = datum(1, target_tokens=[1], logprobs=[0.0], advantages=[1.0])
        T.validate_batch([rl, datum(1, target_tokens=[1], logprobs=[0.0])], "importance_sampling")
    extra = datum(1, target_tokens=[1], weights=[1.0], advantages=[1.0])
    with pytest.raises(ValueError, match=r"data\[0\]\.loss_fn_inputs: unexpected 'advantages'"):
        T.validate_batch([extra], "cross_entropy")


def test_validate_batch_dtype_and_unknown_loss() -> None:
    wrong = datum(
        1,
        target_tokens=T.TensorData(data=[1.0], dtype="float32"),
        weights=T.TensorData(data=[1.0], dtype="float32"),
    )
    with pytest.raises(ValueError, match=r"\['target_tokens'\]: expected dtype int64"):
        T.validate_batch([wrong], "cross_entropy")
    with pytest.raises(ValueError, match="unknown loss_fn 'mse'"):
        T.validate_batch([good()], "mse")


def test_loss_tables_cover_every_loss_type() -> None:
    import typing

    assert set(typing.get_args(T.LossFnType)) == set(T.LOSS_FN_INPUT_KEYS) == set(T.LOSS_FN_TYPES)
    for keys in T.LOSS_FN_INPUT_KEYS.values():
        assert keys <= set(T.INPUT_KEY_DTYPES)


def test_token_ids_and_image_sizes_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match=r"EncodedTextChunk\.tokens\[2\]: token ids must be >= 0"):
        T.ModelInput.from_ints([0, 1, -5])
    with pytest.raises(ValueError, match=r"ImageChunk\.tokens: must be >= 0, got -1"):
        T.ImageChunk(data=b"", format="png", height=1, tokens=-1, width=1)
    with pytest.raises(ValueError, match=r"ImageAssetPointerChunk\.width"):
        T.ImageAssetPointerChunk(format="png", height=1, location="x", tokens=1, width=-2)


def test_integral_floats_are_accepted_as_ints_like_pydantic() -> None:
    chunk = T.EncodedTextChunk(tokens=[1, 2.0])
    assert chunk.tokens == [1, 2] and {type(t) for t in chunk.tokens} == {int}
    info = T.WeightsInfoResponse.model_validate(
        {"base_model": "b", "is_lora": True, "lora_rank": 8.0}
    )
    assert info.lora_rank == 8 and type(info.lora_rank) is int
    with pytest.raises(TypeError, match=r"TensorData\.data\[0\]: dtype int64 needs ints"):
        T.TensorData(data=[1.5], dtype="int64")


def test_validate_batch_rl_losses_take_optional_weights_but_not_a_mask() -> None:
    inputs = {"target_tokens": [1, 2], "logprobs": [-1.0, -2.0], "advantages": [0.5, 0.5]}
    for loss in ("importance_sampling", "ppo", "cispo", "dro"):
        T.validate_batch([datum(2, weights=[1.0, 0.0], **inputs)], loss)
    with pytest.raises(ValueError, match=r"data\[0\]\.loss_fn_inputs\['weights'\]: expected 2"):
        T.validate_batch([datum(2, weights=[1.0], **inputs)], "ppo")
    base = datum(2, weights=[1.0, 1.0], **inputs)
    mask = T.TensorData(data=[1.0, 1.0], dtype="float32")
    masked = T.Datum(
        model_input=base.model_input, loss_fn_inputs={**base.loss_fn_inputs, "mask": mask}
    )
    with pytest.raises(ValueError, match=r"unexpected 'mask' for ppo \(accepted: 'advantages'"):
        T.validate_batch([masked], "ppo")
