"""The running server (LocalServer) and its entry points: serve() as a context manager,
shared_server(), `python -m tinker.local serve`."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys

import pytest
import requests

import tinker.local
from tinker.local import LocalServer, serve, shared_server


def test_serve_binds_loopback_and_close_stops_serving(tmp_path: pathlib.Path) -> None:
    server = serve(data_dir=tmp_path)
    assert server.url.startswith("http://127.0.0.1:")
    assert server.data_dir == tmp_path
    assert requests.get(f"{server.url}/api/v1/healthz", timeout=10).json() == {"status": "ok"}
    server.close()
    server.close()  # idempotent
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.url}/api/v1/healthz", timeout=5)


def test_shared_server_is_one_per_process(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TINKER_LOCAL_DATA_DIR", str(tmp_path / "shared"))
    monkeypatch.setattr(tinker.local, "_shared", None)  # leave any other test's server alone
    first = shared_server()
    try:
        assert shared_server() is first
        assert first.data_dir == tmp_path / "shared"
        assert requests.get(f"{first.url}/api/v1/healthz", timeout=10).status_code == 200
    finally:
        first.close()
    second = shared_server()  # a closed shared server is replaced on next use
    try:
        assert second is not first
        assert requests.get(f"{second.url}/api/v1/healthz", timeout=10).status_code == 200
    finally:
        second.close()


def test_command_line_server_takes_the_key_from_the_environment_and_exits_130_on_ctrl_c(
    tmp_path: pathlib.Path,
) -> None:
    command = [sys.executable, "-m", "tinker.local", "serve", "--port", "0"]
    command += ["--data-dir", str(tmp_path), "--long-poll-seconds", "1"]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "TINKER_LOCAL_API_KEY": "k3y"},
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        assert first_line.startswith("Tinker local server: http://127.0.0.1:")
        url = first_line.split(": ", 1)[1].strip()
        assert requests.post(f"{url}/api/v1/create_session", json={}, timeout=10).status_code == 401
        answer = requests.post(
            f"{url}/api/v1/create_session", json={}, headers={"X-API-Key": "k3y"}, timeout=10
        )
        assert answer.status_code == 200
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 130, stderr
        assert "k3y" not in stderr
        assert "Traceback" not in stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_serve_on_ipv6_loopback(tmp_path: pathlib.Path) -> None:
    try:
        server = serve(host="::1", data_dir=tmp_path)
    except OSError as exc:  # no IPv6 on this machine
        pytest.skip(f"IPv6 loopback unavailable: {exc}")
    with server:
        assert server.url.startswith("http://[::1]:")
        assert requests.get(f"{server.url}/api/v1/healthz", timeout=10).json() == {"status": "ok"}


def test_server_fixture_type(server: LocalServer) -> None:
    assert server.url.startswith("http://127.0.0.1:")
    assert repr(server).startswith("LocalServer(url=")
