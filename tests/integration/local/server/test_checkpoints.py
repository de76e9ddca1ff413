"""Checkpoints over real HTTP: save/load, sampler weights, REST listing, publish, archives."""

from __future__ import annotations

import email.utils
import io
import tarfile
import time

import numpy as np
import requests
from safetensors.numpy import load as load_safetensors

from tinker import _wire, types

from .fake_backend import FakeBackend
from .wire_client import WireClient, fwdbwd


def _trained(client: WireClient) -> tuple[str, str]:
    session_id = client.session()
    model_id = client.model(session_id)
    client.run("forward_backward", fwdbwd(model_id, 1))
    client.run("optim_step", {"model_id": model_id, "seq_id": 2, "adam_params": {}})
    return session_id, model_id


def test_save_and_load_weights_round_trip(client: WireClient, backend: FakeBackend) -> None:
    session_id, model_id = _trained(client)
    saved = client.run("save_weights", {"model_id": model_id, "path": "ckpt1", "seq_id": 3})
    assert saved == {"path": f"tinker://{model_id}/weights/ckpt1"}
    info = client.ok("weights_info", {"tinker_path": saved["path"]})
    assert info == {"base_model": "fake/tiny", "is_lora": True, "lora_rank": 4}

    other = client.model(session_id, seq=1)
    body = {"model_id": other, "path": saved["path"], "optimizer": True, "seq_id": 1}
    assert client.run("load_weights", body) == {"path": saved["path"]}
    source, target = backend.trainers
    for name, array in source.adapter_tensors().items():
        assert target.adapter_tensors()[name].tobytes() == array.tobytes()
    assert target.steps == 1  # optimizer state came along


def test_load_weights_without_optimizer_field_defaults_to_false(
    client: WireClient, backend: FakeBackend
) -> None:
    session_id, model_id = _trained(client)
    path = client.run("save_weights", {"model_id": model_id, "path": "c", "seq_id": 3})["path"]
    other = client.model(session_id, seq=1)
    assert client.run("load_weights", {"model_id": other, "path": path, "seq_id": 1}) == {
        "path": path
    }
    assert backend.trainers[1].steps == 0


def test_load_errors_are_user_failures(client: WireClient) -> None:
    session_id, model_id = _trained(client)
    sampler_path = client.run(
        "save_weights_for_sampler", {"model_id": model_id, "path": "s", "seq_id": 3}
    )["path"]
    missing = f"tinker://{model_id}/weights/never-saved"
    for seq, (path, optimizer, message) in enumerate(
        [
            (missing, False, "not found"),
            (sampler_path, True, "has no optimizer state"),
        ],
        start=4,
    ):
        body = {"model_id": model_id, "path": path, "optimizer": optimizer, "seq_id": seq}
        result = client.run("load_weights", body)
        assert result["category"] == "user" and message in result["error"]
    small = client.model(session_id, seq=1, base="fake/small")
    body = {"model_id": small, "path": sampler_path, "optimizer": False, "seq_id": 1}
    result = client.run("load_weights", body)
    assert result["category"] == "user" and "'fake/tiny'" in result["error"]


def test_save_weights_for_sampler_named_and_ephemeral(client: WireClient) -> None:
    session_id, model_id = _trained(client)
    named = client.run(
        "save_weights_for_sampler", {"model_id": model_id, "path": "s1", "seq_id": 3}
    )
    assert named == {"path": f"tinker://{model_id}/sampler_weights/s1", "sampling_session_id": None}
    ephemeral = client.run(
        "save_weights_for_sampler",
        {"model_id": model_id, "sampling_session_seq_id": 0, "seq_id": 4},
    )
    assert ephemeral == {"path": None, "sampling_session_id": f"{session_id}:sample:0"}
    _wire.structure(ephemeral, types.SaveWeightsForSamplerResponseInternal)
    neither = client.post("save_weights_for_sampler", {"model_id": model_id, "seq_id": 5})
    assert neither.status_code == 400


def test_rest_training_runs_and_checkpoints(client: WireClient) -> None:
    session_id, model_id = _trained(client)
    client.run("save_weights", {"model_id": model_id, "path": "first", "seq_id": 3})
    client.run("save_weights_for_sampler", {"model_id": model_id, "path": "s", "seq_id": 4})
    client.run("save_weights", {"model_id": model_id, "path": "second", "seq_id": 5})

    run = client.get(f"training_runs/{model_id}").json()
    parsed = _wire.structure(run, types.TrainingRun)
    assert parsed.training_run_id == model_id and parsed.lora_rank == 4
    assert run["last_checkpoint"]["checkpoint_id"] == "weights/second"
    assert run["last_sampler_checkpoint"]["tinker_path"] == f"tinker://{model_id}/sampler_weights/s"
    assert run["user_metadata"] == {"run": "r1"}
    assert run["model_owner"] == "local" and run["is_lora"] is True

    runs = client.get("training_runs", params={"limit": 10, "offset": 0}).json()
    assert [r["training_run_id"] for r in runs["training_runs"]] == [model_id]
    assert runs["cursor"] == {"offset": 0, "limit": 10, "total_count": 1}

    listed = client.get(f"training_runs/{model_id}/checkpoints").json()
    ids = [c["checkpoint_id"] for c in listed["checkpoints"]]
    assert ids == ["weights/second", "sampler_weights/s", "weights/first"]  # newest first
    _wire.structure(listed, types.CheckpointsListResponse)
    types_by_id = {c["checkpoint_id"]: c["checkpoint_type"] for c in listed["checkpoints"]}
    assert types_by_id["sampler_weights/s"] == "sampler"
    assert types_by_id["weights/first"] == "training"

    page = client.get("checkpoints", params={"limit": 2, "offset": 1}).json()
    assert [c["checkpoint_id"] for c in page["checkpoints"]] == [
        "sampler_weights/s",
        "weights/first",
    ]
    assert page["cursor"] == {"offset": 1, "limit": 2, "total_count": 3}

    sessions = client.get("sessions").json()
    assert session_id in sessions["sessions"]
    assert client.get(f"sessions/{session_id}").json() == {
        "training_run_ids": [model_id],
        "sampler_ids": [],
        "user_metadata": {"who": "tests"},
        "display_name": None,
    }


def test_delete_publish_unpublish(client: WireClient) -> None:
    _, model_id = _trained(client)
    client.run("save_weights", {"model_id": model_id, "path": "pub", "seq_id": 3})
    base = f"training_runs/{model_id}/checkpoints/weights/pub"
    # body-less POST, as the SDK sends it
    response = client.http.post(
        f"{client.url}/api/v1/{base}/publish",
        data=b"",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 204
    assert client.post(f"{base}/publish").status_code == 204  # idempotent, no 409
    listed = client.get(f"training_runs/{model_id}/checkpoints").json()["checkpoints"]
    assert listed[0]["public"] is True
    assert client.delete(f"{base}/publish").status_code == 204
    assert client.delete(f"{base}/publish").status_code == 204
    assert (
        client.get(f"training_runs/{model_id}/checkpoints").json()["checkpoints"][0]["public"]
        is False
    )
    assert client.delete(base).status_code == 204
    assert client.get(f"training_runs/{model_id}/checkpoints").json()["checkpoints"] == []
    gone = client.delete(base)
    assert gone.status_code == 404 and "not found" in gone.json()["detail"]
    assert client.post(f"{base}/publish").status_code == 404


def test_archive_redirect_and_download(client: WireClient, backend: FakeBackend) -> None:
    _, model_id = _trained(client)
    client.run("save_weights_for_sampler", {"model_id": model_id, "path": "arc", "seq_id": 3})
    response = client.get(
        f"training_runs/{model_id}/checkpoints/sampler_weights/arc/archive",
        allow_redirects=False,
        headers={"accept": "application/gzip"},
    )
    assert response.status_code == 302
    expires = email.utils.parsedate_to_datetime(response.headers["Expires"])
    assert expires.timestamp() > time.time()
    location = response.headers["Location"]
    assert location.startswith(f"{client.url}/api/v1/archives/")
    download = requests.get(location, timeout=10)  # no API key needed for the signed link
    assert download.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(download.content)) as tar:
        assert sorted(tar.getnames()) == [
            "adapter_config.json",
            "adapter_model.safetensors",
            "checkpoint_complete",
        ]
        member = tar.extractfile("adapter_model.safetensors")
        assert member is not None
        tensors = load_safetensors(member.read())
    expected = backend.trainers[0].adapter_tensors()
    assert sorted(tensors) == sorted(expected)
    for name, array in expected.items():
        assert tensors[name].dtype == np.float32
        assert tensors[name].tobytes() == array.tobytes()
    assert requests.get(f"{client.url}/api/v1/archives/bogus", timeout=10).status_code == 404


def test_archive_of_unknown_checkpoint_is_404(client: WireClient) -> None:
    _, model_id = _trained(client)
    response = client.get(
        f"training_runs/{model_id}/checkpoints/weights/nope/archive", allow_redirects=False
    )
    assert response.status_code == 404


def test_percent_encoded_run_id_is_routed(client: WireClient) -> None:
    _, model_id = _trained(client)
    encoded = model_id.replace(":", "%3A")
    assert client.get(f"training_runs/{encoded}").json()["training_run_id"] == model_id


def test_delete_of_a_lookalike_run_id_deletes_nothing(client: WireClient) -> None:
    _, model_id = _trained(client)
    saved = client.run("save_weights", {"model_id": model_id, "path": "keep", "seq_id": 3})
    lookalike = model_id.replace(":", "_")  # once mapped to the same directory
    gone = client.delete(f"training_runs/{lookalike}/checkpoints/weights/keep")
    assert gone.status_code == 404
    assert gone.json() == {"detail": f"Checkpoint 'tinker://{lookalike}/weights/keep' not found."}
    listed = client.get(f"training_runs/{model_id}/checkpoints").json()["checkpoints"]
    assert [c["tinker_path"] for c in listed] == [saved["path"]]
    other = client.model(client.session())
    body = {"model_id": other, "path": saved["path"], "optimizer": True, "seq_id": 1}
    assert client.run("load_weights", body) == {"path": saved["path"]}
