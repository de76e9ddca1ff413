"""Training in the 0.38 protocol: load_weights that creates the model, optimizer families,
save_weights without overwrite, and server-side custom losses."""

from __future__ import annotations

from typing import Any

import numpy as np

from tinker import types
from tinker._wire import proto

from .fake_backend import FakeBackend
from .wire_client import WireClient, fwdbwd


def _trained(client: WireClient, session_id: str, **create: Any) -> str:
    """A run of `session_id` after one forward_backward and one optim step."""
    body = {
        "session_id": session_id,
        "model_seq_id": 0,
        "base_model": "fake/tiny",
        "lora_config": {"rank": 4, "seed": 1},
        "type": "create_model",
        **create,
    }
    model_id = str(client.run("create_model", body)["model_id"])
    client.run("forward_backward", fwdbwd(model_id, 1))
    optimizer = (create.get("optimizer_config") or {}).get("type", "adamw")
    params = (
        {
            "optimizer_params": {
                "type": "dimuon",
                "learning_rate": 0.01,
                "grad_clip_norm": 0.0,
                "beta1": 0.9,
            }
        }
        if optimizer == "dimuon"
        else {"adam_params": {"learning_rate": 0.01}}
    )
    client.run("optim_step", {"model_id": model_id, "seq_id": 2, "type": "optim_step", **params})
    return model_id


def _load(session_id: str, model_seq_id: int, path: str, **extra: Any) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "model_seq_id": model_seq_id,
        "path": path,
        "optimizer": False,
        "type": "load_weights",
        **extra,
    }


def test_load_weights_creates_the_model_from_a_checkpoint(
    client: WireClient, backend: FakeBackend
) -> None:
    session_id = client.session()
    source = _trained(client, session_id)
    path = client.run("save_weights", {"model_id": source, "path": "state", "seq_id": 3})["path"]
    saved = backend.trainers[-1].adapter_tensors()
    submitted = client.ok("load_weights", _load(session_id, 1, path))
    model_id = f"{session_id}:train:1"
    assert submitted == {"request_id": f"{model_id}:0", "model_id": model_id}
    assert client.ok("load_weights", _load(session_id, 1, path)) == submitted  # a retry
    assert client.result(submitted["request_id"]) == {"path": path}
    loaded = backend.trainers[-1]
    assert loaded.rank == 4 and loaded.steps == 0  # the checkpoint's rank; a fresh optimizer
    for name, tensor in saved.items():
        np.testing.assert_array_equal(loaded.weights[name], tensor)
    info = client.ok("get_info", {"model_id": model_id, "type": "get_info"})
    assert (info["model_id"], info["lora_rank"], info["optimizer_config"]) == (
        model_id,
        4,
        {"type": "adamw"},
    )
    client.run("forward_backward", fwdbwd(model_id, 1))  # it trains like any other run
    with_state = client.run("load_weights", _load(session_id, 2, path, optimizer=True))
    assert with_state == {"path": path} and backend.trainers[-1].steps == 1


def test_create_via_load_refuses_what_does_not_fit(client: WireClient) -> None:
    session_id = client.session()
    source = _trained(client, session_id)
    path = client.run("save_weights", {"model_id": source, "path": "state", "seq_id": 3})["path"]
    cases = [
        (
            {"base_model": "fake/small"},
            400,
            "was trained on 'fake/tiny'; it cannot be loaded onto 'fake/small'",
        ),
        (
            {"optimizer": True, "optimizer_config": {"type": "adamw"}},
            400,
            "optimizer_config cannot be given",
        ),
        ({"optimizer_config": {"type": "sgd"}}, 400, "optimizer type 'sgd' is not supported"),
    ]
    for extra, status, text in cases:
        answer = client.post("load_weights", _load(session_id, 5, path, **extra))
        assert answer.status_code == status and text in answer.json()["detail"], (
            extra,
            answer.text,
        )
    missing = client.post("load_weights", _load(session_id, 5, f"tinker://{source}/weights/gone"))
    assert missing.status_code == 404 and "not found" in missing.text
    neither = client.post("load_weights", {"path": path})
    assert neither.status_code == 422 and "needs model_id" in neither.text


def test_optimizer_families_are_fixed_at_creation(client: WireClient) -> None:
    session_id = client.session()
    model_id = _trained(client, session_id, optimizer_config={"type": "dimuon", "version": 1})
    info = client.ok("get_info", {"model_id": model_id})
    assert info["optimizer_config"] == {"type": "dimuon", "version": 1}
    adam = client.post(
        "optim_step", {"model_id": model_id, "seq_id": 3, "adam_params": {"learning_rate": 0.1}}
    )
    assert adam.status_code == 400 and adam.json()["detail"] == "adamw params for a dimuon run"
    neither = client.post("optim_step", {"model_id": model_id, "seq_id": 3})
    assert neither.status_code == 422
    path = client.run("save_weights", {"model_id": model_id, "path": "d", "seq_id": 3})["path"]
    client.run("load_weights", _load(session_id, 1, path, optimizer=True))
    restored = client.ok("get_info", {"model_id": f"{session_id}:train:1"})
    assert restored["optimizer_config"] == {"type": "dimuon", "version": 1}  # from its state
    refused = client.post(
        "create_model",
        {
            "session_id": session_id,
            "model_seq_id": 9,
            "base_model": "fake/tiny",
            "optimizer_config": {"type": "sgd"},
        },
    )
    assert refused.status_code == 400 and "optimizer type 'sgd' is not supported" in refused.text


def test_save_weights_without_overwrite_keeps_the_existing_checkpoint(client: WireClient) -> None:
    model_id = client.model(client.session())
    client.run(
        "save_weights", {"model_id": model_id, "path": "once", "seq_id": 1, "overwrite": False}
    )
    again = client.run(
        "save_weights", {"model_id": model_id, "path": "once", "seq_id": 2, "overwrite": False}
    )
    assert again["category"] == "user" and "already exists" in again["error"]
    replaced = client.run(
        "save_weights", {"model_id": model_id, "path": "once", "seq_id": 3, "overwrite": True}
    )
    assert replaced == {"path": f"tinker://{model_id}/weights/once"}
    old_client = client.run("save_weights", {"model_id": model_id, "path": "once", "seq_id": 4})
    assert old_client == replaced  # 0.5.1 clients send no overwrite: a save replaces


def test_custom_losses_belong_to_their_session(client: WireClient) -> None:
    session_id = client.session()
    model_id = client.model(session_id)
    body = {
        "session_id": session_id,
        "custom_loss_seq_id": 0,
        "name": "my_loss",
        "inputs": [{"name": "logprobs", "rank": 1}],
        "graph": {
            "format": 1,
            "nodes": [
                {"op": "output", "name": "output", "target": "output", "args": [], "kwargs": {}}
            ],
        },
        "type": "create_custom_loss",
    }
    created = client.run("create_custom_loss", body)
    loss_id = f"{session_id}:loss:0"
    assert created == {"loss_id": loss_id, "type": "create_custom_loss"}
    datum = types.Datum(
        model_input=types.ModelInput.from_ints([1, 2, 3]),
        loss_fn_inputs={"target_tokens": [2, 3, 0], "weights": [1.0, 1.0, 1.0]},
    )
    call = proto.ForwardBackwardCall(model_id, 1, [datum], "custom", {"loss_id": loss_id})
    assert client.forward_proto(call).loss_fn_outputs
    other = proto.ForwardBackwardCall(
        model_id, 2, [datum], "custom", {"loss_id": f"{client.session()}:loss:0"}
    )
    refused = client.post_proto("forward_backward", proto.encode_forward_backward_request(other))
    assert refused.status_code == 400 and "create_custom_loss in this session" in refused.text
    empty = client.run(
        "create_custom_loss", {**body, "custom_loss_seq_id": 1, "graph": {"format": 1, "nodes": []}}
    )
    assert empty == {"error": "custom loss graph has no nodes", "category": "user"}
