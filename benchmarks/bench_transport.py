"""Transport benchmark: client CPU per request and throughput, tinker Runtime vs raw urllib3.

A local instant-answer server (in a subprocess, so its CPU is not counted) answers asample with
a request_id and retrieve_future with the result at once. Both clients do the same two requests
per operation from a thread pool; the ratio of client CPU per operation is printed (target
<= 1.5x raw).

`--poll` compares polling schemes for many pending futures that finish at staggered times:
the Runtime's bounded poll pool (round robin over pending futures) against one thread per
future long-polling, reporting completion-to-resolution latency, threads and CPU.

Run: .venv/bin/python benchmarks/bench_transport.py [--ops 3000] [--poll]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.server
import json
import multiprocessing
import random
import statistics
import threading
import time
import uuid
from typing import Any

import urllib3

from tinker import _wire
from tinker._calls import ApiCall
from tinker._futures import APIFuture
from tinker._runtime import Runtime, RuntimeOptions
from tinker._session import open_session
from tinker._transport import HttpRequest, Traffic, platform_headers
from tinker.config import ClientConfig

RESULT = {
    "sequences": [{"tokens": [1, 2, 3], "logprobs": [-0.1, -0.2, -0.3], "stop_reason": "stop"}]
}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    hold = 5.0

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else {}
        status, answer = self._answer(self.path, body)
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _answer(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        if path == "/api/v1/create_session":
            return 200, {"session_id": "bench"}
        if path == "/api/v1/asample":
            ready_at = time.time() + float(body.get("delay", 0.0))
            return 200, {"request_id": f"{ready_at!r}:{body.get('n', 0)}"}
        if path == "/api/v1/retrieve_future":
            ready_at = float(body["request_id"].split(":")[0])
            wait = ready_at - time.time()
            if wait > 0:
                time.sleep(min(wait, self.hold))
            if time.time() >= ready_at:
                return 200, RESULT
            return 408, {"type": "try_again", "queue_state": "active"}
        if path == "/api/v1/telemetry":
            return 200, {"status": "accepted"}
        return 200, {}


def _serve(port_queue: Any, hold: float) -> None:
    _Handler.hold = hold
    http.server.ThreadingHTTPServer.request_queue_size = 4096  # listen backlog
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    port_queue.put(server.server_address[1])
    server.serve_forever()


def start_server(hold: float = 5.0) -> tuple[multiprocessing.Process, str]:
    queue: Any = multiprocessing.Queue()
    process = multiprocessing.Process(target=_serve, args=(queue, hold), daemon=True)
    process.start()
    return process, f"http://127.0.0.1:{queue.get(timeout=10)}"


def measure(fn: Any) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of fn()."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def raw_urllib3(url: str, ops: int, threads: int) -> None:
    """The same two requests, with the same protocol headers, straight on urllib3."""
    host, port = url.removeprefix("http://").split(":")
    pool = urllib3.HTTPConnectionPool(host, int(port), maxsize=threads)
    static = {
        **platform_headers("0.5.1"),
        "X-API-Key": "k",
        "Accept-Encoding": "gzip, deflate",
        "Content-Type": "application/json",
        "x-stainless-retry-count": "0",
    }

    def post(path: str, body: dict[str, Any], extra: dict[str, str]) -> Any:
        headers = {**static, **extra, "X-Idempotency-Key": f"stainless-python-retry-{uuid.uuid4()}"}
        response = pool.urlopen(
            "POST", path, body=json.dumps(body).encode(), headers=headers, retries=False
        )
        return json.loads(response.data)

    def one(n: int) -> Any:
        request_id = post("/api/v1/asample", {"n": n}, {"x-stainless-read-timeout": "60"})
        return post(
            "/api/v1/retrieve_future",
            {"request_id": request_id["request_id"]},
            {"x-stainless-read-timeout": "45", **POLL_HEADERS},
        )

    with concurrent.futures.ThreadPoolExecutor(threads) as executor:
        for answer in executor.map(one, range(ops)):
            assert answer == RESULT


POLL_HEADERS = {
    "X-Tinker-Request-Iteration": "0",
    "X-Tinker-Request-Type": "Sample",
    "X-Tinker-Create-Promise-Roundtrip-Time": "0.001",
    "X-Stainless-Raw-Response": "raw",
}


def _as_is(body: Any) -> Any:
    return body


def _asample(body: dict[str, Any]) -> ApiCall:
    return ApiCall(traffic=Traffic.SAMPLE, method="POST", path="/api/v1/asample", body=body)


def tinker_runtime(runtime: Runtime, ops: int, threads: int) -> None:
    def submit(n: int) -> APIFuture[Any]:
        started = time.monotonic()
        request_id = runtime.call(_asample({"n": n}))["request_id"]
        return runtime.poller.track(request_id, "Sample", _as_is, submitted_at=started)

    with concurrent.futures.ThreadPoolExecutor(threads) as executor:
        futures = list(executor.map(submit, range(ops)))
    for future in futures:
        assert future.result(timeout=60) == RESULT


def transport_benchmark(ops: int, threads: int) -> None:
    process, url = start_server()
    try:
        config = ClientConfig(api_key="k", base_url=url, telemetry=False)
        runtime = open_session(config, options=RuntimeOptions(heartbeat=False))
        raw_urllib3(url, 200, threads)  # warm up both
        tinker_runtime(runtime, 200, threads)
        rows = []
        for name, run in (
            ("raw urllib3", lambda: raw_urllib3(url, ops, threads)),
            ("tinker Runtime", lambda: tinker_runtime(runtime, ops, threads)),
        ):
            wall, cpu = measure(run)
            rows.append((name, wall, cpu))
        runtime.close()
    finally:
        process.terminate()
    print(f"\n{ops} operations (asample + retrieve_future), {threads} caller threads")
    print(f"{'client':<16}{'ops/s':>10}{'CPU ms/op':>12}")
    for name, wall, cpu in rows:
        print(f"{name:<16}{ops / wall:>10.0f}{1000 * cpu / ops:>12.3f}")
    ratio = rows[1][2] / rows[0][2]
    verdict = "ok" if ratio <= 1.5 else "ABOVE TARGET"
    print(f"CPU per request, tinker / raw urllib3: {ratio:.2f}x (target <= 1.5x: {verdict})")


def _poll_with_threads(runtime: Runtime, submitted: list[tuple[float, str]], record: Any) -> None:
    """The alternative scheme: one thread per pending future, each long-polling its own."""

    def poll_until_done(ready_at: float, request_id: str) -> None:
        while True:
            poll = HttpRequest(
                traffic=Traffic.POLL,
                method="POST",
                path="/api/v1/retrieve_future",
                content=_wire.dumps({"request_id": request_id}),
                timeout=45.0,
            )
            reply = runtime.transport.send(poll)
            if reply.status_code == 200:
                record(ready_at)
                return

    threads = [threading.Thread(target=poll_until_done, args=item) for item in submitted]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)


def _poll_with_pool(runtime: Runtime, submitted: list[tuple[float, str]], record: Any) -> None:
    """The Runtime's scheme: its bounded poll pool, round robin over pending futures."""
    futures = []
    for ready_at, request_id in submitted:
        future = runtime.poller.track(request_id, "Sample", _as_is)
        future.add_done_callback(lambda _f, r=ready_at: record(r))
        futures.append(future)
    for future in futures:
        future.result(timeout=120)


def _run_scheme(
    url: str, poll: Any, pending: int, spread: float, workers: int, shuffle: bool
) -> tuple[list[float], int, float]:
    config = ClientConfig(api_key="k", base_url=url, telemetry=False, pool_sizes={"poll": 2000})
    runtime = open_session(config, options=RuntimeOptions(heartbeat=False, poll_workers=workers))
    latencies: list[float] = []
    peak_threads = [threading.active_count()]
    lock = threading.Lock()

    def record(ready_at: float) -> None:
        with lock:
            latencies.append(time.time() - ready_at)
            peak_threads[0] = max(peak_threads[0], threading.active_count())

    cpu_start = time.process_time()
    submitted = []
    delays = [spread * n / pending for n in range(pending)]
    if shuffle:
        random.Random(0).shuffle(delays)
    for n, delay in enumerate(delays):
        body = {"n": n, "delay": delay}
        answer = runtime.call(_asample(body))
        submitted.append((float(answer["request_id"].split(":")[0]), answer["request_id"]))
    poll(runtime, submitted, record)
    cpu = time.process_time() - cpu_start
    runtime.close()
    return latencies, peak_threads[0], cpu


def poll_scheme_benchmark(
    pending: int, spread: float, hold: float, workers: int, shuffle: bool
) -> None:
    """Latency from a result being ready to its future resolving, per polling scheme."""
    process, url = start_server(hold=hold)
    try:
        rows = [
            (name, *_run_scheme(url, poll, pending, spread, workers, shuffle))
            for name, poll in (
                (f"bounded pool ({workers})", _poll_with_pool),
                ("thread per future", _poll_with_threads),
            )
        ]
    finally:
        process.terminate()
    order = "in random order" if shuffle else "in submission order"
    print(
        f"\n{pending} pending futures, results ready over {spread:.0f}s {order}, "
        f"server long-poll hold {hold}s"
    )
    print(f"{'scheme':<22}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'threads':>9}{'CPU s':>8}")
    for name, latencies, threads_used, cpu in rows:
        latencies.sort()
        p95 = latencies[int(0.95 * (len(latencies) - 1))]
        print(
            f"{name:<22}{1000 * statistics.median(latencies):>9.0f}{1000 * p95:>9.0f}"
            f"{1000 * latencies[-1]:>9.0f}{threads_used:>9}{cpu:>8.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--poll", action="store_true", help="also compare polling schemes")
    parser.add_argument("--pending", type=int, default=1000)
    parser.add_argument("--spread", type=float, default=10.0)
    parser.add_argument("--hold", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--shuffle", action="store_true", help="results finish in random order")
    args = parser.parse_args()
    transport_benchmark(args.ops, args.threads)
    if args.poll:
        poll_scheme_benchmark(args.pending, args.spread, args.hold, args.workers, args.shuffle)


if __name__ == "__main__":
    main()
