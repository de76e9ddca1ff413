"""Every parameter that is new in 0.38 refuses bad input in the caller's thread: the exception
type, a message naming the parameter, and nothing sent (one case per parameter)."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from support.fake_service import FakeService

from tinker import types

from .conftest import API_KEY

PROMPT = types.ModelInput.from_ints([1, 2, 3])
PARAMS = types.SamplingParams(max_tokens=2)
WEIGHTS = "tinker://M0/weights/a"
EXTERNAL = "tinker://M0/external_weights/e"
DATUM = types.Datum(
    model_input=types.ModelInput.from_ints([1, 2, 3]),
    loss_fn_inputs={"target_tokens": [2, 3, 4], "weights": [1.0, 1.0, 1.0]},
)
FLOAT_TARGETS = types.TensorData.from_numpy(np.zeros((2, 2), dtype="float32"))
START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)

# (target, parameter, call, exception type); the message must name the parameter.
Case = tuple[str, str, Callable[[Any], Any], type[Exception]]

CASES: list[Case] = [
    # ServiceClient
    ("new", "project_id", lambda c: c.service(project_id=5), ValueError),
    ("new", "display_name", lambda c: c.service(display_name=""), ValueError),
    (
        "new",
        "default_headers_overrides",
        lambda c: c.service(default_headers_overrides={"X-A": 1}),
        TypeError,
    ),
    (
        "service",
        "optimizer",
        lambda s: s.create_lora_training_client("base/model", optimizer="dimuon"),
        TypeError,
    ),
    (
        "service",
        "base_model",
        lambda s: s.create_training_client_from_state(WEIGHTS, base_model=""),
        ValueError,
    ),
    (
        "service",
        "weights_access_token",
        lambda s: s.create_training_client_from_state(WEIGHTS, weights_access_token=5),
        ValueError,
    ),
    (
        "service",
        "optimizer",
        lambda s: s.create_training_client_from_state(WEIGHTS, optimizer={"type": "adamw"}),
        TypeError,
    ),
    (
        "service",
        "base_model",
        lambda s: s.create_training_client_from_state_with_optimizer(WEIGHTS, base_model=3),
        ValueError,
    ),
    (
        "service",
        "weights_access_token",
        lambda s: s.create_training_client_from_state_with_optimizer(
            WEIGHTS, weights_access_token=""
        ),
        ValueError,
    ),
    (
        "service",
        "record_stability_info",
        lambda s: s.create_sampling_client(base_model="b", record_stability_info="y"),
        TypeError,
    ),
    ("service", "path", lambda s: s.copy_weights("M0/weights/a"), ValueError),
    ("service", "ttl_seconds", lambda s: s.copy_weights(WEIGHTS, ttl_seconds=0), ValueError),
    (
        "service",
        "weights_access_token",
        lambda s: s.copy_weights(WEIGHTS, weights_access_token=5),
        ValueError,
    ),
    ("service", "status", lambda s: s.close("ok"), ValueError),
    ("service", "detail", lambda s: s.close("success", 5), TypeError),
    # TrainingClient
    (
        "trainer",
        "loss_fn_config",
        lambda t: t.forward_backward([DATUM], "ppo", {"clip_low_threshold": [0.8]}),
        TypeError,
    ),
    ("trainer", "loss_fn", lambda t: t.forward_backward([DATUM], "gspo2"), ValueError),
    (
        "trainer",
        "optim_params",
        lambda t: t.optim_step(types.AdamParams(), adam_params=types.AdamParams()),
        ValueError,
    ),
    (
        "trainer",
        "adam_params",
        lambda t: t.optim_step(adam_params={"learning_rate": 0.1}),
        TypeError,
    ),
    (
        "trainer",
        "optim_params",
        lambda t: t.optim_step(types.DimuonParams(learning_rate=0.1)),
        ValueError,
    ),
    ("trainer", "ttl_seconds", lambda t: t.save_state("a", ttl_seconds=0), ValueError),
    ("trainer", "overwrite", lambda t: t.save_state("a", overwrite="yes"), TypeError),
    ("trainer", "user_metadata", lambda t: t.save_state("a", user_metadata={"k": 1}), TypeError),
    (
        "trainer",
        "ttl_seconds",
        lambda t: t.save_weights_for_sampler("a", ttl_seconds="1h"),
        ValueError,
    ),
    (
        "trainer",
        "user_metadata",
        lambda t: t.save_weights_for_sampler("a", user_metadata=[("k", "v")]),
        TypeError,
    ),
    ("trainer", "name", lambda t: t.save_weights_external(""), ValueError),
    ("trainer", "ttl_seconds", lambda t: t.save_weights_external("e", ttl_seconds=-1), ValueError),
    (
        "trainer",
        "age_encryption_recipients",
        lambda t: t.save_weights_external("e", age_encryption_recipients="age1x"),
        TypeError,
    ),
    (
        "trainer",
        "weights_access_token",
        lambda t: t.load_state(WEIGHTS, weights_access_token=5),
        ValueError,
    ),
    (
        "trainer",
        "weights_access_token",
        lambda t: t.load_state_with_optimizer(WEIGHTS, weights_access_token=5),
        ValueError,
    ),
    (
        "trainer",
        "record_stability_info",
        lambda t: t.create_sampling_client("tinker://M0/sampler_weights/s", None, 1),
        TypeError,
    ),
    (
        "trainer",
        "record_stability_info",
        lambda t: t.save_weights_and_get_sampling_client(record_stability_info="no"),
        TypeError,
    ),
    ("trainer", "kind", lambda t: t.save_weights_and_get_sampling_client(kind="live"), ValueError),
    # SamplingClient
    (
        "sampler",
        "topk_sample_logprobs",
        lambda s: s.sample(PROMPT, 1, PARAMS, topk_sample_logprobs=-1),
        ValueError,
    ),
    (
        "sampler",
        "target_prompt_logprobs",
        lambda s: s.sample(PROMPT, 1, PARAMS, target_prompt_logprobs=FLOAT_TARGETS),
        ValueError,
    ),
    (
        "sampler",
        "prompt_alt_tokens_k",
        lambda s: s.sample(PROMPT, 1, PARAMS, prompt_alt_tokens_k=1.5),
        ValueError,
    ),
    (
        "sampler",
        "prompt_logprobs_last_n",
        lambda s: s.sample(PROMPT, 1, PARAMS, prompt_logprobs_last_n=1),
        ValueError,
    ),
    (
        "sampler",
        "prompt_logprobs_last_n",
        lambda s: s.compute_logprobs(PROMPT, prompt_logprobs_last_n=0),
        ValueError,
    ),
    ("sampler", "handle", lambda s: type(s).from_sampler_handle(5), TypeError),
    (
        "sampler",
        "api_key",
        lambda s: type(s).from_sampler_handle(s.get_sampler_handle(), api_key="k\n"),
        ValueError,
    ),
    # RestClient
    ("new", "base_url", lambda c: c.rest(base_url="ftp://x"), ValueError),
    ("new", "api_key", lambda c: c.rest(api_key="tml-k\n"), ValueError),
    ("rest", "access_scope", lambda r: r.get_training_run("M0", "all"), ValueError),
    (
        "rest",
        "access_scope",
        lambda r: r.get_training_run_by_tinker_path(WEIGHTS, access_scope="mine"),
        ValueError,
    ),
    ("rest", "access_scope", lambda r: r.list_training_runs(access_scope=None), ValueError),
    ("rest", "project_id", lambda r: r.list_training_runs(project_id=5), ValueError),
    (
        "rest",
        "ttl_seconds",
        lambda r: r.set_checkpoint_ttl_from_tinker_path(WEIGHTS, -5),
        ValueError,
    ),
    (
        "rest",
        "tinker_path",
        lambda r: r.set_checkpoint_ttl_from_tinker_path("M0/weights/a", None),
        ValueError,
    ),
    ("rest", "tinker_path", lambda r: r.get_external_weights_urls(WEIGHTS), ValueError),
    ("rest", "path", lambda r: r.copy_weights("M0/weights/a", "p"), ValueError),
    ("rest", "destination_project_id", lambda r: r.copy_weights(EXTERNAL), ValueError),
    ("rest", "destination_project_id", lambda r: r.copy_weights(EXTERNAL, 5), ValueError),
    ("rest", "ttl_seconds", lambda r: r.copy_weights(EXTERNAL, ttl_seconds=1.5), ValueError),
    (
        "rest",
        "weights_access_token",
        lambda r: r.copy_weights(EXTERNAL, weights_access_token=5),
        ValueError,
    ),
    ("rest", "access_scope", lambda r: r.get_session("S", access_scope="x"), ValueError),
    ("rest", "access_scope", lambda r: r.list_sessions(access_scope="x"), ValueError),
    ("rest", "session_id", lambda r: r.assign_session_project("", "p"), ValueError),
    ("rest", "project_id", lambda r: r.assign_session_project("S", ""), ValueError),
    ("rest", "session_id", lambda r: r.export_session_trace(None), ValueError),
    ("rest", "request", lambda r: r.search_sessions({"limit": 5}), TypeError),
    # AdminClient
    ("admin", "starting_on", lambda a: a.get_billing_usage("yesterday", START), ValueError),
    ("admin", "ending_before", lambda a: a.get_billing_usage(START, 5), TypeError),
    (
        "admin",
        "ending_before",
        lambda a: a.get_billing_usage(START, START + datetime.timedelta(days=20)),
        ValueError,
    ),
    ("admin", "project_id", lambda a: a.get_current_checkpoint_storage_usage(5), ValueError),
    ("admin", "event_type", lambda a: a.get_audit_log("everything"), ValueError),
    ("admin", "day", lambda a: a.get_audit_log(day="2026-01-01"), TypeError),
]


class _New:
    """Builds clients of the fake service with one bad constructor argument."""

    def __init__(self, fake: FakeService) -> None:
        self.fake = fake

    def service(self, **bad: Any) -> Any:
        from tinker.service_client import ServiceClient

        return ServiceClient(api_key=API_KEY, base_url=self.fake.url, telemetry=False, **bad)

    def rest(self, **bad: Any) -> Any:
        from tinker.rest_client import RestClient

        return RestClient(**{"api_key": API_KEY, "base_url": self.fake.url, **bad})


@pytest.fixture
def targets(fake: FakeService, service: Any, trainer: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    from tinker.rest_client import AdminClient

    monkeypatch.delenv("TINKER_PROJECT_ID", raising=False)
    fake.direct(
        "POST",
        "/api/v1/create_sampling_session",
        lambda b: {"sampling_session_id": f"S:sample:{b['sampling_session_seq_id']}"},
    )
    return {
        "new": _New(fake),
        "service": service,
        "trainer": trainer,
        "sampler": service.create_sampling_client(base_model="base/model").result(timeout=10),
        "rest": service.create_rest_client(),
        "admin": AdminClient(base_url=fake.url, api_key=API_KEY),
    }


@pytest.mark.parametrize(
    ("target", "parameter", "call", "error"),
    CASES,
    ids=[f"{target}-{parameter}-{index}" for index, (target, parameter, *_) in enumerate(CASES)],
)
def test_bad_input_to_a_038_parameter_is_refused_before_sending(
    fake: FakeService,
    targets: dict[str, Any],
    target: str,
    parameter: str,
    call: Callable[[Any], Any],
    error: type[Exception],
) -> None:
    before = len(fake.api_calls)
    with pytest.raises(error) as caught:
        call(targets[target])
    assert parameter in str(caught.value), f"the message does not name {parameter}"
    assert len(fake.api_calls) == before, "a request was sent for bad input"
