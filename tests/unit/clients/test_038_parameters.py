"""The 0.38 parameters of the clients on the wire, and their bad input refused in the caller's
thread with nothing sent: optimizer choice and optim_step params, save options, exports,
sampler kinds, the new sample scoring parameters and sequence ids."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from support.fake_service import FakeService, Reply

from tinker import types

from .conftest import API_KEY

PROMPT = types.ModelInput.from_ints([1, 2, 3])
PARAMS = types.SamplingParams(max_tokens=2)
SAMPLE = {
    "sequences": [
        {"tokens": [5, 6], "logprobs": [-0.5, -0.25], "stop_reason": "length"},
        {"tokens": [7], "logprobs": [-0.1], "stop_reason": "stop"},
    ]
}


def _targets(rows: int = 2, dtype: str = "int64") -> types.TensorData:
    return types.TensorData.from_numpy(np.full((rows, 2), 4, dtype=dtype))


@pytest.fixture
def sampler(fake: FakeService, service: Any) -> Any:
    fake.direct(
        "POST",
        "/api/v1/create_sampling_session",
        lambda b: {"sampling_session_id": f"S:sample:{b['sampling_session_seq_id']}"},
    )
    return service.create_sampling_client(base_model="base/model").result()


def _assert_rejected(fake: FakeService, call: Callable[[], Any], error: type, match: str) -> None:
    before = len(fake.api_calls)
    with pytest.raises(error, match=re.escape(match)):
        call()
    assert len(fake.api_calls) == before, "a request was sent for bad input"


def test_the_optimizer_is_chosen_at_creation(fake: FakeService, service: Any) -> None:
    service.create_lora_training_client(
        "base/model", optimizer=types.DimuonOptimizerConfig()
    ).result(timeout=10)
    service.create_lora_training_client("base/model").result(timeout=10)
    bodies = sorted(fake.bodies("/api/v1/create_model"), key=lambda b: b["model_seq_id"])
    assert bodies[0]["optimizer_config"]["type"] == "dimuon"
    assert "optimizer_config" not in bodies[1]  # Adam: the server's default, not sent


def test_optim_step_takes_optim_params_or_the_adam_params_keyword(
    fake: FakeService, trainer: Any
) -> None:
    fake.future("/api/v1/optim_step", lambda _b: {"metrics": {}})
    trainer.optim_step(types.AdamParams(learning_rate=0.5)).result(timeout=10)
    trainer.optim_step(adam_params=types.AdamParams(learning_rate=0.25)).result(timeout=10)
    assert [b["adam_params"] for b in fake.bodies("/api/v1/optim_step")] == [
        {"learning_rate": 0.5},
        {"learning_rate": 0.25},
    ]


def test_save_options_and_exports_on_the_wire(fake: FakeService, trainer: Any) -> None:
    fake.future("/api/v1/save_weights", lambda b: {"path": f"tinker://M0/weights/{b['path']}"})
    fake.future(
        "/api/v1/save_weights_external",
        lambda b: {"path": f"tinker://M0/external_weights/{b['path']}", "size_bytes": 10},
    )
    fake.future(
        "/api/v1/save_weights_for_sampler",
        lambda b: {"path": None, "sampling_session_id": "S:sample:9"},
    )
    trainer.save_state("a", 7200, True, {"k": "v"}).result(timeout=10)
    trainer.save_state("b").result(timeout=10)
    exported = trainer.save_weights_external("e", age_encryption_recipients=["age1xyz"])
    assert exported.result(timeout=10).path == "tinker://M0/external_weights/e"
    follower = trainer.save_weights_and_get_sampling_client(kind="inflight")
    assert follower.result(timeout=10).get_base_model() == "base/model"  # from get_info
    saves = fake.bodies("/api/v1/save_weights")
    assert [{k: v for k, v in b.items() if k != "seq_id"} for b in saves] == [
        {
            "model_id": "M0",
            "path": "a",
            "ttl_seconds": 7200,
            "overwrite": True,
            "user_metadata": {"k": "v"},
        },
        {"model_id": "M0", "path": "b"},
    ]
    (export,) = fake.bodies("/api/v1/save_weights_external")
    assert export["age_encryption_recipients"] == ["age1xyz"]
    (snapshot,) = fake.bodies("/api/v1/save_weights_for_sampler")
    assert snapshot["kind"] == "inflight"
    assert fake.seen("/api/v1/samplers/S:sample:9") == []


def test_new_sample_parameters_go_out_and_sequence_ids_come_back(
    fake: FakeService, sampler: Any
) -> None:
    fake.push(
        "/api/v1/asample", Reply(200, {"request_id": "rq-1", "sample_sequence_ids": ["a", "b"]})
    )
    fake.complete("rq-1", SAMPLE)
    response = sampler.sample(
        PROMPT,
        2,
        PARAMS,
        include_prompt_logprobs=True,
        topk_sample_logprobs=3,
        target_prompt_logprobs=_targets(),
        prompt_alt_tokens_k=2,
        prompt_logprobs_last_n=1,
    ).result(timeout=10)
    assert [s.sequence_id for s in response.sequences] == ["a", "b"]
    assert response.sequences[0].tokens == [5, 6]
    (body,) = fake.bodies("/api/v1/asample")
    assert body["topk_sample_logprobs"] == 3
    assert body["prompt_alt_tokens_k"] == 2
    assert body["prompt_logprobs_last_n"] == 1
    assert body["target_prompt_logprobs"] == {
        "data": [4, 4, 4, 4],
        "dtype": "int64",
        "shape": [2, 2],
    }


def test_a_sample_without_the_new_parameters_sends_none_of_them(
    fake: FakeService, sampler: Any
) -> None:
    fake.future("/api/v1/asample", lambda _b: SAMPLE)
    response = sampler.sample(PROMPT, 2, PARAMS).result(timeout=10)
    # The server named none: None, which code written for 0.38 reads as "no provenance".
    assert [s.sequence_id for s in response.sequences] == [None, None]
    (body,) = fake.bodies("/api/v1/asample")
    assert not {"topk_sample_logprobs", "prompt_alt_tokens_k", "prompt_logprobs_last_n"} & set(body)


TRAINER_CASES = [
    (
        "both params",
        lambda t: t.optim_step(types.AdamParams(), adam_params=types.AdamParams()),
        ValueError,
        "optim_step takes optim_params or adam_params, not both",
    ),
    ("no params", lambda t: t.optim_step(), TypeError, "optim_step needs optim_params"),
    (
        "dimuon on adam",
        lambda t: t.optim_step(types.DimuonParams(learning_rate=0.1)),
        ValueError,
        "optim_step got optim_params=DimuonParams ('dimuon') but this run's optimizer is 'adamw'",
    ),
    (
        "not params",
        lambda t: t.optim_step({"learning_rate": 1.0}),
        TypeError,
        "optim_params must be an AdamParams or DimuonParams, got dict",
    ),
    (
        "overwrite not bool",
        lambda t: t.save_state("a", overwrite="yes"),
        TypeError,
        "overwrite must be a bool",
    ),
    (
        "save metadata",
        lambda t: t.save_weights_for_sampler("a", user_metadata={"k": 1}),
        TypeError,
        "user_metadata must be a dict[str, str]",
    ),
    (
        "recipient",
        lambda t: t.save_weights_external("a", age_encryption_recipients=["rsa-key"]),
        ValueError,
        "age_encryption_recipients[0] must be an age1... or ssh-... public key",
    ),
    (
        "too many recipients",
        lambda t: t.save_weights_external("a", age_encryption_recipients=["age1x"] * 11),
        ValueError,
        "age_encryption_recipients takes 1 to 10 keys, got 11",
    ),
    (
        "kind",
        lambda t: t.save_weights_and_get_sampling_client(kind="live"),
        ValueError,
        "kind must be 'snapshot' or 'inflight'",
    ),
    (
        "stability flag",
        lambda t: t.create_sampling_client("tinker://M0/sampler_weights/s", None, 1),
        TypeError,
        "record_stability_info must be a bool",
    ),
]


@pytest.mark.parametrize(("name", "call", "error", "match"), TRAINER_CASES)
def test_bad_training_input(
    fake: FakeService, trainer: Any, name: str, call: Any, error: type, match: str
) -> None:
    _assert_rejected(fake, lambda: call(trainer), error, match)


SAMPLER_CASES = [
    (
        "target dtype",
        lambda s: s.sample(PROMPT, 1, PARAMS, target_prompt_logprobs=_targets(dtype="float32")),
        ValueError,
        "target_prompt_logprobs must have dtype int64 (token ids), got float32",
    ),
    (
        "target 1-D",
        lambda s: s.sample(
            PROMPT, 1, PARAMS, target_prompt_logprobs=types.TensorData.from_numpy(np.arange(2))
        ),
        ValueError,
        "target_prompt_logprobs must be 2-D [len(prompt) - 1, K], got shape [2]",
    ),
    (
        "target rows",
        lambda s: s.sample(PROMPT, 1, PARAMS, target_prompt_logprobs=_targets(rows=3)),
        ValueError,
        "target_prompt_logprobs has 3 rows; it needs one per prompt position after the first: 2",
    ),
    (
        "target list",
        lambda s: s.sample(PROMPT, 1, PARAMS, target_prompt_logprobs=[[1, 2]]),
        TypeError,
        "target_prompt_logprobs must be a TensorData of token ids, got list",
    ),
    (
        "last_n without prompt logprobs",
        lambda s: s.sample(PROMPT, 1, PARAMS, prompt_logprobs_last_n=1),
        ValueError,
        "prompt_logprobs_last_n needs include_prompt_logprobs=True",
    ),
    (
        "last_n zero",
        lambda s: s.sample(PROMPT, 1, PARAMS, True, prompt_logprobs_last_n=0),
        ValueError,
        "prompt_logprobs_last_n must be an int >= 1, got 0",
    ),
    (
        "alt tokens",
        lambda s: s.sample(PROMPT, 1, PARAMS, prompt_alt_tokens_k=-1),
        ValueError,
        "prompt_alt_tokens_k must be an int >= 0, got -1",
    ),
    (
        "topk sample",
        lambda s: s.sample(PROMPT, 1, PARAMS, topk_sample_logprobs=True),
        ValueError,
        "topk_sample_logprobs must be an int >= 0, got True",
    ),
    (
        "logprobs last_n",
        lambda s: s.compute_logprobs(PROMPT, prompt_logprobs_last_n=-2),
        ValueError,
        "prompt_logprobs_last_n must be an int >= 1, got -2",
    ),
]


@pytest.mark.parametrize(("name", "call", "error", "match"), SAMPLER_CASES)
def test_bad_sampling_input(
    fake: FakeService, sampler: Any, name: str, call: Any, error: type, match: str
) -> None:
    _assert_rejected(fake, lambda: call(sampler), error, match)


def test_bad_creation_input(fake: FakeService, service: Any) -> None:
    _assert_rejected(
        fake,
        lambda: service.create_lora_training_client("base/model", optimizer="dimuon"),
        TypeError,
        "optimizer must be an AdamOptimizerConfig or DimuonOptimizerConfig",
    )
    _assert_rejected(
        fake,
        lambda: service.create_sampling_client(base_model="b", record_stability_info="y"),
        TypeError,
        "record_stability_info must be a bool",
    )


def test_a_sampler_handle_names_the_sampler_without_credentials(
    fake: FakeService, sampler: Any
) -> None:
    import base64
    import json

    from tinker.sampling_client import SamplingClient

    handle = sampler.get_sampler_handle()
    state = json.loads(base64.urlsafe_b64decode(handle))
    assert state["holder"]["api_key"] is None
    assert API_KEY not in handle and API_KEY not in json.dumps(state)
    assert (state["session_id"], state["sampling_session_id"]) == ("S", "S:sample:0")
    copy = SamplingClient.from_sampler_handle(handle, api_key=API_KEY)
    assert copy.sampling_session_id == "S:sample:0" and copy.get_base_model() == "base/model"
    fake.future("/api/v1/asample", lambda _b: SAMPLE)
    copy.sample(PROMPT, 2, PARAMS).result(timeout=10)
    (body,) = fake.bodies("/api/v1/asample")
    assert body["seq_id"] >= 1 << 20  # a range of its own, apart from the original's
    assert fake.seen("/api/v1/create_session")[-1:] == fake.seen("/api/v1/create_session")[:1]


def test_a_bad_handle_is_a_value_error() -> None:
    from tinker.sampling_client import SamplingClient

    with pytest.raises(ValueError, match=r"handle is not a sampler handle"):
        SamplingClient.from_sampler_handle("bm90IGpzb24=", api_key=API_KEY)


def test_the_server_reason_of_a_pause_is_logged(
    sampler: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from tinker._poller import QueueState

    with caplog.at_level("WARNING", logger="tinker"):
        sampler.on_queue_state_change(QueueState.PAUSED_CAPACITY, "maintenance window")
    assert "Reason: maintenance window" in caplog.text


def test_observers_of_either_era_get_the_arguments_they_take() -> None:
    from tinker._poller import QueueState, QueueStateObserver, reason_passing
    from tinker.sampling_client import SamplingClient

    class Old(QueueStateObserver):
        def on_queue_state_change(self, queue_state: QueueState) -> None: ...

    class New(QueueStateObserver):
        def on_queue_state_change(
            self, queue_state: QueueState, queue_state_reason: str | None
        ) -> None: ...

    class KeywordOnly(QueueStateObserver):
        def on_queue_state_change(
            self, queue_state: QueueState, *, queue_state_reason: str | None = None
        ) -> None: ...

    class OtherName(QueueStateObserver):
        def on_queue_state_change(
            self, queue_state: QueueState, why: str | None = None
        ) -> None: ...

    assert [reason_passing(c) for c in (Old, New, KeywordOnly, OtherName, SamplingClient)] == [
        None,
        "keyword",
        "keyword",
        "positional",
        "keyword",
    ]


def test_a_trace_export_is_asked_for_until_it_is_ready(
    fake: FakeService,
    service: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr("tinker.rest_client.TRACE_EXPORT_POLL_SECONDS", 0.01)
    path = "/api/v1/sessions/S9/trace_export"
    fake.push(path, Reply(200, {"status": "pending"}), Reply(200, {"status": "pending"}))
    fake.direct("GET", path, lambda _b: {"status": "ready", "url": "https://x/t.pftrace"})
    rest = service.create_rest_client()
    with caplog.at_level("WARNING", logger="tinker"):
        assert rest.export_session_trace("S9").result(timeout=10) == "https://x/t.pftrace"
    assert len(fake.seen(path)) == 3
    assert caplog.text.count("Building trace export of session S9") == 1
    fake.push(path, Reply(200, {"status": "failed", "error": "no requests"}))
    with pytest.raises(RuntimeError, match="trace export of S9 failed: no requests"):
        rest.export_session_trace("S9").result(timeout=10)
