"""The validation walk on what body formats decode into: plain data, attrs models,
dataclasses and numpy arrays (binary formats), with the path of the first bad value."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from tinker import types
from tinker.local.server import validation
from tinker.local.server.http_errors import BadRequest


@dataclasses.dataclass(frozen=True)
class Call:
    """A dataclass like the protobuf codec's ForwardBackwardCall."""

    model_id: str
    seq_id: int
    data: list[Any]
    loss_fn_config: dict[str, float] | None = None


def _refused(value: Any) -> str:
    with pytest.raises(BadRequest) as refused:
        validation.check(value)
    return str(refused.value)


def test_models_are_walked_field_by_field() -> None:
    params = types.SamplingParams.model_construct(max_tokens=5, seed=2**70)
    request = types.SampleRequest.model_construct(
        num_samples=1, prompt=types.ModelInput.from_ints([1]), sampling_params=params
    )
    assert _refused(request) == (
        "sampling_params.seed: 1180591620717411303424 is out of range (64-bit integers)."
    )


def test_dataclasses_and_arrays_as_a_binary_format_decodes_them() -> None:
    datum = {"loss_fn_inputs": {"weights": np.array([1.0, np.inf], np.float32)}}
    assert (
        _refused(Call("m", 1, [datum]))
        == "data[0].loss_fn_inputs.weights: contains NaN or infinity."
    )
    assert _refused(Call("m", -1, [])) == "seq_id: -1 is out of range (0 to 9223372036854775807)."
    seeds = {"seed": np.array([3, -4], np.int64)}
    assert _refused(seeds) == "seed: -4 is out of range (0 to 9223372036854775807)."
    validation.check(Call("m", 1, [{"tokens": np.arange(5)}], {"clip": 0.2}))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            {"data": [1, 2, 2**63]},
            "data[2]: 9223372036854775808 is out of range (64-bit integers).",
        ),
        ({"data": [1.0, float("nan")]}, "data[1]: nan is not a finite number."),
        ({"data": [1, "x\x00"]}, "data[1]: contains a NUL character."),
        ({"num_samples": [5, 0]}, "num_samples[1]: 0 is out of range (1 to 128)."),
        ({"user_metadata": {"seed": -1, "a": [{"seed": -1}]}}, None),  # caller-chosen keys
        (
            {"a": validation.OversizedNumber(700)},
            "a: a number of 700 characters is out of range (at most 100).",
        ),
        (
            {"\ud800": 1},
            "the request body key '\\ud800': contains a lone surrogate (U+D800); send valid "
            "Unicode.",
        ),
        ({"a b": {"c": "x" * 70_000}}, "['a b'].c: 70000 characters, more than the 65536 allowed."),
        ([[[[1]]]], None),
    ],
)
def test_plain_data(value: Any, message: str | None) -> None:
    if message is None:
        validation.check(value)
    else:
        assert _refused(value) == message


def test_nesting_is_bounded_without_recursing_deeper() -> None:
    deep: Any = 1
    for _ in range(5000):
        deep = [deep]
    assert _refused(deep).endswith("nested deeper than 32 levels.")


def test_unknown_objects_are_refused() -> None:
    assert _refused({"x": object()}) == "x: unexpected object value."
