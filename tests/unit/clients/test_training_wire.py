"""TrainingClient on the wire: exact bodies, seq_id order, chunking, merged results."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from support.fake_service import FakeService

from tinker import types
from tinker._custom_loss import numpy_loss


def _datum(n: int = 3, offset: int = 0) -> types.Datum:
    tokens = list(range(offset, offset + n))
    return types.Datum(
        model_input=types.ModelInput.from_ints(tokens),
        loss_fn_inputs={"target_tokens": tokens, "weights": [1.0] * n},
    )


def _fb_result(body: dict[str, Any], key: str = "forward_backward_input") -> dict[str, Any]:
    data = body[key]["data"]
    outputs = [
        {
            "logprobs": {
                "data": [-0.5] * len(d["loss_fn_inputs"]["target_tokens"]["data"]),
                "dtype": "float32",
            }
        }
        for d in data
    ]
    return {
        "loss_fn_output_type": "CrossEntropyLossReturn",
        "loss_fn_outputs": outputs,
        "metrics": {"loss:sum": float(len(data)), "clock:unique": float(body["seq_id"])},
    }


@pytest.fixture
def fb_service(fake: FakeService) -> FakeService:
    fake.future("/api/v1/forward_backward", _fb_result)
    fake.future("/api/v1/forward", lambda b: _fb_result(b, "forward_input"))
    fake.future("/api/v1/optim_step", lambda _b: {"metrics": {"lr": 1.0}})
    return fake


def test_create_model_body_and_model_seq_ids(fake: FakeService, service: Any) -> None:
    first = service.create_lora_training_client("base/model")
    second = service.create_lora_training_client(
        "base/model", rank=4, seed=7, train_mlp=False, user_metadata={"k": "v"}
    )
    assert (first.model_id, second.model_id) == ("M0", "M1")
    # the creations run concurrently: model_seq_ids follow call order, requests need not
    bodies = sorted(fake.bodies("/api/v1/create_model"), key=lambda b: b["model_seq_id"])
    assert bodies == [
        {
            "session_id": "S",
            "model_seq_id": 0,
            "base_model": "base/model",
            "user_metadata": None,
            "lora_config": {
                "rank": 32,
                "seed": None,
                "train_unembed": True,
                "train_mlp": True,
                "train_attn": True,
            },
        },
        {
            "session_id": "S",
            "model_seq_id": 1,
            "base_model": "base/model",
            "user_metadata": {"k": "v"},
            "lora_config": {
                "rank": 4,
                "seed": 7,
                "train_unembed": True,
                "train_mlp": False,
                "train_attn": True,
            },
        },
    ]
    polls = fake.seen("/api/v1/retrieve_future")
    assert polls[0].headers["X-Tinker-Request-Type"] == "CreateModel"
    assert fake.seen("/api/v1/create_model")[0].headers["X-API-Key"]


def test_130_datums_go_out_as_128_and_2_then_optim_step(
    fb_service: FakeService, trainer: Any
) -> None:
    data = [_datum(3, i) for i in range(130)]
    fb = trainer.forward_backward(data, "cross_entropy")
    opt = trainer.optim_step(types.AdamParams(learning_rate=1e-3))
    result = fb.result(timeout=10)
    assert opt.result(timeout=10).metrics == {"lr": 1.0}
    bodies = fb_service.bodies("/api/v1/forward_backward")
    assert [b["seq_id"] for b in bodies] == [1, 2]
    assert [len(b["forward_backward_input"]["data"]) for b in bodies] == [128, 2]
    assert bodies[0]["model_id"] == "M0"
    assert bodies[0]["forward_backward_input"]["loss_fn"] == "cross_entropy"
    assert bodies[0]["forward_backward_input"]["loss_fn_config"] is None
    assert bodies[0]["forward_backward_input"]["data"][0] == {
        "model_input": {"chunks": [{"tokens": [0, 1, 2]}]},
        "loss_fn_inputs": {
            "target_tokens": {"data": [0, 1, 2], "dtype": "int64", "shape": [3]},
            "weights": {"data": [1.0, 1.0, 1.0], "dtype": "float32", "shape": [3]},
        },
    }
    assert fb_service.bodies("/api/v1/optim_step") == [
        {"adam_params": {"learning_rate": 0.001}, "model_id": "M0", "seq_id": 3}
    ]
    # submits reach the server in seq_id order
    creation = ("/api/v1/create_model", "/api/v1/get_info")
    submits = [c.path for c in fb_service.api_calls if c.path not in creation]
    assert submits == ["/api/v1/forward_backward"] * 2 + ["/api/v1/optim_step"]
    assert len(result.loss_fn_outputs) == 130
    assert result.loss_fn_output_type == "CrossEntropyLossReturn"
    assert result.metrics == {"loss:sum": 130.0, "clock:unique": 1.0, "clock:unique_1": 2.0}


def test_forward_uses_forward_input(fb_service: FakeService, trainer: Any) -> None:
    trainer.forward([_datum()], "cross_entropy", {"x": 1.0}).result(timeout=10)
    (body,) = fb_service.bodies("/api/v1/forward")
    assert set(body) == {"forward_input", "model_id", "seq_id"}
    assert body["forward_input"]["loss_fn_config"] == {"x": 1.0}
    assert body["seq_id"] == 1
    polls = fb_service.seen("/api/v1/retrieve_future")
    assert polls[-1].headers["X-Tinker-Request-Type"] == "Forward"


@pytest.mark.parametrize("method", ["forward_backward", "forward"])
def test_an_empty_batch_is_refused_in_the_callers_thread(
    fake: FakeService, trainer: Any, method: str
) -> None:
    before = len(fake.requests)
    with pytest.raises(ValueError, match=r"^No data provided$"):
        getattr(trainer, method)([], "cross_entropy")
    with pytest.raises(ValueError, match=r"^No data provided$"):
        trainer.forward_backward_custom([], lambda data, logprobs: (0.0, {}, []))
    assert len(fake.requests) == before


def test_checkpoint_operations_bodies(fake: FakeService, trainer: Any) -> None:
    fake.future("/api/v1/save_weights", lambda b: {"path": f"tinker://M0/weights/{b['path']}"})
    fake.future("/api/v1/load_weights", lambda b: {"path": b["path"]})
    fake.future(
        "/api/v1/save_weights_for_sampler",
        lambda b: (
            {"path": f"tinker://M0/sampler_weights/{b['path']}"}
            if "path" in b
            else {"path": None, "sampling_session_id": "S:sample:0"}
        ),
    )
    fake.future("/api/v1/unload_model", lambda b: {"model_id": b["model_id"]})
    assert trainer.save_state("c1").result(timeout=10).path == "tinker://M0/weights/c1"
    trainer.save_state("c2", ttl_seconds=3600).result(timeout=10)
    trainer.load_state("tinker://M0/weights/c1").result(timeout=10)
    trainer.load_state_with_optimizer("tinker://M0/weights/c1").result(timeout=10)
    saved = trainer.save_weights_for_sampler("s1").result(timeout=10)
    assert saved.path == "tinker://M0/sampler_weights/s1"
    sampler = trainer.save_weights_and_get_sampling_client()
    assert sampler.sampling_session_id == "S:sample:0"
    assert trainer.unload_model().result(timeout=10).model_id == "M0"
    assert fake.bodies("/api/v1/save_weights") == [
        {"model_id": "M0", "path": "c1", "seq_id": 1},
        {"model_id": "M0", "path": "c2", "seq_id": 2, "ttl_seconds": 3600},
    ]
    assert fake.bodies("/api/v1/load_weights") == [
        {"model_id": "M0", "path": "tinker://M0/weights/c1", "optimizer": False, "seq_id": 3},
        {"model_id": "M0", "path": "tinker://M0/weights/c1", "optimizer": True, "seq_id": 4},
    ]
    assert fake.bodies("/api/v1/save_weights_for_sampler") == [
        {"model_id": "M0", "path": "s1", "seq_id": 5},
        {"model_id": "M0", "sampling_session_seq_id": 0, "seq_id": 6},
    ]
    assert fake.bodies("/api/v1/unload_model") == [{"model_id": "M0"}]
    assert fake.bodies("/api/v1/create_sampling_session") == []


def test_get_info_and_tokenizer_id(fake: FakeService, trainer: Any) -> None:
    info = {
        "model_id": "M0",
        "model_data": {"arch": "x", "model_name": "base/model", "tokenizer_id": None},
        "is_lora": True,
        "lora_rank": 8,
        "model_name": "base/model",
    }
    fake.direct("POST", "/api/v1/get_info", lambda _b: info)
    got = trainer.get_info()
    assert (got.model_id, got.lora_rank, got.model_data.model_name) == ("M0", 8, "base/model")
    assert fake.bodies("/api/v1/get_info") == [{"model_id": "M0"}]


def test_failed_submit_does_not_block_later_ones(fake: FakeService, trainer: Any) -> None:
    fake.future("/api/v1/optim_step", lambda _b: {"metrics": None})
    fake.direct("POST", "/api/v1/save_weights", lambda _b: _bad_request())
    failed = trainer.save_state("x")
    ok = trainer.optim_step(types.AdamParams())
    with pytest.raises(Exception, match="400"):
        failed.result(timeout=10)
    assert ok.result(timeout=10).metrics is None
    assert fake.bodies("/api/v1/optim_step") == [{"adam_params": {}, "model_id": "M0", "seq_id": 2}]


def _bad_request() -> Any:
    from support.fake_service import Reply

    return Reply(400, {"detail": "bad"})


def test_custom_loss_sends_negative_gradient_as_weights(
    fb_service: FakeService, trainer: Any
) -> None:
    data = [_datum(2, 0), _datum(3, 5)]

    @numpy_loss
    def loss_fn(got: list[types.Datum], logprobs: list[np.ndarray]) -> Any:
        assert got == data
        loss = sum(float(np.sum(lp * np.arange(1, lp.size + 1))) for lp in logprobs)
        grads = [np.arange(1, lp.size + 1, dtype=np.float32) for lp in logprobs]
        return loss, {"mine:mean": 2.0}, grads

    result = trainer.forward_backward_custom(data, loss_fn).result(timeout=10)
    (forward,) = fb_service.bodies("/api/v1/forward")
    assert forward["seq_id"] == 1
    (backward,) = fb_service.bodies("/api/v1/forward_backward")
    assert backward["seq_id"] == 2
    sent = [d["loss_fn_inputs"] for d in backward["forward_backward_input"]["data"]]
    assert [s["weights"]["data"] for s in sent] == [[-1.0, -2.0], [-1.0, -2.0, -3.0]]
    assert [s["target_tokens"]["data"] for s in sent] == [[0, 1], [5, 6, 7]]
    assert result.metrics["loss:sum"] == pytest.approx(-0.5 * (3 + 6))
    assert result.metrics["surrogate_loss:sum"] == 2.0
    assert result.metrics["mine:mean"] == 2.0


def test_custom_loss_keeps_only_cross_entropy_inputs(fb_service: FakeService, trainer: Any) -> None:
    datum = types.Datum(
        model_input=types.ModelInput.from_ints([1, 2]),
        loss_fn_inputs={"target_tokens": [2, 3], "advantages": [0.5, 0.5]},
    )
    seen: list[Any] = []

    @numpy_loss
    def loss_fn(got: list[types.Datum], logprobs: list[np.ndarray]) -> Any:
        seen.extend(got)
        return 0.0, {}, [np.ones_like(lp) for lp in logprobs]

    trainer.forward_backward_custom([datum], loss_fn).result(timeout=10)
    assert seen == [datum]
    (forward,) = fb_service.bodies("/api/v1/forward")
    inputs = forward["forward_input"]["data"][0]["loss_fn_inputs"]
    assert set(inputs) == {"target_tokens", "weights"}
    assert inputs["weights"]["data"] == [0.0, 0.0]  # no weights given: zeros


def test_custom_loss_keeps_the_provenance_spans(fb_service: FakeService, trainer: Any) -> None:
    prompt = {"prompt_tokens": {"sequence_id": "s7", "offset": 0, "length": 2}}
    sampled = {"sampled_tokens": {"sequence_id": "s7", "offset": 1, "length": 2}}
    datum = types.Datum(
        model_input=types.ModelInput.from_ints([1, 2]),
        loss_fn_inputs={"target_tokens": [2, 3], "advantages": [0.5, 0.5]},
        model_input_spans=[prompt],
        loss_fn_input_spans=[sampled],
    )

    @numpy_loss
    def loss_fn(_got: list[types.Datum], logprobs: list[np.ndarray]) -> Any:
        return 0.0, {}, [np.ones_like(lp) for lp in logprobs]

    trainer.forward_backward_custom([datum], loss_fn).result(timeout=10)
    (forward,) = fb_service.bodies("/api/v1/forward")
    (backward,) = fb_service.bodies("/api/v1/forward_backward")
    for sent in (
        forward["forward_input"]["data"][0],
        backward["forward_backward_input"]["data"][0],
    ):
        assert (sent["model_input_spans"], sent["loss_fn_input_spans"]) == ([prompt], [sampled])


def test_get_tokenizer_uses_the_tokenizer_id_of_get_info(
    fake: FakeService, service: Any, tmp_path: Any
) -> None:
    import tokenizers
    from tokenizers import models, pre_tokenizers

    tok = tokenizers.Tokenizer(models.WordLevel({"a": 0, "b": 1, "<unk>": 2}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(tmp_path / "tokenizer.json"))
    info = {
        "model_id": "M0",
        "model_data": {"model_name": "tinker-local/tiny", "tokenizer_id": str(tmp_path)},
    }
    fake.direct("POST", "/api/v1/get_info", lambda _b: info)
    trainer = service.create_lora_training_client("base/model").result()
    tokenizer = trainer.get_tokenizer()
    assert tokenizer.encode("b a") == [1, 0]
    assert trainer.get_tokenizer() is tokenizer
    assert len(fake.seen("/api/v1/get_info")) == 1


def test_training_queue_state_warning(trainer: Any, caplog: pytest.LogCaptureFixture) -> None:
    from tinker._poller import QueueState

    with caplog.at_level("WARNING", logger="tinker"):
        trainer.on_queue_state_change(QueueState.PAUSED_CAPACITY)
        trainer.on_queue_state_change(QueueState.UNKNOWN)
    assert [r.getMessage() for r in caplog.records] == [
        "Training is paused for M0. Reason: out of capacity"
    ]


def test_custom_loss_async_twin(fb_service: FakeService, trainer: Any) -> None:
    import asyncio

    @numpy_loss
    def loss_fn(_data: list[types.Datum], logprobs: list[np.ndarray]) -> Any:
        return 1.5, {}, [np.full_like(lp, 0.5) for lp in logprobs]

    async def run() -> Any:
        future = await trainer.forward_backward_custom_async([_datum(2)], loss_fn)
        return await future

    result = asyncio.run(run())
    assert result.metrics["loss:sum"] == 1.5
    (backward,) = fb_service.bodies("/api/v1/forward_backward")
    assert backward["forward_backward_input"]["data"][0]["loss_fn_inputs"]["weights"]["data"] == [
        -0.5,
        -0.5,
    ]


def test_a_body_that_fails_to_build_releases_its_seq_id(
    fake: FakeService, trainer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.future("/api/v1/optim_step", lambda _b: {})

    def broken(**_kwargs: Any) -> Any:
        raise ValueError("cannot build")

    monkeypatch.setattr(types, "SaveWeightsRequest", broken)
    with pytest.raises(ValueError, match="cannot build"):
        trainer.save_state("x")
    trainer.optim_step(types.AdamParams()).result(timeout=10)
    assert fake.bodies("/api/v1/optim_step") == [{"adam_params": {}, "model_id": "M0", "seq_id": 2}]
    assert fake.bodies("/api/v1/save_weights") == []


def test_async_twins_return_once_submitted(fake: FakeService, trainer: Any) -> None:
    import asyncio

    fake.future("/api/v1/optim_step", lambda _b: {})
    fake.direct("POST", "/api/v1/save_weights", lambda _b: _bad_request())

    async def run() -> None:
        future = await trainer.optim_step_async(types.AdamParams(learning_rate=0.5))
        # the request is on the server when the coroutine returns
        assert fake.bodies("/api/v1/optim_step") == [
            {"adam_params": {"learning_rate": 0.5}, "model_id": "M0", "seq_id": 1}
        ]
        await future
        failing = await trainer.save_state_async("x")  # a failed submit is not raised here
        with pytest.raises(Exception, match="400"):
            await failing

    asyncio.run(run())


def test_forward_backward_custom_returns_at_once_and_keeps_its_place(
    fb_service: FakeService, trainer: Any
) -> None:
    import threading

    from tinker._custom_loss import numpy_loss

    release = threading.Event()

    def held_forward(body: dict[str, Any]) -> dict[str, Any]:
        release.wait(10)
        return _fb_result(body, "forward_input")

    fb_service.future("/api/v1/forward", held_forward)

    @numpy_loss
    def squared(_data: list[Any], logprobs: list[Any]) -> tuple[float, dict[str, float], list]:
        return (
            float(sum((lp.astype(float) ** 2).sum() for lp in logprobs)),
            {},
            [2 * lp for lp in logprobs],
        )

    custom = trainer.forward_backward_custom([_datum(2)], squared)
    assert not custom.done()  # nothing waited for the forward pass
    step = trainer.optim_step(types.AdamParams())
    release.set()
    output = custom.result(timeout=10)
    step.result(timeout=10)
    assert output.metrics["loss:sum"] == 0.5  # the user's loss: 2 * 0.25
    assert output.metrics["surrogate_loss:sum"] == 1.0
    (backward,) = fb_service.bodies("/api/v1/forward_backward")
    weights = backward["forward_backward_input"]["data"][0]["loss_fn_inputs"]["weights"]
    assert weights["data"] == [1.0, 1.0]  # -dloss/dlogprobs = -2 * -0.5
    # forward, backward, optim_step: seq ids taken at call time, sent in that order
    creation = ("/api/v1/create_model", "/api/v1/get_info")
    sent = [(c.path, c.body["seq_id"]) for c in fb_service.api_calls if c.path not in creation]
    assert sent == [
        ("/api/v1/forward", 1),
        ("/api/v1/forward_backward", 2),
        ("/api/v1/optim_step", 3),
    ]


def test_a_failed_custom_loss_poisons_the_client(fb_service: FakeService, trainer: Any) -> None:
    import pickle

    from tinker._custom_loss import numpy_loss

    @numpy_loss
    def broken(_data: list[Any], _logprobs: list[Any]) -> tuple[float, dict[str, float], list]:
        raise ArithmeticError("the loss failed")

    custom = trainer.forward_backward_custom([_datum(2)], broken)
    queued = trainer.optim_step(types.AdamParams())  # queued behind the backward pass
    with pytest.raises(ArithmeticError, match="the loss failed"):
        custom.result(timeout=10)
    later = trainer.forward_backward([_datum(2)], "cross_entropy")
    message = (
        r"this TrainingClient is poisoned: a previous custom loss \(forward_backward_custom\) "
        r"failed \(ArithmeticError: the loss failed\), so no later training request of M0 "
        r"can run; create a new TrainingClient \(from your last saved state to continue\)"
    )
    for future in (queued, later):
        with pytest.raises(RuntimeError, match=message) as failed:
            future.result(timeout=10)
        assert isinstance(failed.value.__cause__, ArithmeticError)
    with pytest.raises(RuntimeError, match="poisoned"):
        pickle.dumps(trainer)  # a copy would go on with seq ids the server holds back
    # the server never sees a request after the forward pass (seq id 1)
    assert [r.path for r in fb_service.api_calls if "seq_id" in (r.body or {})] == [
        "/api/v1/forward"
    ]


def test_a_failed_forward_pass_of_a_custom_loss_poisons_the_client(
    fb_service: FakeService, trainer: Any
) -> None:
    fb_service.push("/api/v1/forward", _bad_request())
    custom = trainer.forward_backward_custom(
        [_datum(2)], numpy_loss(lambda _d, lps: (0.0, {}, [np.ones_like(lp) for lp in lps]))
    )
    with pytest.raises(Exception, match="400"):
        custom.result(timeout=10)
    with pytest.raises(RuntimeError, match=r"poisoned: .* failed \(BadRequestError: "):
        trainer.optim_step(types.AdamParams()).result(timeout=10)
    assert fb_service.bodies("/api/v1/optim_step") == []


def test_a_backward_pass_that_fails_to_build_poisons_the_client(
    fb_service: FakeService, trainer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = trainer._forward_like

    def refuse_backward(*args: Any, backward: bool, **kwargs: Any) -> Any:
        if backward:
            raise ValueError("logprobs do not match the targets")
        return build(*args, backward=backward, **kwargs)

    monkeypatch.setattr(trainer, "_forward_like", refuse_backward)
    custom = trainer.forward_backward_custom(
        [_datum(2)], numpy_loss(lambda _d, lps: (0.0, {}, [np.ones_like(lp) for lp in lps]))
    )
    later = trainer.optim_step(types.AdamParams())  # waits for the backward's seq id
    with pytest.raises(ValueError, match="logprobs do not match"):
        custom.result(timeout=10)
    with pytest.raises(RuntimeError, match=r"poisoned: .*\(ValueError: logprobs do not match"):
        later.result(timeout=10)  # fails at once instead of waiting for the seq id
    assert fb_service.bodies("/api/v1/optim_step") == []


def test_cancelling_a_custom_loss_poisons_the_client_and_sends_no_backward_pass(
    fb_service: FakeService, trainer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    entered, release, finished = threading.Event(), threading.Event(), threading.Event()

    @numpy_loss
    def slow(_data: list[types.Datum], logprobs: list[np.ndarray]) -> Any:
        entered.set()
        release.wait(10)
        return 0.0, {}, [np.ones_like(lp) for lp in logprobs]

    backward = trainer._custom_backward

    def tracked(*args: Any) -> Any:
        try:
            return backward(*args)
        finally:
            finished.set()

    monkeypatch.setattr(trainer, "_custom_backward", tracked)
    custom = trainer.forward_backward_custom([_datum(2)], slow)
    assert entered.wait(10)
    assert custom.cancel()
    release.set()
    assert finished.wait(10)
    with pytest.raises(RuntimeError, match=r"\(CancelledError: forward_backward_custom was cancel"):
        trainer.optim_step(types.AdamParams()).result(timeout=10)
    assert fb_service.bodies("/api/v1/forward_backward") == []
    assert fb_service.bodies("/api/v1/optim_step") == []
