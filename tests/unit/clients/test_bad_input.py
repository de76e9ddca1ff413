"""Bad arguments raise in the caller's thread, name the problem, and send nothing."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from support.fake_service import FakeService

from tinker import types
from tinker.service_client import NoTrainableLayersError


def _datum(**inputs: Any) -> types.Datum:
    return types.Datum(model_input=types.ModelInput.from_ints([1, 2, 3]), loss_fn_inputs=inputs)


GOOD = _datum(target_tokens=[2, 3, 4], weights=[1.0, 1.0, 1.0])
PROMPT = types.ModelInput.from_ints([1, 2])
PARAMS = types.SamplingParams(max_tokens=2)

Case = tuple[str, Callable[[Any], Any], type[Exception], str]

SERVICE_CASES: list[Case] = [
    (
        "no train flag",
        lambda s: s.create_lora_training_client(
            "m", train_mlp=False, train_attn=False, train_unembed=False
        ),
        NoTrainableLayersError,
        "at least one of train_mlp",
    ),
    ("rank 0", lambda s: s.create_lora_training_client("m", rank=0), ValueError, "rank"),
    ("rank str", lambda s: s.create_lora_training_client("m", rank="8"), ValueError, "rank"),
    ("empty base", lambda s: s.create_lora_training_client(""), ValueError, "base_model"),
    ("seed float", lambda s: s.create_lora_training_client("m", seed=1.5), TypeError, "seed"),
    (
        "flag not bool",
        lambda s: s.create_lora_training_client("m", train_mlp=1),
        TypeError,
        "train_mlp",
    ),
    (
        "metadata not str",
        lambda s: s.create_lora_training_client("m", user_metadata={"a": 1}),
        TypeError,
        "user_metadata",
    ),
    ("sampler nothing", lambda s: s.create_sampling_client(), ValueError, "model_path or base"),
    (
        "sampler path scheme",
        lambda s: s.create_sampling_client(model_path="M0/sampler_weights/x"),
        ValueError,
        "tinker://",
    ),
    (
        "sampler retry config",
        lambda s: s.create_sampling_client(base_model="m", retry_config={}),
        TypeError,
        "RetryConfig",
    ),
    (
        "from state path",
        lambda s: s.create_training_client_from_state("/tmp/ckpt"),
        ValueError,
        "tinker://",
    ),
]

TRAINER_CASES: list[Case] = [
    ("unknown loss", lambda t: t.forward_backward([GOOD], "mse"), ValueError, "unknown loss_fn"),
    (
        "missing input",
        lambda t: t.forward_backward([_datum(target_tokens=[1, 2, 3])], "cross_entropy"),
        ValueError,
        "weights",
    ),
    (
        "mismatched length",
        lambda t: t.forward_backward(
            [_datum(target_tokens=[1, 2], weights=[1.0, 1.0])], "cross_entropy"
        ),
        ValueError,
        "expected 3 entries",
    ),
    (
        "policy inputs",
        lambda t: t.forward([GOOD], "importance_sampling"),
        ValueError,
        "data[0]",
    ),
    (
        "not a datum",
        lambda t: t.forward_backward([{"x": 1}], "cross_entropy"),
        TypeError,
        "data[0]",
    ),
    ("data not list", lambda t: t.forward("abc", "cross_entropy"), TypeError, "list of Datum"),
    (
        "config values",
        lambda t: t.forward([GOOD], "ppo", {"clip": "x"}),
        TypeError,
        "loss_fn_config",
    ),
    ("adam dict", lambda t: t.optim_step({"learning_rate": 1e-3}), TypeError, "AdamParams"),
    ("save name slash", lambda t: t.save_state("a/b"), ValueError, "name"),
    ("save name empty", lambda t: t.save_state(""), ValueError, "name"),
    ("ttl negative", lambda t: t.save_state("a", ttl_seconds=-1), ValueError, "ttl_seconds"),
    ("load scheme", lambda t: t.load_state("weights/a"), ValueError, "tinker://"),
    ("load type", lambda t: t.load_state_with_optimizer(3), TypeError, "tinker://"),
    (
        "sampler scheme",
        lambda t: t.create_sampling_client("s3://x"),
        ValueError,
        "tinker://",
    ),
    (
        "custom not callable",
        lambda t: t.forward_backward_custom([GOOD], "loss"),
        TypeError,
        "callable",
    ),
    (
        "custom no targets",
        lambda t: t.forward_backward_custom([_datum(weights=[1.0, 1.0, 1.0])], lambda _d, _lp: 0),
        ValueError,
        "target_tokens",
    ),
]

SAMPLER_CASES: list[Case] = [
    ("num_samples 0", lambda c: c.sample(PROMPT, 0, PARAMS), ValueError, "num_samples"),
    ("num_samples str", lambda c: c.sample(PROMPT, "2", PARAMS), TypeError, "num_samples"),
    ("prompt list", lambda c: c.sample([1, 2], 1, PARAMS), TypeError, "ModelInput"),
    ("params dict", lambda c: c.sample(PROMPT, 1, {"max_tokens": 2}), TypeError, "SamplingParams"),
    (
        "topk negative",
        lambda c: c.sample(PROMPT, 1, PARAMS, topk_prompt_logprobs=-1),
        ValueError,
        "topk_prompt_logprobs",
    ),
    (
        "prompt logprobs flag",
        lambda c: c.sample(PROMPT, 1, PARAMS, include_prompt_logprobs="yes"),
        TypeError,
        "include_prompt_logprobs",
    ),
    ("logprobs prompt", lambda c: c.compute_logprobs("text"), TypeError, "ModelInput"),
]

REST_CASES: list[Case] = [
    ("bad tinker path", lambda r: r.get_training_run_by_tinker_path("x"), ValueError, "tinker://"),
    ("limit zero", lambda r: r.list_training_runs(limit=0), ValueError, "limit"),
    ("offset negative", lambda r: r.list_user_checkpoints(offset=-1), ValueError, "offset"),
    ("empty run id", lambda r: r.get_training_run(""), ValueError, "training_run_id"),
    ("checkpoint id", lambda r: r.delete_checkpoint("M0", None), ValueError, "checkpoint_id"),
]


def _assert_rejected(fake: FakeService, call: Callable[[], Any], error: type, match: str) -> None:
    before = len(fake.api_calls)
    with pytest.raises(error, match=re.escape(match)):
        call()
    assert len(fake.api_calls) == before, "a request was sent for bad input"


@pytest.mark.parametrize(
    ("name", "call", "error", "match"),
    SERVICE_CASES,
)
def test_service_client(
    fake: FakeService, service: Any, name: str, call: Any, error: type, match: str
) -> None:
    _assert_rejected(fake, lambda: call(service), error, match)


@pytest.mark.parametrize(("name", "call", "error", "match"), TRAINER_CASES)
def test_training_client(
    fake: FakeService, trainer: Any, name: str, call: Any, error: type, match: str
) -> None:
    _assert_rejected(fake, lambda: call(trainer), error, match)


@pytest.mark.parametrize(("name", "call", "error", "match"), SAMPLER_CASES)
def test_sampling_client(
    fake: FakeService, service: Any, name: str, call: Any, error: type, match: str
) -> None:
    from tinker.sampling_client import SamplingClient

    client = SamplingClient(service.holder, sampling_session_id="S:sample:9")
    _assert_rejected(fake, lambda: call(client), error, match)


@pytest.mark.parametrize(("name", "call", "error", "match"), REST_CASES)
def test_rest_client(
    fake: FakeService, service: Any, name: str, call: Any, error: type, match: str
) -> None:
    rest = service.create_rest_client()
    _assert_rejected(fake, lambda: call(rest), error, match)


def test_no_train_flag_is_also_an_assertion_error() -> None:
    assert issubclass(NoTrainableLayersError, AssertionError)
    assert issubclass(NoTrainableLayersError, ValueError)


def test_async_twin_validates_before_scheduling(fake: FakeService, service: Any) -> None:
    import asyncio

    before = len(fake.api_calls)
    with pytest.raises(NoTrainableLayersError):
        asyncio.run(
            service.create_lora_training_client_async(
                "m", train_mlp=False, train_attn=False, train_unembed=False
            )
        )
    assert len(fake.api_calls) == before
