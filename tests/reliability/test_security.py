"""Secrets and boundaries: the API key never leaks; the server checks keys and stays in its dir."""

from __future__ import annotations

import logging
import pickle
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

import tinker
from tinker import _transport, types
from tinker.config import ClientConfig

from .conftest import API_KEY
from .runs import MODEL, batch

SECRET = API_KEY.encode()


@pytest.fixture
def sent_bodies(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """Every request body the SDK puts on the wire (telemetry included)."""
    bodies: list[bytes] = []
    original = _transport.Transport.send

    def recording(self: Any, request: _transport.HttpRequest, **kwargs: Any) -> Any:
        bodies.append(request.content or b"")
        return original(self, request, **kwargs)

    monkeypatch.setattr(_transport.Transport, "send", recording)
    yield bodies


def _failures(client: Any, dead_url: str) -> list[BaseException]:
    """Exceptions of failed calls: an HTTP error, a failed future, a connection error."""
    errors: list[BaseException] = []
    rest = client.create_rest_client()
    for call in (
        lambda: rest.get_training_run("no-such-run").result(timeout=30),
        lambda: client.create_sampling_client(model_path="tinker://nope/weights/x").result(),
        lambda: (
            tinker.ServiceClient(
                base_url=dead_url, api_key=API_KEY, max_retries=0, timeout=2.0
            ).session_id
        ),
    ):
        with pytest.raises(Exception) as caught:
            call()
        errors.append(caught.value)
    return errors


def _dead_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_the_api_key_never_leaks(
    make_server: Callable[..., Any],
    make_client: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    sent_bodies: list[bytes],
) -> None:
    monkeypatch.setenv("TINKER_LOG", "debug")
    monkeypatch.setenv("TINKER_TELEMETRY", "1")
    caplog.set_level(logging.DEBUG)
    server = make_server(api_key=API_KEY)
    client = make_client(server.url)
    trainer = client.create_lora_training_client(base_model=MODEL, rank=4, seed=1)
    fb = trainer.forward_backward(batch(0), "cross_entropy")
    fb.result(timeout=60)
    sampler = trainer.save_weights_and_get_sampling_client("s")
    sample = sampler.sample(
        types.ModelInput.from_ints([1, 2]), 1, types.SamplingParams(max_tokens=2)
    )
    sample.result(timeout=60)
    errors = _failures(client, _dead_url())
    client.close().result(timeout=30)  # flushes telemetry

    config = ClientConfig(api_key=API_KEY, base_url=server.url)
    texts = [caplog.text, *map(repr, (client, trainer, sampler, config, fb, sample))]
    texts += [repr(client.create_rest_client())]
    texts += [f"{type(e).__name__}: {e} {e!r} {e.args}" for e in errors]
    for text in texts:
        assert API_KEY not in text, text
    for error in errors:
        assert SECRET not in pickle.dumps(error)
    assert any(b"event" in body for body in sent_bodies), "no telemetry was sent"
    for body in sent_bodies:
        assert SECRET not in body


def test_server_refuses_missing_and_wrong_keys(make_server: Callable[..., Any]) -> None:
    server = make_server(api_key=API_KEY)
    url = f"{server.url}/api/v1/get_server_capabilities"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, headers={"X-API-Key": "wrong"}, timeout=10).status_code == 401
    reply = requests.get(url, headers={"X-API-Key": API_KEY}, timeout=10)
    assert reply.status_code == 200
    assert API_KEY not in requests.get(url, timeout=10).text


def test_server_binds_loopback_by_default(make_server: Callable[..., Any]) -> None:
    server = make_server()
    assert server.url.startswith("http://127.0.0.1:")
    port = int(server.url.rsplit(":", 1)[1])
    outward = _non_loopback_address()
    if outward is None:
        pytest.skip("no non-loopback address on this machine")
    with socket.socket() as probe, pytest.raises(OSError):
        probe.settimeout(2)
        probe.connect((outward, port))


def _non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            address = str(probe.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") else address


@pytest.mark.parametrize(
    "path",
    [
        "archives/..%2F..%2Ftinker-local.sqlite3",
        "archives/../tinker-local.sqlite3",
        "archives/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "archives/....//....//etc/passwd",
        "training_runs/..%2F..%2F..%2Fetc/checkpoints/weights/x/archive",
        "training_runs/run/checkpoints/weights/..%2F..%2F..%2Fpasswd/archive",
        "training_runs/%2E%2E/checkpoints/weights/%2E%2E/archive",
    ],
)
def test_no_file_outside_the_data_directory_is_served(
    make_server: Callable[..., Any], path: str
) -> None:
    server = make_server(api_key=API_KEY)
    (server.data_dir.parent / "outside.txt").write_text("outside")
    reply = requests.get(
        f"{server.url}/api/v1/{path}",
        headers={"X-API-Key": API_KEY},
        timeout=10,
        allow_redirects=False,
    )
    assert reply.status_code in (400, 401, 404, 422), (reply.status_code, reply.text[:200])
    assert b"root:" not in reply.content and b"SQLite" not in reply.content


@pytest.mark.parametrize(
    "path",
    [
        "tinker://run/weights/../../etc",
        "tinker://../weights/x",
        "tinker://run/../weights/x",
        "tinker://run/weights/a/../../b",
        "tinker://run/weights/",
        "tinker:///weights/x",
    ],
)
def test_tinker_paths_with_traversal_are_rejected(path: str) -> None:
    from tinker.local.server.http_errors import BadRequest
    from tinker.local.server.paths import parse_tinker_path

    with pytest.raises(ValueError, match="Invalid tinker path"):
        types.ParsedCheckpointTinkerPath.from_tinker_path(path)
    with pytest.raises(BadRequest):
        parse_tinker_path(path)


def test_tls_verification_is_on_unless_turned_off_explicitly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("TINKER_VERIFY_TLS", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    config = ClientConfig(api_key=API_KEY, base_url="https://tinker.example")
    assert config.verify_tls is True
    transport = _transport.Transport(config)
    try:
        assert {pool.cert_reqs for pool in transport._pools.values()} == {"CERT_REQUIRED"}
        off = _transport.Transport(
            ClientConfig(api_key=API_KEY, base_url=config.base_url, verify_tls=False)
        )
        try:
            assert {pool.cert_reqs for pool in off._pools.values()} == {"CERT_NONE"}
        finally:
            off.close()
    finally:
        transport.close()
