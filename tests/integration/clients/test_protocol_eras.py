"""One client, both protocol eras: against tinker.local speaking only 0.38 and only 0.5.1 the
same training and sampling give bit-identical numbers, each over its own wire format."""

from __future__ import annotations

import json
import pathlib
import time
from typing import Any

import numpy as np
import pytest
from support.recording import RecordingAdapter

import tinker
from tinker import types
from tinker._wire import compression, proto

TEXT = list(b"the cat sat on the mat.")


def _datum() -> types.Datum:
    inputs, targets = TEXT[:-1], TEXT[1:]
    return types.Datum(
        model_input=types.ModelInput.from_ints(inputs),
        loss_fn_inputs={
            "target_tokens": types.TensorData(data=targets, dtype="int64", shape=[len(targets)]),
            "weights": types.TensorData(
                data=[1.0] * len(targets), dtype="float32", shape=[len(targets)]
            ),
        },
    )


def _train_and_sample(url: str, adapter: RecordingAdapter) -> dict[str, Any]:
    with tinker.ServiceClient(
        base_url=url, api_key="tml-k", telemetry=False, http_adapter=adapter
    ) as service:
        era = service.holder.server.era
        trainer = service.create_lora_training_client("tinker-local/tiny", rank=2, seed=0)
        losses = []
        for _ in range(3):
            output = trainer.forward_backward([_datum()], "cross_entropy").result()
            trainer.optim_step(types.AdamParams(learning_rate=1e-2)).result()
            losses.append(output.metrics["loss:sum"])
        forward = trainer.forward([_datum()], "cross_entropy").result()
        state = trainer.save_state("eras-state").result().path
        resumed = service.create_training_client_from_state_with_optimizer(state)
        trainer.forward_backward([_datum()], "cross_entropy").result()
        trainer.optim_step(types.AdamParams(learning_rate=1e-2)).result()
        resumed.forward_backward([_datum()], "cross_entropy").result()
        resumed.optim_step(types.AdamParams(learning_rate=1e-2)).result()
        continued = [
            client.forward([_datum()], "cross_entropy").result().metrics["loss:sum"]
            for client in (trainer, resumed)
        ]
        sampler = trainer.save_weights_and_get_sampling_client("eras")
        sampled = sampler.sample(
            types.ModelInput.from_ints(list(b"the ca")),
            2,
            types.SamplingParams(max_tokens=6, seed=3),
        ).result()
    return {
        "era": era,
        "losses": losses,
        "continued": continued,
        "session_id": service.session_id,
        "forward_logprobs": [list(o["logprobs"].data) for o in forward.loss_fn_outputs],
        "tokens": [list(s.tokens) for s in sampled.sequences],
        "logprobs": [list(s.logprobs or []) for s in sampled.sequences],
    }


@pytest.fixture
def quiet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINKER_TELEMETRY", "0")
    monkeypatch.delenv("TINKER_API_KEY", raising=False)
    monkeypatch.delenv("TINKER_BASE_URL", raising=False)


@pytest.mark.usefixtures("quiet_env")
def test_both_eras_train_and_sample_to_identical_numbers(tmp_path: pathlib.Path) -> None:
    from tinker import local

    runs: dict[str, dict[str, Any]] = {}
    adapters: dict[str, RecordingAdapter] = {}
    for protocol in ("0.38", "0.5.1"):
        adapters[protocol] = RecordingAdapter()
        with local.serve(
            data_dir=tmp_path / protocol, long_poll_seconds=2.0, protocol=protocol
        ) as server:
            runs[protocol] = _train_and_sample(server.url, adapters[protocol])
    current, legacy = runs["0.38"], runs["0.5.1"]
    assert (current["era"], legacy["era"]) == ("0.38", "0.5.1")
    assert current["losses"][-1] < current["losses"][0]
    assert current["continued"][0] == current["continued"][1]  # resumed with its optimizer
    for key in ("losses", "continued", "forward_logprobs", "tokens"):
        assert current[key] == legacy[key], key  # bit-identical floats
    # Sampled logprobs are float32 in the protobuf SampleResponse, float64 in JSON.
    assert current["logprobs"] == [
        [float(np.float32(value)) for value in row] for row in legacy["logprobs"]
    ]

    # 0.38: forward and forward_backward are zstd-compressed protobuf to one endpoint.
    new = adapters["0.38"]
    assert new.to("/api/v1/forward") == []
    bodies = new.to("/api/v1/forward_backward")
    flags = []
    for headers, body in bodies:
        assert headers["Content-Type"] == proto.CONTENT_TYPE
        assert headers["Content-Encoding"] == "zstd"
        call = proto.decode_forward_backward_request(
            compression.decompress(body, max_output_size=1 << 20)
        )
        assert call.data[0].model_input.to_ints() == TEXT[:-1]
        flags.append(call.forward_only)
    assert flags == [False, False, False, True, False, False, True, True]
    assert len(bodies) == 8
    accepts = [h.get("Accept") for h, _ in new.to("/api/v1/retrieve_future")]
    assert accepts.count(proto.CONTENT_TYPE) == 9  # 8 forward(_backward)s and 1 sample
    # The resume is one load_weights that creates the model; get_info follows each creation.
    session = current["session_id"]
    (load,) = [json.loads(body) for _, body in new.to("/api/v1/load_weights")]
    assert load == {
        "session_id": session,
        "model_seq_id": 1,
        "path": f"tinker://{session}:train:0/weights/eras-state",
        "optimizer": True,
        "type": "load_weights",
    }
    assert [json.loads(body) for _, body in new.to("/api/v1/get_info")] == [
        {"model_id": f"{session}:train:{n}", "type": "get_info"} for n in (0, 1)
    ]
    assert any(p.endswith("/finish") for p, _, _ in new.sent)

    # 0.5.1: JSON to /forward and /forward_backward, no handshake beyond the 404, no finish.
    old = adapters["0.5.1"]
    assert [p for p, _, _ in old.sent][:2] == ["/api/v1/client/config", "/api/v1/create_session"]
    assert len(old.to("/api/v1/forward")) == 3 and len(old.to("/api/v1/forward_backward")) == 5
    assert all(h["Content-Type"] == "application/json" for h, _ in old.to("/api/v1/forward"))
    assert not any(p.endswith("/finish") for p, _, _ in old.sent)


@pytest.mark.usefixtures("quiet_env")
def test_samples_wait_on_the_batch_poller_and_are_acknowledged(tmp_path: pathlib.Path) -> None:
    from tinker import local

    adapter = RecordingAdapter()
    with (
        local.serve(data_dir=tmp_path, long_poll_seconds=2.0) as server,
        tinker.ServiceClient(
            base_url=server.url, api_key="tml-k", telemetry=False, http_adapter=adapter
        ) as service,
    ):
        assert service.holder.server.batch_poller
        sampler = service.create_sampling_client(base_model="tinker-local/tiny")
        futures = [
            sampler.sample(
                types.ModelInput.from_ints(list(b"the ca")),
                1,
                types.SamplingParams(max_tokens=3, seed=seed),
            )
            for seed in range(12)
        ]
        results = [future.result(timeout=60) for future in futures]
        polls = adapter.to("/api/v1/retrieve_futures")
        # Every finished sample is acknowledged, after which the poller goes quiet.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            acked = {
                rid
                for _, body in adapter.to("/api/v1/retrieve_futures")
                for rid in json.loads(body)["retrieved_request_ids"]
            }
            if len(acked) == 12:
                break
            time.sleep(0.05)
    assert all(len(result.sequences[0].tokens) == 3 for result in results)
    assert polls, "no batch poll was sent"
    first = json.loads(polls[0][1])
    assert first["target"] == {
        "type": "sampling_session",
        "sampling_session_id": sampler.sampling_session_id,
        "cloned_sampler_id": 0,
    }
    assert "timeout" not in first  # a long poll while samples wait
    # One payload fetch per sample (plus none for anything else in this session).
    assert len(adapter.to("/api/v1/retrieve_future")) == 12
    assert len(acked) == 12


def _five_datums() -> list[types.Datum]:
    data = []
    for shift in range(5):
        text = TEXT[shift:]
        inputs, targets = text[:-1], text[1:]
        data.append(
            types.Datum(
                model_input=types.ModelInput.from_ints(inputs),
                loss_fn_inputs={
                    "target_tokens": types.TensorData(
                        data=targets, dtype="int64", shape=[len(targets)]
                    ),
                    "weights": types.TensorData(
                        data=[1.0] * len(targets), dtype="float32", shape=[len(targets)]
                    ),
                },
            )
        )
    return data


def _chunked_training(url: str, adapter: RecordingAdapter) -> dict[str, Any]:
    with tinker.ServiceClient(
        base_url=url, api_key="tml-k", telemetry=False, http_adapter=adapter
    ) as service:
        trainer = service.create_lora_training_client("tinker-local/tiny", rank=2, seed=0)
        outputs = []
        for _ in range(2):
            outputs.append(trainer.forward_backward(_five_datums(), "cross_entropy").result())
            trainer.optim_step(types.AdamParams(learning_rate=1e-2)).result()
        outputs.append(trainer.forward(_five_datums(), "cross_entropy").result())
        parallel = service.holder.server.parallel_chunks
        sampler = trainer.save_weights_and_get_sampling_client("chunked")
        samples = [
            sampler.sample(
                types.ModelInput.from_ints(list(b"the ca")),
                1,
                types.SamplingParams(max_tokens=3, seed=seed),
            )
            for seed in range(8)
        ]
        tokens = [list(f.result(timeout=60).sequences[0].tokens) for f in samples]
    return {
        "parallel": parallel,
        "tokens": tokens,
        "metrics": [o.metrics for o in outputs],
        "logprobs": [[list(x["logprobs"].data) for x in o.loss_fn_outputs] for o in outputs],
    }


@pytest.mark.usefixtures("quiet_env")
def test_chunks_sent_together_out_of_order_give_the_in_order_results(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tinker import local
    from tinker.local.server import settings

    monkeypatch.setattr(settings, "FWDBWD_MAX_CHUNK_LEN", 2)  # 5 datums: 3 chunks per call
    runs: dict[str, dict[str, Any]] = {}
    arrivals: dict[str, list[int]] = {}
    for switch in ("on", "off", "one byte budgets"):
        if switch == "one byte budgets":  # every chunk and every sample exceeds its budget
            monkeypatch.setattr(settings, "FWDBWD_DISPATCH_BYTES", 1)
            monkeypatch.setattr(settings, "SAMPLE_DISPATCH_BYTES", 1)
            monkeypatch.setattr(settings, "INFLIGHT_RESPONSE_BYTES", 1)
        adapter = RecordingAdapter()
        protocol = f"0.38,zstd=off,parallel_chunks={'off' if switch == 'off' else 'on'}"
        with local.serve(
            data_dir=tmp_path / switch, long_poll_seconds=2.0, protocol=protocol
        ) as server:
            runs[switch] = _chunked_training(server.url, adapter)
        arrivals[switch] = [
            proto.decode_forward_backward_request(body).seq_id
            for _, body in adapter.to("/api/v1/forward_backward")
        ]
    assert (runs["on"]["parallel"], runs["off"]["parallel"]) == (True, False)
    assert runs["on"]["metrics"] == runs["off"]["metrics"]  # bit-identical
    assert runs["on"]["logprobs"] == runs["off"]["logprobs"]
    assert runs["on"]["tokens"] == runs["off"]["tokens"]
    # Budgets smaller than any request or announced result bind without deadlock: each one
    # goes alone.
    budget = runs["one byte budgets"]
    for key in ("metrics", "logprobs", "tokens"):
        assert budget[key] == runs["off"][key], key
    ordered = arrivals["one byte budgets"]
    for call in range(3):
        group = ordered[3 * call : 3 * call + 3]
        assert group == [min(group) + 1, min(group) + 2, min(group)]
    # Each call has 3 chunks; without parallel chunks they arrive in seq_id order.
    assert arrivals["off"] == sorted(arrivals["off"])
    assert len(arrivals["on"]) == len(arrivals["off"]) == 9
    on = arrivals["on"]
    for call in range(3):
        group = on[3 * call : 3 * call + 3]
        # Chunks 2 and 3 (in either order), then chunk 1: out of order at the server.
        assert group[-1] == min(group) and sorted(group) == arrivals["off"][3 * call : 3 * call + 3]
