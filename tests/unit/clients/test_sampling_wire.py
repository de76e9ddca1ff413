"""SamplingClient on the wire: bodies, backpressure header, 429 and 410 resubmits, pickling."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from support.fake_service import FakeService, Reply

from tinker import types
from tinker._retry import RetryConfig

from .conftest import API_KEY

SAMPLE = {
    "sequences": [{"tokens": [5, 6], "logprobs": [-0.5, -0.25], "stop_reason": "length"}],
    "prompt_logprobs": [None, -3.0, -0.5],
}


@pytest.fixture
def sampler(fake: FakeService, service: Any) -> Any:
    fake.direct(
        "POST",
        "/api/v1/create_sampling_session",
        lambda b: {"sampling_session_id": f"S:sample:{b['sampling_session_seq_id']}"},
    )
    return service.create_sampling_client(base_model="base/model").result()


def test_create_sampling_session_bodies(fake: FakeService, service: Any, sampler: Any) -> None:
    other = service.create_sampling_client(model_path="tinker://M0/sampler_weights/s")
    assert (sampler.sampling_session_id, other.sampling_session_id) == ("S:sample:0", "S:sample:1")
    assert fake.bodies("/api/v1/create_sampling_session") == [
        {
            "session_id": "S",
            "sampling_session_seq_id": 0,
            "base_model": "base/model",
            "model_path": None,
        },
        {
            "session_id": "S",
            "sampling_session_seq_id": 1,
            "base_model": None,
            "model_path": "tinker://M0/sampler_weights/s",
        },
    ]


def test_sample_body_and_header(fake: FakeService, sampler: Any) -> None:
    fake.future("/api/v1/asample", lambda _b: SAMPLE)
    prompt = types.ModelInput.from_ints([1, 2, 3])
    params = types.SamplingParams(max_tokens=4, stop=[13], temperature=0.7)
    first = sampler.sample(prompt, 2, params, include_prompt_logprobs=True, topk_prompt_logprobs=2)
    response = first.result(timeout=10)
    sampler.sample(prompt, 1, types.SamplingParams()).result(timeout=10)
    assert response.sequences[0].tokens == [5, 6]
    assert response.sequences[0].stop_reason == "length"
    calls = fake.seen("/api/v1/asample")
    assert [c.body for c in calls] == [
        {
            "num_samples": 2,
            "prompt": {"chunks": [{"tokens": [1, 2, 3]}]},
            "sampling_params": {"max_tokens": 4, "stop": [13], "temperature": 0.7},
            "sampling_session_id": "S:sample:0",
            "seq_id": 0,
            "prompt_logprobs": True,
            "topk_prompt_logprobs": 2,
        },
        {
            "num_samples": 1,
            "prompt": {"chunks": [{"tokens": [1, 2, 3]}]},
            "sampling_params": {},
            "sampling_session_id": "S:sample:0",
            "seq_id": 1,
            "prompt_logprobs": False,
            "topk_prompt_logprobs": 0,
        },
    ]
    assert all(c.headers["X-Tinker-Sampling-Backpressure"] == "1" for c in calls)


def test_compute_logprobs(fake: FakeService, sampler: Any) -> None:
    fake.future("/api/v1/asample", lambda _b: SAMPLE)
    prompt = types.ModelInput.from_ints([1, 2, 3])
    assert sampler.compute_logprobs(prompt).result(timeout=10) == [None, -3.0, -0.5]
    (body,) = fake.bodies("/api/v1/asample")
    assert body["sampling_params"] == {"max_tokens": 1}
    assert (body["num_samples"], body["prompt_logprobs"], body["topk_prompt_logprobs"]) == (
        1,
        True,
        0,
    )


def test_429_backs_off_and_resubmits_with_a_new_seq_id(fake: FakeService, sampler: Any) -> None:
    answers = iter([Reply(429, {"detail": "slow down"})])
    fake.direct("POST", "/api/v1/asample", lambda _b: next(answers, {"request_id": "ok"}))
    fake.script_polls("ok", [Reply(body=SAMPLE)])
    result = sampler.sample(types.ModelInput.from_ints([1]), 1, types.SamplingParams())
    assert result.result(timeout=10).sequences[0].tokens == [5, 6]
    assert [b["seq_id"] for b in fake.bodies("/api/v1/asample")] == [0, 1]


def test_410_while_polling_resubmits_the_sample(fake: FakeService, service: Any) -> None:
    fake.direct(
        "POST", "/api/v1/create_sampling_session", lambda _b: {"sampling_session_id": "S:sample:0"}
    )
    fast = RetryConfig(retry_delay_base=0.01, retry_delay_max=0.02)
    sampler = service.create_sampling_client(base_model="b", retry_config=fast)
    attempts = iter([[Reply(410, {"detail": "expired"})], [Reply(body=SAMPLE)]])
    fake.future("/api/v1/asample", lambda _b: next(attempts))
    response = sampler.sample(types.ModelInput.from_ints([1]), 1, types.SamplingParams())
    assert response.result(timeout=10).sequences[0].tokens == [5, 6]
    assert [b["seq_id"] for b in fake.bodies("/api/v1/asample")] == [0, 1]


def test_request_failed_is_not_retried(fake: FakeService, sampler: Any) -> None:
    fake.future("/api/v1/asample", lambda _b: {"error": "bad prompt", "category": "user"})
    from tinker.errors import RequestFailedError

    future = sampler.sample(types.ModelInput.from_ints([1]), 1, types.SamplingParams())
    with pytest.raises(RequestFailedError, match="bad prompt"):
        future.result(timeout=10)
    assert len(fake.bodies("/api/v1/asample")) == 1


def test_pickle_reattaches_without_a_new_session(fake: FakeService, sampler: Any) -> None:
    assert API_KEY not in repr(sampler)
    assert API_KEY not in repr(sampler.handle())
    blob = pickle.dumps(sampler)
    assert len(blob) < 4000
    clone = pickle.loads(blob)
    assert clone.sampling_session_id == sampler.sampling_session_id
    assert clone.holder is sampler.holder  # same process: the open runtime is reused
    assert len(fake.seen("/api/v1/create_session")) == 1


def test_queue_state_warning_is_debounced(sampler: Any, caplog: pytest.LogCaptureFixture) -> None:
    from tinker._poller import QueueState

    with caplog.at_level("WARNING", logger="tinker"):
        sampler.on_queue_state_change(QueueState.ACTIVE)
        sampler.on_queue_state_change(QueueState.PAUSED_RATE_LIMIT)
        sampler.on_queue_state_change(QueueState.PAUSED_CAPACITY)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "Sampling is paused for sampler S:sample:0. Reason: concurrent LoRA rate limit hit"
    ]


def test_async_sampling_from_fresh_loops(fake: FakeService, sampler: Any) -> None:
    import asyncio

    fake.future("/api/v1/asample", lambda _b: SAMPLE)
    prompt = types.ModelInput.from_ints([1, 2, 3])
    response = asyncio.run(sampler.sample_async(prompt, 1, types.SamplingParams(max_tokens=2)))
    assert response.sequences[0].tokens == [5, 6]
    assert asyncio.run(sampler.compute_logprobs_async(prompt)) == [None, -3.0, -0.5]
    assert [b["seq_id"] for b in fake.bodies("/api/v1/asample")] == [0, 1]


def test_get_tokenizer_asks_for_the_base_model_when_unknown(
    fake: FakeService, service: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys
    import types as pytypes

    import tokenizers
    from tokenizers import models, pre_tokenizers

    import tinker.tokenizer as tokenizer_module
    from tinker.sampling_client import SamplingClient

    tok = tokenizers.Tokenizer(models.WordLevel({"x": 0, "y": 1, "<unk>": 2}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(tmp_path / "tokenizer.json"))
    fake_models = pytypes.ModuleType("tinker.local.models")
    fake_models.TOKENIZER_DIR = tmp_path  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tinker.local.models", fake_models)
    monkeypatch.setattr(tokenizer_module, "_cache", {})
    fake.direct(
        "GET",
        "/api/v1/samplers/S:sample:7",
        lambda _b: {"sampler_id": "S:sample:7", "base_model": "tinker-local/tiny"},
    )
    client = SamplingClient(service.holder, sampling_session_id="S:sample:7")
    assert client.get_tokenizer().encode("y x") == [1, 0]
    assert client.get_tokenizer() is client.get_tokenizer()
    assert len(fake.seen("/api/v1/samplers/S:sample:7")) == 1


def test_retries_still_fire_in_a_forked_child(fake: FakeService, service: Any) -> None:
    import faulthandler
    import os

    fake.direct(
        "POST", "/api/v1/create_sampling_session", lambda _b: {"sampling_session_id": "S:sample:0"}
    )
    fast = RetryConfig(retry_delay_base=0.01, retry_delay_max=0.02)
    sampler = service.create_sampling_client(base_model="b", retry_config=fast)
    # the parent uses the timer thread before forking
    sampler.holder.timers.call_later(0.0, lambda: None)
    attempts = iter([[Reply(410, {"detail": "expired"})], [Reply(body=SAMPLE)]])
    fake.future("/api/v1/asample", lambda _b: next(attempts))
    pid = os.fork()
    if pid == 0:  # child: the first attempt expires, the retry must run on a live timer thread
        code = 1
        faulthandler.dump_traceback_later(30, exit=True)  # never hang the test run
        try:
            future = sampler.sample(types.ModelInput.from_ints([1]), 1, types.SamplingParams())
            code = 0 if future.result(timeout=20).sequences[0].tokens == [5, 6] else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_static_create(fake: FakeService, service: Any, sampler: Any) -> None:
    from tinker.sampling_client import SamplingClient

    existing = SamplingClient.create(service.holder, sampling_session_id="S:sample:5")
    assert existing.result(timeout=1).sampling_session_id == "S:sample:5"
    before = len(fake.bodies("/api/v1/create_sampling_session"))
    created = SamplingClient.create(service.holder, base_model="base/model").result(timeout=10)
    assert created.sampling_session_id == "S:sample:1"
    assert len(fake.bodies("/api/v1/create_sampling_session")) == before + 1
