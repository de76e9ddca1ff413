"""One server per data directory: a second one refuses to start, naming the first; the lock of
a killed server is taken over."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
import requests

import tinker.local
from tinker.local import AttachedServer, DataDirectoryInUse, LocalServer, serve

from .conftest import FAST
from .fake_backend import FakeBackend

HOLD = """
import sys, time
from tinker.local.server.data_lock import DataDirectoryLock
lock = DataDirectoryLock(__import__("pathlib").Path(sys.argv[1]))
lock.announce("http://127.0.0.1:9")
print("held", flush=True)
time.sleep(60)
"""


def test_a_second_server_on_the_same_directory_refuses_naming_the_first(
    tmp_path: pathlib.Path,
) -> None:
    with serve(data_dir=tmp_path, backend=FakeBackend(), config=FAST) as first:
        with pytest.raises(DataDirectoryInUse) as refused:
            serve(data_dir=tmp_path, backend=FakeBackend(), config=FAST)
        message = str(refused.value)
        assert f"pid {os.getpid()}, {first.url}" in message
        assert str(tmp_path) in message
        # the refused server changed nothing: the first one still serves its directory
        assert requests.get(f"{first.url}/api/v1/healthz", timeout=10).status_code == 200
        assert json.loads((tmp_path / "server.lock").read_text())["url"] == first.url
    with serve(data_dir=tmp_path, backend=FakeBackend(), config=FAST) as again:
        assert json.loads((tmp_path / "server.lock").read_text())["url"] == again.url


@pytest.fixture
def holder(tmp_path: pathlib.Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock of tmp_path, announcing http://127.0.0.1:9."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "held"
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def _kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def test_the_lock_of_a_killed_server_is_taken_over(
    tmp_path: pathlib.Path, holder: subprocess.Popen[str]
) -> None:
    with pytest.raises(DataDirectoryInUse, match=f"pid {holder.pid}, http://127.0.0.1:9"):
        serve(data_dir=tmp_path, backend=FakeBackend(), config=FAST)
    _kill(holder)
    with serve(data_dir=tmp_path, backend=FakeBackend(), config=FAST) as server:
        assert json.loads((tmp_path / "server.lock").read_text()) == {
            "pid": os.getpid(),
            "url": server.url,
        }


def test_base_url_local_uses_the_server_of_another_process(
    tmp_path: pathlib.Path, holder: subprocess.Popen[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TINKER_LOCAL_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(tinker.local, "_shared", None)  # leave any other test's server alone
    attached = tinker.local.shared_server()
    assert isinstance(attached, AttachedServer)
    assert (attached.url, attached.pid) == ("http://127.0.0.1:9", holder.pid)
    assert not attached.closed
    assert tinker.local.shared_server() is attached
    _kill(holder)
    assert attached.closed
    own = tinker.local.shared_server()  # the other process is gone: this one starts its own
    try:
        assert isinstance(own, LocalServer) and own.data_dir == tmp_path
    finally:
        own.close()


def test_the_command_line_reports_a_directory_in_use(tmp_path: pathlib.Path) -> None:
    with serve(data_dir=tmp_path, backend=FakeBackend(), config=FAST) as first:
        finished = subprocess.run(
            [sys.executable, "-m", "tinker.local", "serve", "--data-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert finished.returncode == 2
    assert finished.stderr.startswith("tinker.local: cannot start the server: The data directory")
    assert first.url in finished.stderr
