"""Persistence: a new server on the same data directory serves the old runs and checkpoints;
checkpoint TTLs expire."""

from __future__ import annotations

import pathlib
import time

import pytest

from tinker.local import serve
from tinker.local.server import engine as engine_module

from .conftest import FAST
from .fake_backend import FakeBackend
from .wire_client import WireClient, fwdbwd


def test_runs_and_checkpoints_survive_a_restart(tmp_path: pathlib.Path) -> None:
    data = tmp_path / "data"
    first_backend = FakeBackend()
    with serve(data_dir=data, backend=first_backend, config=FAST) as server:
        client = WireClient(server.url)
        session_id = client.session()
        model_id = client.model(session_id)
        client.run("forward_backward", fwdbwd(model_id, 1))
        client.run("optim_step", {"model_id": model_id, "seq_id": 2, "adam_params": {}})
        state = client.run("save_weights", {"model_id": model_id, "path": "state", "seq_id": 3})
        sampler = client.run(
            "save_weights_for_sampler", {"model_id": model_id, "path": "s", "seq_id": 4}
        )
        ephemeral = client.run(
            "save_weights_for_sampler",
            {"model_id": model_id, "sampling_session_seq_id": 0, "seq_id": 5},
        )
        trained = first_backend.trainers[0].adapter_tensors()

    backend = FakeBackend()
    with serve(data_dir=data, backend=backend, config=FAST) as server:
        client = WireClient(server.url)
        runs = client.get("training_runs").json()
        assert [r["training_run_id"] for r in runs["training_runs"]] == [model_id]
        run = client.get(f"training_runs/{model_id}").json()
        assert run["last_checkpoint"]["tinker_path"] == state["path"]
        listed = client.get("checkpoints").json()["checkpoints"]
        assert {c["tinker_path"] for c in listed} == {state["path"], sampler["path"]}
        assert client.get(f"sessions/{session_id}").json()["training_run_ids"] == [model_id]
        assert client.ok("get_info", {"model_id": model_id})["lora_rank"] == 4

        # the old run is not loaded, and says so
        stale = client.post("forward_backward", fwdbwd(model_id, 6))
        assert stale.status_code == 404 and "not loaded" in stale.json()["detail"]

        # re-create a training run from the checkpoint (weights_info, create_model, load_weights)
        info = client.ok("weights_info", {"tinker_path": state["path"]})
        new_session = client.session()
        new_model = client.model(new_session, rank=info["lora_rank"])
        body = {"model_id": new_model, "path": state["path"], "optimizer": True, "seq_id": 1}
        assert client.run("load_weights", body) == {"path": state["path"]}
        restored = backend.trainers[0].adapter_tensors()
        assert all(restored[name].tobytes() == trained[name].tobytes() for name in trained)
        assert backend.trainers[0].steps == 1

        # sample from the sampler checkpoint of the previous process
        sampler_id = client.ok(
            "create_sampling_session",
            {
                "session_id": new_session,
                "sampling_session_seq_id": 0,
                "model_path": sampler["path"],
            },
        )["sampling_session_id"]
        prompt = {"chunks": [{"tokens": [1, 2]}]}
        result = client.run(
            "asample",
            {
                "prompt": prompt,
                "sampling_params": {"max_tokens": 2},
                "sampling_session_id": sampler_id,
                "seq_id": 0,
            },
        )
        assert len(result["sequences"][0]["tokens"]) == 2

        # the old in-memory sampler is known but its weights are gone: a clear user failure
        old_sampler = ephemeral["sampling_session_id"]
        assert client.get(f"samplers/{old_sampler}").status_code == 200
        failed = client.run(
            "asample",
            {
                "prompt": prompt,
                "sampling_params": {},
                "sampling_session_id": old_sampler,
                "seq_id": 0,
            },
        )
        assert failed["category"] == "user" and "no longer kept" in failed["error"]


def test_checkpoint_ttl_expires_the_checkpoint(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve(data_dir=tmp_path, backend=FakeBackend(), config=FAST) as server:
        client = WireClient(server.url)
        model_id = client.model(client.session())
        body = {"model_id": model_id, "path": "short", "seq_id": 1, "ttl_seconds": 1}
        path = client.run("save_weights", body)["path"]
        listed = client.get(f"training_runs/{model_id}/checkpoints").json()["checkpoints"]
        assert listed[0]["expires_at"] is not None
        later = time.time() + 5
        monkeypatch.setattr(engine_module, "now", lambda: later)
        server.engine.maintain_once()
        assert client.get(f"training_runs/{model_id}/checkpoints").json()["checkpoints"] == []
        assert client.post("weights_info", {"tinker_path": path}).status_code == 404


def test_ttl_can_be_set_and_cleared_over_rest(client: WireClient) -> None:
    model_id = client.model(client.session())
    client.run("save_weights", {"model_id": model_id, "path": "keep", "seq_id": 1})
    url = f"{client.url}/api/v1/training_runs/{model_id}/checkpoints/weights/keep/ttl"
    assert client.http.put(url, json={"ttl_seconds": 3600}, timeout=10).status_code == 204
    listed = client.get(f"training_runs/{model_id}/checkpoints").json()["checkpoints"]
    assert listed[0]["expires_at"] is not None
    assert client.http.put(url, json={"ttl_seconds": None}, timeout=10).status_code == 204
    listed = client.get(f"training_runs/{model_id}/checkpoints").json()["checkpoints"]
    assert listed[0]["expires_at"] is None
    assert client.http.put(url, json={"ttl_seconds": "soon"}, timeout=10).status_code == 422
    assert client.http.put(url, json={"ttl_seconds": -5}, timeout=10).status_code == 400
    missing = url.replace("/keep/", "/nope/")
    assert client.http.put(missing, json={"ttl_seconds": 60}, timeout=10).status_code == 404


def test_a_poll_after_a_restart_says_how_to_resume(tmp_path: pathlib.Path) -> None:
    data = tmp_path / "data"
    with serve(data_dir=data, backend=FakeBackend(), config=FAST) as server:
        client = WireClient(server.url)
        model_id = client.model(client.session())
        saved = client.run("save_weights", {"model_id": model_id, "path": "state", "seq_id": 1})
        pending = client.submit("forward_backward", fwdbwd(model_id, 2))
    with serve(data_dir=data, backend=FakeBackend(), config=FAST) as server:
        lost = WireClient(server.url).post("retrieve_future", {"request_id": pending})
    assert lost.status_code == 404
    assert lost.json()["detail"] == (
        f"Future {pending!r} is unknown to this server: it was never submitted here, or the "
        "server restarted since then, losing the work in progress. To resume a training run, "
        "start from its last checkpoint: "
        f"create_training_client_from_state_with_optimizer({saved['path']!r})."
    )
