"""The server with the real numpy backend (tinker-local/tiny): training, sampling, checkpoints."""

from __future__ import annotations

import io
import pathlib
import tarfile

import numpy as np
import requests
import tokenizers
from safetensors.numpy import load as load_safetensors

from tinker import _wire, types
from tinker.local import EngineConfig, LocalServer, serve
from tinker.local.server.paths import parse_tinker_path

from .wire_client import WireClient, datum

TINY = "tinker-local/tiny"


def _model(client: WireClient, session_id: str, seq: int = 0, rank: int = 8) -> str:
    return client.model(session_id, seq=seq, base=TINY, rank=rank)


def _batch(model_id: str, seq_id: int, weights: list[float] | None = None) -> dict[str, object]:
    tokens = [72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100]
    return {
        "model_id": model_id,
        "seq_id": seq_id,
        "forward_backward_input": {
            "data": [datum(tokens, weights if weights is not None else [1.0] * len(tokens))],
            "loss_fn": "cross_entropy",
            "loss_fn_config": None,
        },
    }


def test_get_info_points_at_a_loadable_tokenizer(real_client: WireClient) -> None:
    model_id = _model(real_client, real_client.session())
    info = real_client.ok("get_info", {"model_id": model_id})
    assert info["model_data"]["model_name"] == TINY
    assert info["model_name"] == TINY and info["lora_rank"] == 8 and info["is_lora"] is True
    tokenizer_dir = pathlib.Path(info["model_data"]["tokenizer_id"])
    assert tokenizer_dir.is_absolute()
    tokenizer = tokenizers.Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    assert tokenizer.encode("hi").ids


def test_capabilities_and_unknown_model(real_client: WireClient) -> None:
    names = [
        m["model_name"]
        for m in real_client.get("get_server_capabilities").json()["supported_models"]
    ]
    assert TINY in names
    response = real_client.post(
        "create_model",
        {"session_id": real_client.session(), "model_seq_id": 0, "base_model": "Qwen/Qwen3-8B"},
    )
    assert response.status_code == 400
    assert TINY in response.json()["detail"]


def test_training_lowers_the_loss(real_client: WireClient) -> None:
    model_id = _model(real_client, real_client.session())
    losses = []
    seq = 1
    for _ in range(6):
        result = real_client.run("forward_backward", _batch(model_id, seq))
        losses.append(result["metrics"]["loss:sum"])
        optim = {"model_id": model_id, "seq_id": seq + 1, "adam_params": {"learning_rate": 0.01}}
        assert "error" not in real_client.run("optim_step", optim)
        seq += 2
    assert losses[-1] < losses[0]
    assert all(key.count(":") == 1 for key in result["metrics"])


def test_cross_entropy_with_arbitrary_weights(real_client: WireClient) -> None:
    model_id = _model(real_client, real_client.session())
    weights = [1.0, -0.5, 0.25, 0.0, 2.0, 1.0, -1.0, 0.5, 0.5, 1.5, 0.0]
    result = real_client.run("forward_backward", _batch(model_id, 1, weights))
    output = _wire.structure(result, types.ForwardBackwardOutput).loss_fn_outputs[0]
    logprobs = np.array(output["logprobs"].data, dtype=np.float32)
    elementwise = np.array(output["elementwise_loss"].data, dtype=np.float32)
    np.testing.assert_allclose(elementwise, -np.array(weights, np.float32) * logprobs, rtol=1e-6)
    assert (
        result["metrics"]["loss:sum"] == np.float32(elementwise.sum()).item()
        or abs(result["metrics"]["loss:sum"] - float(elementwise.sum())) < 1e-4
    )


def test_user_errors_from_the_backend_fail_the_future(real_client: WireClient) -> None:
    model_id = _model(real_client, real_client.session())
    bad = _batch(model_id, 1)
    bad_datum = bad["forward_backward_input"]["data"][0]  # type: ignore[index]
    bad_datum["loss_fn_inputs"]["target_tokens"] = {"data": [1, 2], "dtype": "int64", "shape": [2]}
    result = real_client.run("forward_backward", bad)
    assert result["category"] == "user"
    assert result["error"]


def test_state_round_trip_gives_identical_outputs(real_client: WireClient) -> None:
    session_id = real_client.session()
    model_id = _model(real_client, session_id)
    real_client.run("forward_backward", _batch(model_id, 1))
    real_client.run("optim_step", {"model_id": model_id, "seq_id": 2, "adam_params": {}})
    path = real_client.run("save_weights", {"model_id": model_id, "path": "s1", "seq_id": 3})[
        "path"
    ]
    forward = {
        "model_id": model_id,
        "seq_id": 4,
        "forward_input": _batch(model_id, 0)["forward_backward_input"],
    }
    before = real_client.run("forward", forward)

    rank = real_client.ok("weights_info", {"tinker_path": path})["lora_rank"]
    other = _model(real_client, session_id, seq=1, rank=rank)
    load = {"model_id": other, "path": path, "optimizer": True, "seq_id": 1}
    assert real_client.run("load_weights", load) == {"path": path}
    forward["model_id"], forward["seq_id"] = other, 2
    after = real_client.run("forward", forward)
    assert after["loss_fn_outputs"] == before["loss_fn_outputs"]  # bit-exact via JSON floats


def test_sampling_and_archive_round_trip(real_client: WireClient, real_server: LocalServer) -> None:
    session_id = real_client.session()
    model_id = _model(real_client, session_id)
    real_client.run("forward_backward", _batch(model_id, 1))
    real_client.run("optim_step", {"model_id": model_id, "seq_id": 2, "adam_params": {}})
    ephemeral = real_client.run(
        "save_weights_for_sampler",
        {"model_id": model_id, "sampling_session_seq_id": 0, "seq_id": 3},
    )
    sample = {
        "num_samples": 2,
        "prompt": {"chunks": [{"tokens": [72, 101]}]},
        "sampling_params": {"max_tokens": 5, "seed": 3, "temperature": 0.8},
        "sampling_session_id": ephemeral["sampling_session_id"],
        "seq_id": 0,
        "prompt_logprobs": True,
        "topk_prompt_logprobs": 2,
    }
    result = real_client.run("asample", sample)
    parsed = _wire.structure(result, types.SampleResponse)
    assert len(parsed.sequences) == 2
    for sequence in parsed.sequences:
        assert 1 <= len(sequence.tokens) <= 5
        assert sequence.logprobs is not None and len(sequence.logprobs) == len(sequence.tokens)
    assert parsed.prompt_logprobs is not None and parsed.prompt_logprobs[0] is None
    assert parsed.topk_prompt_logprobs is not None and len(parsed.topk_prompt_logprobs[1]) == 2

    saved = real_client.run(
        "save_weights_for_sampler", {"model_id": model_id, "path": "arc", "seq_id": 4}
    )
    archive = real_client.get(
        f"training_runs/{model_id}/checkpoints/sampler_weights/arc/archive", allow_redirects=False
    )
    assert archive.status_code == 302
    content = requests.get(archive.headers["Location"], timeout=10).content
    with tarfile.open(fileobj=io.BytesIO(content)) as tar:
        member = tar.extractfile("adapter_model.safetensors")
        assert member is not None
        tensors = load_safetensors(member.read())
    row = real_server.store.get_checkpoint(parse_tinker_path(saved["path"]))
    assert row is not None
    on_disk = real_server.data_dir / "checkpoints" / row.directory / "adapter_model.safetensors"
    stored = load_safetensors(on_disk.read_bytes())
    assert sorted(tensors) == sorted(stored)
    assert all(tensors[name].tobytes() == stored[name].tobytes() for name in stored)
    assert saved["path"].endswith("/sampler_weights/arc")


def test_sampler_checkpoint_samples_identically_after_restart(tmp_path: pathlib.Path) -> None:
    config = EngineConfig(long_poll_seconds=0.5, session_idle_seconds=None)
    sample = {
        "prompt": {"chunks": [{"tokens": [104, 105]}]},
        "sampling_params": {"max_tokens": 6, "seed": 11},
        "seq_id": 0,
    }
    with serve(data_dir=tmp_path, config=config) as server:
        client = WireClient(server.url)
        session_id = client.session()
        model_id = _model(client, session_id)
        client.run("forward_backward", _batch(model_id, 1))
        client.run("optim_step", {"model_id": model_id, "seq_id": 2, "adam_params": {}})
        path = client.run(
            "save_weights_for_sampler", {"model_id": model_id, "path": "s", "seq_id": 3}
        )["path"]
        sampler = client.ok(
            "create_sampling_session",
            {"session_id": session_id, "sampling_session_seq_id": 0, "model_path": path},
        )["sampling_session_id"]
        first = client.run("asample", {**sample, "sampling_session_id": sampler})
    with serve(data_dir=tmp_path, config=config) as server:
        client = WireClient(server.url)
        session_id = client.session()
        sampler = client.ok(
            "create_sampling_session",
            {"session_id": session_id, "sampling_session_seq_id": 0, "model_path": path},
        )["sampling_session_id"]
        again = client.run("asample", {**sample, "sampling_session_id": sampler})
    assert again == first


def test_a_sampler_follows_its_checkpoint_when_it_is_saved_again_or_deleted(
    real_client: WireClient,
) -> None:
    client = real_client
    session_id = client.session()
    model_id = _model(client, session_id)
    save = {"model_id": model_id, "path": "live"}
    path = client.run("save_weights_for_sampler", {**save, "seq_id": 1})["path"]
    sampler = client.ok(
        "create_sampling_session",
        {"session_id": session_id, "sampling_session_seq_id": 0, "model_path": path},
    )["sampling_session_id"]
    ask = {
        "prompt": {"chunks": [{"tokens": [72, 101, 108, 108, 111]}]},
        "sampling_params": {"max_tokens": 1, "seed": 1},
        "prompt_logprobs": True,
        "sampling_session_id": sampler,
    }
    before = client.run("asample", {**ask, "seq_id": 0})["prompt_logprobs"]

    optim = {"adam_params": {"learning_rate": 0.05}, "model_id": model_id}
    for seq in (2, 4):
        client.run("forward_backward", _batch(model_id, seq))
        client.run("optim_step", {**optim, "seq_id": seq + 1})
    client.run("save_weights_for_sampler", {**save, "seq_id": 6})  # the same name, new weights
    after = client.run("asample", {**ask, "seq_id": 1})["prompt_logprobs"]
    fresh = client.ok(
        "create_sampling_session",
        {"session_id": session_id, "sampling_session_seq_id": 1, "model_path": path},
    )["sampling_session_id"]
    expected = client.run("asample", {**ask, "sampling_session_id": fresh, "seq_id": 0})
    assert after == expected["prompt_logprobs"] != before

    assert (
        client.delete(f"training_runs/{model_id}/checkpoints/sampler_weights/live").status_code
        == 204
    )
    refused = client.post("asample", {**ask, "seq_id": 2})
    assert refused.status_code == 404
    assert (
        "was deleted (or has expired), so samplers on it cannot sample" in refused.json()["detail"]
    )
