"""Training runs over real HTTP with the fake backend: create_model, get_info, the training
operations and their order by seq_id, idempotent submits, failures, unloading."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tinker import _wire, types

from .fake_backend import FakeBackend
from .wire_client import WireClient, datum, fwdbwd


def test_create_model_future_and_get_info(client: WireClient, backend: FakeBackend) -> None:
    session_id = client.session()
    body = {"session_id": session_id, "model_seq_id": 0, "base_model": "fake/tiny"}
    submitted = client.ok("create_model", body)
    model_id = f"{session_id}:train:0"
    assert submitted == {"request_id": f"{model_id}:0", "model_id": model_id}
    assert client.ok("create_model", body) == submitted  # a retried submit: same future
    assert client.result(submitted["request_id"]) == {"model_id": model_id}
    assert backend.calls.count("create_model") == 1
    assert backend.trainers[0].rank == 32  # lora_config left out: the protocol default
    info = client.ok("get_info", {"model_id": model_id})
    assert info == {
        "type": "get_info",
        "model_id": model_id,
        "model_data": {
            "arch": "fake",
            "model_name": "fake/tiny",
            "tokenizer_id": "/tokenizers/fake/tiny",
        },
        "is_lora": True,
        "lora_rank": 32,
        "model_name": "fake/tiny",
        "optimizer_config": {"type": "adamw"},
    }
    _wire.structure(info, types.GetInfoResponse)


def test_unknown_base_model_is_400_listing_known_models(client: WireClient) -> None:
    session_id = client.session()
    response = client.post(
        "create_model", {"session_id": session_id, "model_seq_id": 0, "base_model": "gpt-9"}
    )
    assert response.status_code == 400
    assert "'gpt-9'" in response.json()["detail"]
    assert "fake/tiny" in response.json()["detail"]


def test_lora_rank_is_limited_to_the_documented_maximum(client: WireClient) -> None:
    session_id = client.session()
    body = {
        "session_id": session_id,
        "model_seq_id": 0,
        "base_model": "fake/tiny",
        "lora_config": {"rank": 129},
    }
    response = client.post("create_model", body)
    assert response.status_code == 400
    assert response.json() == {"detail": "lora_config.rank must be between 1 and 128, got 129."}
    assert client.model(session_id, seq=1, rank=128).endswith(":train:1")


def test_forward_backward_output_matches_the_protocol(client: WireClient) -> None:
    model_id = client.model(client.session())
    data = [datum([1, 2, 3]), datum([4, 5, 6, 7], weights=[1.0, 0.5, 0.0, 2.0])]
    result = client.run("forward_backward", fwdbwd(model_id, 1, data))
    assert result["loss_fn_output_type"] == "CrossEntropyLossReturn"
    assert len(result["loss_fn_outputs"]) == 2
    for output, length in zip(result["loss_fn_outputs"], (3, 4), strict=True):
        assert set(output) == {"logprobs", "elementwise_loss"}
        for tensor in output.values():
            assert set(tensor) == {"data", "dtype", "shape"}
            assert tensor["dtype"] == "float32" and tensor["shape"] == [length]
    assert all(key.count(":") == 1 for key in result["metrics"])
    assert {"loss:sum", "clock_cycle:unique"} <= set(result["metrics"])
    parsed = _wire.structure(result, types.ForwardBackwardOutput)
    assert parsed.loss_fn_outputs[1]["elementwise_loss"].data[2] == 0.0


def test_training_ops_execute_in_seq_id_order_when_they_arrive_backwards(
    client: WireClient, backend: FakeBackend
) -> None:
    model_id = client.model(client.session())
    bodies: dict[int, tuple[str, dict[str, Any]]] = {
        1: ("forward_backward", fwdbwd(model_id, 1)),
        2: (
            "forward",
            {
                "model_id": model_id,
                "seq_id": 2,
                "forward_input": {"data": [datum([1, 2])], "loss_fn": "cross_entropy"},
            },
        ),
        3: ("optim_step", {"model_id": model_id, "seq_id": 3, "adam_params": {}}),
    }
    request_ids: dict[int, str] = {}
    arrived = {seq: threading.Event() for seq in bodies}

    def send(seq: int) -> None:
        if seq < 3:
            assert arrived[seq + 1].wait(10)  # seq 3 arrives first, then 2, then 1
        endpoint, body = bodies[seq]
        request_ids[seq] = client.submit(endpoint, body)
        arrived[seq].set()

    threads = [threading.Thread(target=send, args=(seq,)) for seq in (1, 2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert request_ids == {seq: f"{model_id}:{seq}" for seq in (1, 2, 3)}
    assert client.result(request_ids[3]) == {"metrics": {"step": 1.0}}
    assert backend.calls == ["create_model", "forward_backward", "forward", "optim_step"]


def test_duplicate_seq_id_returns_the_same_future_and_runs_once(
    client: WireClient, backend: FakeBackend
) -> None:
    model_id = client.model(client.session())
    first = client.ok("forward_backward", fwdbwd(model_id, 1))
    second = client.ok("forward_backward", fwdbwd(model_id, 1))
    assert first == second == {"request_id": f"{model_id}:1", "model_id": model_id}
    assert client.result(first["request_id"]) == client.result(second["request_id"])
    assert backend.calls.count("forward_backward") == 1


def test_a_missing_seq_id_is_skipped_after_the_gap_bound(client: WireClient) -> None:
    model_id = client.model(client.session())
    client.run("forward_backward", fwdbwd(model_id, 1))
    # seq 2 never arrives; seq 3 still runs once the gap wait (0.3 s here) is over
    result = client.run("optim_step", {"model_id": model_id, "seq_id": 3, "adam_params": {}})
    assert result == {"metrics": {"step": 1.0}}


def test_failures_come_back_as_200_with_a_category(client: WireClient) -> None:
    model_id = client.model(client.session())
    bad = fwdbwd(
        model_id, 1, [{"model_input": {"chunks": [{"tokens": [1]}]}, "loss_fn_inputs": {}}]
    )
    result = client.run("forward_backward", bad)
    assert result == {"error": "datum 0: missing target_tokens", "category": "user"}
    crash = fwdbwd(model_id, 2)
    crash["forward_backward_input"]["loss_fn_config"] = {"explode": 1.0}
    result = client.run("forward_backward", crash)
    assert result["category"] == "server"
    assert "the fake backend exploded" in result["error"]
    assert client.run("forward_backward", fwdbwd(model_id, 3))["metrics"]["loss:sum"] > 0


def test_a_result_holding_nan_fails_instead_of_sending_invalid_json(client: WireClient) -> None:
    model_id = client.model(client.session())
    diverged = fwdbwd(model_id, 1)
    diverged["forward_backward_input"]["loss_fn_config"] = {"diverge": 1.0}
    assert client.run("forward_backward", diverged) == {
        "error": "The result holds a value JSON cannot carry (has training diverged?): cannot "
        "send $.loss_fn_outputs[0].logprobs.data[0] = nan: NaN and Infinity are not valid JSON",
        "category": "server",
    }
    assert client.run("forward_backward", fwdbwd(model_id, 2))["metrics"]["loss:sum"] > 0


def test_optim_step_applies_server_side_defaults(client: WireClient, backend: FakeBackend) -> None:
    model_id = client.model(client.session())
    client.run("forward_backward", fwdbwd(model_id, 1))
    before = backend.trainers[0].adapter_tensors()
    body = {"model_id": model_id, "seq_id": 2, "adam_params": {"weight_decay": 0.0, "new": 1}}
    assert client.run("optim_step", body) == {"metrics": {"step": 1.0}}
    after = backend.trainers[0].adapter_tensors()
    name = next(iter(before))
    assert before[name] - after[name] == pytest.approx(1e-4, rel=1e-2)  # default lr x grad 1


def test_unload_model_drops_the_run(client: WireClient) -> None:
    model_id = client.model(client.session())
    assert client.run("unload_model", {"model_id": model_id}) == {
        "model_id": model_id,
        "type": "unload_model",
    }
    response = client.post("forward_backward", fwdbwd(model_id, 1))
    assert response.status_code == 404
    assert "not loaded" in response.json()["detail"]


def test_unload_fails_the_requests_still_queued(client: WireClient, backend: FakeBackend) -> None:
    model_id = client.model(client.session())
    backend.gate.clear()
    backend.entered.clear()
    try:
        running = client.submit("forward_backward", fwdbwd(model_id, 1))
        assert backend.entered.wait(10)  # seq 1 is running (held at the gate)
        queued = client.submit("forward_backward", fwdbwd(model_id, 3))
        unload = client.submit("unload_model", {"model_id": model_id})
    finally:
        backend.gate.set()
    assert "loss_fn_outputs" in client.result(running)
    assert client.result(unload)["model_id"] == model_id
    assert client.result(queued) == {
        "error": f"Model {model_id!r} was unloaded before this request ran.",
        "category": "user",
    }


def test_training_on_an_unknown_model_is_404(client: WireClient) -> None:
    response = client.post("forward_backward", fwdbwd("nobody:train:0", 1))
    assert response.status_code == 404
    assert response.json() == {"detail": "Model 'nobody:train:0' not found."}
