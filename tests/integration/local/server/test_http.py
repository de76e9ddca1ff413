"""Bad input never yields a 500 and never stops the server: status codes and messages."""

from __future__ import annotations

import logging
import pathlib
import socket
from typing import Any

import pytest
import requests

from tinker.local import serve

from .conftest import FAST
from .fake_backend import FakeBackend
from .wire_client import WireClient, fwdbwd


def _raw(url: str, payload: bytes, path: str = "/api/v1/create_session") -> requests.Response:
    return requests.post(
        f"{url}{path}", data=payload, headers={"Content-Type": "application/json"}, timeout=10
    )


def test_malformed_json_is_400(client: WireClient) -> None:
    response = _raw(client.url, b'{"tags": [')
    assert response.status_code == 400
    assert response.json()["detail"].startswith("The request body is not valid JSON")


@pytest.mark.parametrize(
    ("endpoint", "body", "needle"),
    [
        ("create_session", [1, 2], "JSON object"),
        (
            "create_model",
            {"session_id": "s", "model_seq_id": "zero", "base_model": "x"},
            "model_seq_id",
        ),
        ("create_model", {"session_id": "s", "model_seq_id": 0}, "base_model"),
        ("forward_backward", {"model_id": "m", "seq_id": 1}, "forward_backward_input"),
        ("retrieve_future", {"request_id": 5}, "request_id"),
        ("optim_step", {"model_id": "m", "seq_id": 1, "adam_params": {"beta1": "high"}}, "beta1"),
        ("weights_info", {"path": "x"}, "tinker_path"),
    ],
)
def test_wrong_shapes_are_422_naming_the_field(
    client: WireClient, endpoint: str, body: Any, needle: str
) -> None:
    response = client.post(endpoint, body)
    assert response.status_code == 422, response.text
    assert needle in response.json()["detail"]


def test_unknown_route_and_wrong_method(client: WireClient) -> None:
    missing = client.get("no_such_endpoint")
    assert missing.status_code == 404 and missing.json() == {"detail": "Not Found"}
    wrong = client.get("create_session")
    assert wrong.status_code == 405
    assert wrong.headers["Allow"] == "POST"
    assert wrong.json() == {"detail": "Method Not Allowed"}


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", ".hidden", "x\\y"])
def test_traversal_in_checkpoint_names_is_400(client: WireClient, name: str) -> None:
    model_id = client.model(client.session())
    response = client.post("save_weights", {"model_id": model_id, "path": name, "seq_id": 1})
    assert response.status_code == 400
    assert "Invalid checkpoint name" in response.json()["detail"]
    response = client.post("save_weights_for_sampler", {"model_id": model_id, "path": name})
    assert response.status_code == 400


@pytest.mark.parametrize(
    "path",
    [
        "tinker://run/weights/../../../etc/passwd",
        "tinker://../weights/x",
        "tinker://run/optimizer/x",
        "file:///etc/passwd",
        "tinker://run/weights/",
    ],
)
def test_traversal_in_tinker_paths_is_400(client: WireClient, path: str) -> None:
    session_id = client.session()
    model_id = client.model(session_id)
    load = client.post("load_weights", {"model_id": model_id, "path": path, "seq_id": 1})
    assert load.status_code == 400, load.text
    sampler = client.post(
        "create_sampling_session",
        {"session_id": session_id, "sampling_session_seq_id": 0, "model_path": path},
    )
    assert sampler.status_code == 400
    assert client.post("weights_info", {"tinker_path": path}).status_code == 400


def test_traversal_in_rest_paths_is_rejected(client: WireClient) -> None:
    model_id = client.model(client.session())
    for suffix in (
        "weights/..%2F..%2Fescape",
        "weights/%2e%2e",
        "optimizer/x",
    ):
        response = client.delete(f"training_runs/{model_id}/checkpoints/{suffix}")
        assert 400 <= response.status_code < 500, (suffix, response.status_code)
    response = client.get("training_runs/..%2F..%2Fetc/checkpoints")
    assert response.status_code in (400, 404)


def test_bad_paging_parameters_are_400(client: WireClient) -> None:
    response = client.get("training_runs", params={"limit": "ten"})
    assert response.status_code == 400
    assert "'limit'" in response.json()["detail"]
    assert client.get("checkpoints", params={"offset": -1}).status_code == 400


def test_oversized_body_is_413_and_the_server_keeps_serving(
    tmp_path: pathlib.Path,
) -> None:
    with serve(data_dir=tmp_path, backend=FakeBackend(), config=FAST, max_body_bytes=1000) as srv:
        response = _raw(srv.url, b" " * 5000)
        assert response.status_code == 413
        assert "exceeds 1000 bytes" in response.json()["detail"]
        assert requests.get(f"{srv.url}/api/v1/healthz", timeout=10).status_code == 200


def test_server_survives_garbage_and_half_requests(client: WireClient) -> None:
    host, port = client.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(b"NONSENSE\r\n\r\n")
        raw.recv(1000)
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(b"POST /api/v1/create_session HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
    assert client.get("healthz").json() == {"status": "ok"}
    model_id = client.model(client.session())
    assert "loss_fn_outputs" in client.run("forward_backward", fwdbwd(model_id, 1))


def test_api_key_is_required_when_configured(tmp_path: pathlib.Path) -> None:
    with serve(data_dir=tmp_path, backend=FakeBackend(), config=FAST, api_key="s3cret") as srv:
        anonymous = WireClient(srv.url)
        response = anonymous.post("create_session", {})
        assert response.status_code == 401
        assert "s3cret" not in response.text
        assert (
            WireClient(srv.url, {"X-API-Key": "wrong"}).post("create_session", {}).status_code
            == 401
        )
        assert anonymous.get("healthz").status_code == 200
        authorised = WireClient(srv.url, {"X-API-Key": "s3cret"})
        assert authorised.post("create_session", {}).status_code == 200
        assert "s3cret" not in repr(srv)


def test_requests_are_logged_at_debug_without_the_api_key(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.DEBUG, logger="tinker.local"),
        serve(data_dir=tmp_path, backend=FakeBackend(), config=FAST, api_key="s3cret") as srv,
    ):
        WireClient(srv.url, {"X-API-Key": "s3cret"}).post("create_session", {})
        WireClient(srv.url, {"X-API-Key": "nope-s3cret"}).post("create_session", {})
    assert "POST /api/v1/create_session -> 200" in caplog.text
    assert "POST /api/v1/create_session -> 401" in caplog.text
    assert f"listening on {srv.url}" in caplog.text
    assert "s3cret" not in caplog.text


def test_keep_alive_reuses_one_connection(client: WireClient) -> None:
    first = client.get("healthz")
    second = client.get("healthz")
    assert first.raw.version == 11
    assert "close" not in first.headers.get("Connection", "")
    assert second.status_code == 200
