"""The server's own memory and threads under hostile load, measured in its own process.

Twelve unauthenticated 60 MB uploads, 2,000 sockets at once, and the largest sample request
the limits allow: the peak RSS (VmHWM, reset before each load) and the thread count of the
server process stay within fixed bounds. The figures are in docs/reliability.md.
"""

from __future__ import annotations

import concurrent.futures
import pathlib
import resource
import socket
import sys
import threading
import time

import pytest
import requests

from tinker.local.server import settings

from .conftest import API_KEY
from .processes import ServerProcess
from .target import poll

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
MIB = 1024  # VmRSS and VmHWM are in kB


def _status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (kB) and Threads of a process."""
    found = {}
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM", "Threads"):
            found[name] = int(value.split()[0])
    return found


def _reset_peak(pid: int) -> None:
    pathlib.Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS


def _allow_files(count: int) -> None:
    """Raise this process's open-file limit to `count`, or skip when the hard limit is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= count:
        return
    if hard != resource.RLIM_INFINITY and hard < count:
        pytest.skip(f"needs {count} open files, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (count, hard))


def test_unauthenticated_uploads_do_not_reach_the_servers_memory(
    tmp_path: pathlib.Path, processes: list[ServerProcess]
) -> None:
    server = ServerProcess(tmp_path, args=("--api-key", API_KEY))
    processes.append(server)
    assert requests.get(f"{server.url}/api/v1/healthz", timeout=10).status_code == 200
    before = _status(server.pid)["VmRSS"]
    _reset_peak(server.pid)
    payload = b"x" * 60_000_000

    def upload(_: int) -> requests.Response:
        return requests.post(
            f"{server.url}/api/v1/create_session",
            data=payload,
            headers={"X-API-Key": "wrong"},
            timeout=120,
        )

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(upload, range(12)))
    grew = _status(server.pid)["VmHWM"] - before
    print(f"12 x 60 MB unauthenticated: server RSS peak +{grew / MIB:.1f} MiB")
    assert [answer.status_code for answer in answers] == [401] * 12
    assert answers[0].json() == {"detail": "Invalid or missing API key (X-API-Key header)."}
    assert grew < 32 * MIB  # the bodies were never held (720 MB were sent)


def test_two_thousand_sockets_leave_the_thread_count_bounded(
    tmp_path: pathlib.Path, processes: list[ServerProcess]
) -> None:
    _allow_files(2200)
    server = ServerProcess(tmp_path)
    processes.append(server)
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    peak = 0
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _status(server.pid)["Threads"])
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    sockets = []
    try:
        for _ in range(2000):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex((host, int(port)))
            sockets.append(sock)
        time.sleep(1.0)
        started = time.monotonic()
        assert requests.get(f"{server.url}/api/v1/healthz", timeout=30).status_code == 200
        answered = time.monotonic() - started
    finally:
        done.set()
        watcher.join()
        for sock in sockets:
            sock.close()
    print(f"2,000 sockets: peak {peak} server threads, a new request answered in {answered:.2f} s")
    assert peak <= settings.MAX_CONNECTIONS + 16


@pytest.mark.slow
def test_the_largest_sample_request_holds_a_bounded_kv_cache(
    tmp_path: pathlib.Path, processes: list[ServerProcess]
) -> None:
    server = ServerProcess(tmp_path)
    processes.append(server)
    http = requests.Session()
    api = f"{server.url}/api/v1"
    session = http.post(f"{api}/create_session", json={}, timeout=30).json()["session_id"]
    sampler = http.post(
        f"{api}/create_sampling_session",
        json={
            "session_id": session,
            "sampling_session_seq_id": 0,
            "base_model": "tinker-local/tiny",
        },
        timeout=30,
    ).json()["sampling_session_id"]
    prompt = {"chunks": [{"tokens": [1, 2, 3]}]}
    largest = settings.MAX_SAMPLE_TOKENS // settings.MAX_NUM_SAMPLES - 3
    ask = {"sampling_session_id": sampler, "prompt": prompt, "seq_id": 0}
    warm = {**ask, "num_samples": 1, "sampling_params": {"max_tokens": 1}}
    poll(http, server.url, http.post(f"{api}/asample", json=warm, timeout=30).json()["request_id"])

    too_many = {**ask, "seq_id": 1, "num_samples": 20_000, "sampling_params": {"max_tokens": 1}}
    refused = http.post(f"{api}/asample", json=too_many, timeout=30)
    assert refused.status_code == 400 and "num_samples: 20000" in refused.json()["detail"]

    before = _status(server.pid)["VmRSS"]
    _reset_peak(server.pid)
    params = {"max_tokens": largest, "stop": [], "seed": 0}
    full = {**ask, "seq_id": 2, "num_samples": settings.MAX_NUM_SAMPLES, "sampling_params": params}
    submitted = http.post(f"{api}/asample", json=full, timeout=30).json()
    result = poll(http, server.url, submitted["request_id"], bound=120)
    grew = _status(server.pid)["VmHWM"] - before
    print(
        f"{settings.MAX_NUM_SAMPLES} x {3 + largest} tokens on tiny: RSS peak +{grew / MIB:.1f} MiB"
    )
    assert [len(s["tokens"]) for s in result["sequences"]] == [largest] * settings.MAX_NUM_SAMPLES
    assert grew < 64 * MIB  # its KV cache: 32,768 tokens of 1 KiB
