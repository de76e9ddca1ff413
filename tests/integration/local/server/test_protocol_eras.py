"""Both protocol eras from one server: the start-up answers, a server told to speak only one
era, and 0.38 JSON bodies (type keys, defaults sent, nulls left out, lower-case headers)."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest
import requests

from tinker import types
from tinker._wire import proto
from tinker.local import LocalServer, serve

from .conftest import FAST
from .fake_backend import FakeBackend
from .wire_client import WireClient, fwdbwd

CONFIG_REQUEST = {"sdk_version": "0.38.0"}
DEFAULT_CONFIG = {
    "pjwt_auth_enabled": False,
    "credential_default_source": "api_key",
    "sample_dispatch_bytes_semaphore_size": 10485760,
    "inflight_response_bytes_semaphore_size": 52428800,
    "parallel_fwdbwd_chunks": True,
    "proto_compress_fwdbwd": True,
    "fwdbwd_max_chunk_len": 1024,
    "fwdbwd_max_chunk_bytes_count": 5000000,
    "fwdbwd_dispatch_bytes_semaphore_size": 50000000,
    "billing_exception_max_pause_duration_sec": 3600,
    "sample_no_retries": False,
    "sample_enable_stuck_detection": True,
    "sample_max_concurrent_requests": 2000,
    "use_pyqwest_transport": False,
    "sample_use_retrieve_futures": True,
    "custom_loss_server_side": True,
    "sample_join_sampling_session": True,
}


def _serve(tmp_path: pathlib.Path, protocol: str, **options: str) -> LocalServer:
    return serve(
        data_dir=tmp_path / protocol,
        backend=FakeBackend(),
        config=FAST,
        protocol=protocol,
        **options,
    )


@pytest.fixture
def old_only(tmp_path: pathlib.Path) -> Iterator[WireClient]:
    with _serve(tmp_path, "0.5.1") as server, WireClient(server.url) as client:
        yield client


@pytest.fixture
def new_only(tmp_path: pathlib.Path) -> Iterator[WireClient]:
    with _serve(tmp_path, "0.38") as server, WireClient(server.url) as client:
        yield client


def _call(model_id: str, seq_id: int) -> proto.ForwardBackwardCall:
    return proto.ForwardBackwardCall(model_id, seq_id, [_datum()], "cross_entropy")


def _datum() -> types.Datum:
    return types.Datum(
        model_input=types.ModelInput.from_ints([1, 2, 3]),
        loss_fn_inputs={"target_tokens": [2, 3, 0], "weights": [1.0, 1.0, 0.5]},
    )


def test_client_config_says_what_the_server_switches_on(client: WireClient) -> None:
    assert client.ok("client/config", CONFIG_REQUEST) == DEFAULT_CONFIG
    assert client.ok("client/dynamic_config", CONFIG_REQUEST) == {
        "refresh_interval_sec": 300,
        "sample_cancel_enabled": True,
        "sample_cancel_max_batch_size": 64,
    }


def test_features_are_switched_one_by_one(tmp_path: pathlib.Path) -> None:
    spec = (
        "both,zstd=off,retrieve_futures=off,join_sampling_session=off,parallel_chunks=off,"
        "sample_cancel=off,custom_loss_server_side=off,pyqwest=on"
    )
    with _serve(tmp_path, spec) as server, WireClient(server.url) as client:
        flags = client.ok("client/config", CONFIG_REQUEST)
        dynamic = client.ok("client/dynamic_config", CONFIG_REQUEST)
    switched = {
        "proto_compress_fwdbwd": False,
        "sample_use_retrieve_futures": False,
        "sample_join_sampling_session": False,
        "parallel_fwdbwd_chunks": False,
        "custom_loss_server_side": False,
        "use_pyqwest_transport": True,
    }
    assert flags == {**DEFAULT_CONFIG, **switched}
    assert dynamic["sample_cancel_enabled"] is False


def test_a_server_speaking_only_0_5_1_refuses_what_0_38_added(old_only: WireClient) -> None:
    for endpoint, body in (
        ("client/config", CONFIG_REQUEST),
        ("client/dynamic_config", CONFIG_REQUEST),
        ("auth/token", {}),
        ("retrieve_futures", {}),
        ("cancel_future", {"request_id": "x"}),
        ("join_sampling_session", {"sampling_session_id": "x"}),
        ("sessions/x/finish", {"reason": {"type": "success"}}),
        ("create_custom_loss", {}),
        ("save_weights_external", {}),
        ("copy_weights", {}),
    ):
        assert old_only.post(endpoint, body).status_code == 404, endpoint
    for method in ("GET", "DELETE"):  # the 0.38 CLI's key endpoint
        assert (
            old_only.http.request(method, f"{old_only.url}/api/v1/auth/apikey/me").status_code
            == 404
        )
    # Without the search route, sessions/search is only the path of GET sessions/{id}.
    assert old_only.post("sessions/search", {}).status_code == 405
    model_id = old_only.model(old_only.session())
    refused = old_only.post_proto("forward_backward", b"")
    assert refused.status_code == 415
    assert "0.5.1 protocol only" in refused.json()["detail"]
    compressed = old_only.post_proto(
        "forward_backward", b"{}", zstd=True, **{"Content-Type": "application/json"}
    )
    assert compressed.status_code == 415
    forward = {
        "model_id": model_id,
        "seq_id": 1,
        "forward_input": fwdbwd(model_id, 1)["forward_backward_input"],
    }
    output = old_only.run("forward", forward)
    assert output["loss_fn_output_type"] == "CrossEntropyLossReturn"


def test_a_server_speaking_only_0_38_drops_removed_endpoints_and_answers_protobuf(
    new_only: WireClient,
) -> None:
    model_id = new_only.model(new_only.session())
    forward = {
        "model_id": model_id,
        "seq_id": 1,
        "forward_input": fwdbwd(model_id, 1)["forward_backward_input"],
    }
    assert new_only.post("forward", forward).status_code == 404
    assert new_only.post("unload_model", {"model_id": model_id}).status_code == 404
    request_id = new_only.submit_proto(_call(model_id, 1))
    answer = new_only.post("retrieve_future", {"request_id": request_id})
    while answer.status_code == 408:
        answer = new_only.post("retrieve_future", {"request_id": request_id})
    assert answer.headers["Content-Type"] == proto.CONTENT_TYPE  # without an Accept header
    assert len(proto.decode_forward_backward_output(answer.content).loss_fn_outputs) == 1


def test_both_eras_get_results_in_their_format(client: WireClient) -> None:
    """One server: a JSON poll gets JSON, a poll accepting protobuf gets protobuf, same values."""
    model_id = client.model(client.session())
    request_id = client.submit(
        "forward",
        {
            "model_id": model_id,
            "seq_id": 1,
            "forward_input": fwdbwd(model_id, 1)["forward_backward_input"],
        },
    )
    as_json = client.result(request_id)
    as_proto = client.poll_proto(request_id)
    assert as_proto.headers["Content-Type"] == proto.CONTENT_TYPE
    decoded = proto.decode_forward_backward_output(as_proto.content)
    assert decoded.metrics == as_json["metrics"]
    assert [o["logprobs"].tolist() for o in decoded.loss_fn_outputs] == [
        o["logprobs"]["data"] for o in as_json["loss_fn_outputs"]
    ]


def test_json_bodies_of_0_38_clients_are_accepted(tmp_path: pathlib.Path) -> None:
    """Bodies as the official 0.38 SDK sends them (as captured from it), header names lower-case."""
    with serve(data_dir=tmp_path, backend=FakeBackend(), config=FAST, api_key="tml-k") as server:
        http = requests.Session()
        http.headers.update({"x-api-key": "tml-k", "content-type": "application/json"})

        def ok(endpoint: str, body: object) -> dict[str, object]:
            answer = http.post(f"{server.url}/api/v1/{endpoint}", json=body, timeout=30)
            assert answer.status_code == 200, (endpoint, answer.text)
            result: dict[str, object] = answer.json()
            return result

        session = ok(
            "create_session",
            {
                "tags": [],
                "user_metadata": {"who": "me"},
                "sdk_version": "0.38.0",
                "display_name": "disp",
                "project_id": "proj",
                "type": "create_session",
            },
        )
        session_id = str(session["session_id"])
        row = server.store.get_session(session_id)
        assert row is not None and (row.display_name, row.project_id) == ("disp", "proj")
        ok("session_heartbeat", {"session_id": session_id, "type": "session_heartbeat"})
        created = ok(
            "create_model",
            {
                "session_id": session_id,
                "model_seq_id": 0,
                "base_model": "fake/tiny",
                "lora_config": {
                    "rank": 8,
                    "train_unembed": True,
                    "train_mlp": True,
                    "train_attn": True,
                },
                "optimizer_config": {"type": "adamw"},
                "type": "create_model",
            },
        )
        assert created["model_id"] == f"{session_id}:train:0"
        sampler = ok(
            "create_sampling_session",
            {
                "session_id": session_id,
                "sampling_session_seq_id": 0,
                "base_model": "fake/tiny",
                "type": "create_sampling_session",
            },
        )
        submitted = ok(
            "asample",
            {
                "num_samples": 2,
                "prompt": {"chunks": [{"tokens": [1, 2, 3], "type": "encoded_text"}]},
                "sampling_params": {
                    "max_tokens": 3,
                    "stop": ["\n"],
                    "temperature": 1.0,
                    "top_k": -1,
                    "top_p": 1.0,
                },
                "sampling_session_id": sampler["sampling_session_id"],
                "seq_id": 0,
                "prompt_logprobs": False,
                "topk_prompt_logprobs": 0,
                "topk_sample_logprobs": 0,
                "prompt_alt_tokens_k": 0,
                "record_stability_info": False,
                "type": "sample",
            },
        )
        assert len(submitted["sample_sequence_ids"]) == 2  # type: ignore[arg-type]
