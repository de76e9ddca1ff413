"""Argument checks: each names the argument and what is wrong, with the right error type."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import requests.adapters

from tinker import _validation as validation
from tinker import types
from tinker._retry import RetryConfig

GOOD = types.Datum(
    model_input=types.ModelInput.from_ints([1, 2]),
    loss_fn_inputs={"target_tokens": [2, 3], "weights": [1.0, 1.0]},
)

REFUSED: list[tuple[Callable[[], Any], type[Exception], str]] = [
    (lambda: validation.check_tinker_path(3), TypeError, "path must be a str"),
    (lambda: validation.check_tinker_path("tinker://"), ValueError, "start with 'tinker://'"),
    (lambda: validation.check_tinker_path("s3://x", "model_path"), ValueError, "model_path"),
    (lambda: validation.check_checkpoint_path("tinker://run"), ValueError, "tinker://run"),
    (lambda: validation.check_retry_config({}), TypeError, "RetryConfig, got dict"),
    (lambda: validation.check_ttl(0), ValueError, "ttl_seconds must be a positive int"),
    (lambda: validation.check_ttl(True), ValueError, "ttl_seconds"),
    (lambda: validation.check_metadata({"a": 1}), TypeError, "user_metadata"),
    (lambda: validation.adapter_factory("adapter"), TypeError, "got str"),
    (lambda: validation.check_lora_args("m", 0, None, {"x": True}), ValueError, "rank"),
    (lambda: validation.check_lora_args("m", 1, "7", {"x": True}), TypeError, "seed"),
    (lambda: validation.check_lora_args("m", 1, None, {"x": 1}), TypeError, "x must be a bool"),
    (lambda: validation.check_sampler_source(None, None, None), ValueError, "model_path or"),
    (lambda: validation.check_sampler_source(None, "", None), ValueError, "base_model"),
    (lambda: validation.check_data("text"), TypeError, "list of Datum, got str"),
    (lambda: validation.check_data([GOOD, 3]), TypeError, "data[1] must be a Datum"),
    (lambda: validation.check_batch([GOOD], "mse", None), ValueError, "unknown loss_fn 'mse'"),
    (lambda: validation.check_batch([GOOD], "ppo", None), ValueError, "data[0]"),
    (lambda: validation.check_batch([], "ppo", {"a": "1"}), TypeError, "loss_fn_config"),
    (lambda: validation.check_custom_batch([GOOD], 3), TypeError, "loss_fn must be callable"),
    (lambda: validation.check_adam(None), TypeError, "AdamParams, got NoneType"),
    (
        lambda: validation.check_adam(types.AdamParams(eps=math.inf)),
        ValueError,
        "adam_params.eps must be finite",
    ),
    (
        lambda: validation.check_adam(types.AdamParams(beta2=1.0)),
        ValueError,
        "adam_params.beta2 must be in [0, 1)",
    ),
    (lambda: validation.check_name("a/b", "name"), ValueError, "without '/'"),
    (lambda: validation.check_name("..", "name"), ValueError, "not '.' or '..'"),
    (lambda: validation.check_id("", "session_id"), ValueError, "session_id"),
    (lambda: validation.check_page(0, 0), ValueError, "limit must be an int >= 1"),
    (lambda: validation.check_page(1, -1), ValueError, "offset must be an int >= 0"),
]


@pytest.mark.parametrize(("check", "error", "text"), REFUSED)
def test_bad_arguments_are_refused_with_a_message_naming_them(
    check: Callable[[], Any], error: type[Exception], text: str
) -> None:
    with pytest.raises(error) as info:
        check()
    assert type(info.value) is error
    assert text in str(info.value)


def test_good_arguments_come_back_normalised() -> None:
    assert validation.check_metadata({"k": "v"}) == {"k": "v"}
    assert validation.check_ttl(None) is None and validation.check_ttl(60) == 60
    batch, loss, config = validation.check_batch((GOOD,), "cross_entropy", {"x": 1})
    assert (batch, loss, config) == ([GOOD], "cross_entropy", {"x": 1.0})
    assert type(config["x"]) is float
    assert validation.check_page(5, 0) == (5, 0)
    path = validation.check_checkpoint_path("tinker://run-1/weights/final")
    assert (path.training_run_id, path.checkpoint_id) == ("run-1", "weights/final")
    assert validation.check_sampler_source("tinker://r/sampler_weights/s", None, RetryConfig()) == (
        "tinker://r/sampler_weights/s",
        None,
    )
    adapter = requests.adapters.HTTPAdapter()
    assert validation.adapter_factory(adapter)() is adapter
    assert validation.adapter_factory(requests.adapters.HTTPAdapter)().__class__ is type(adapter)


def test_no_trainable_layers_is_a_value_and_an_assertion_error() -> None:
    flags = {"train_mlp": False, "train_attn": False, "train_unembed": False}
    with pytest.raises(validation.NoTrainableLayersError) as info:
        validation.check_lora_args("m", 8, None, flags)
    assert isinstance(info.value, ValueError) and isinstance(info.value, AssertionError)
