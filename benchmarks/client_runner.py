"""One workload in this process, printed as one JSON line: the client side of every benchmark.

Run by path with the interpreter under test (ours, or the official SDK's venv), so it imports
only the standard library, the `tinker` package of that interpreter and, for the raw floor,
urllib3. The same workload code drives every implementation through a small adapter:
`SdkAdapter` (the public tinker API, identical in both SDKs) and `RawAdapter` (urllib3 from a
thread pool, the floor).

    python benchmarks/client_runner.py WORKLOAD --impl sdk|raw --url URL [--params JSON]
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

API_KEY = "tml-bench-key"  # the official SDK 0.38 refuses keys without the prefix
STUB_MODEL = "bench/stub-model"
SAMPLE_TOKENS = 16
MAX_CHUNK_LEN = 128
MAX_CHUNK_NUMBERS = 500_000


# Only light standard-library modules are imported up front: the import workload's RSS figure
# should be the SDK's, not this script's.

# ---------------------------------------------------------------- measuring this process


def cpu_seconds() -> float:
    """User + system CPU time of this whole process (every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def os_threads() -> int:
    """OS threads of this process, including ones Python did not start (event loops, BLAS)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise RuntimeError("no Threads line in /proc/self/status")


def process_cpu(pid: int) -> float:
    """CPU seconds of another process (a server), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ThreadPeak:
    """Samples the OS thread count every few milliseconds; `peak` excludes the sampler itself.

    `names` says which Python threads were alive at the peak (name prefixes without their
    numbers, counted), to tell which pool grew.
    """

    def __init__(self, interval: float = 0.005) -> None:
        self.peak = os_threads()
        self.names = thread_names()
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="thread-peak", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            count = os_threads() - 1
            if count > self.peak:
                self.peak, self.names = count, thread_names()

    def __enter__(self) -> ThreadPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if os_threads() > self.peak:
            self.peak, self.names = os_threads(), thread_names()


def thread_names() -> dict[str, int]:
    """Live Python threads by name with digits and separators stripped from the end."""
    counts: dict[str, int] = {}
    for thread in threading.enumerate():
        if thread.name == "thread-peak":
            continue
        name = thread.name.rstrip("0123456789_-() ").removesuffix(" (")
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))


@contextmanager
def measured(into: dict[str, float], prefix: str) -> Iterator[None]:
    """Records wall and process CPU seconds of the block as <prefix>_wall_s / <prefix>_cpu_s."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    yield
    into[f"{prefix}_wall_s"] = time.perf_counter() - wall
    into[f"{prefix}_cpu_s"] = cpu_seconds() - cpu


def control(url: str, route: str, body: dict[str, Any] | None = None) -> Any:
    """Call a stub control endpoint (/_bench/...) with the standard library."""
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    method = "GET" if data is None else "POST"
    request = urllib.request.Request(url + route, data=data, method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


# ---------------------------------------------------------------- adapters


def encode(obj: object) -> bytes:
    """Compact JSON bytes, as the SDKs send them."""
    return json.dumps(obj, separators=(",", ":")).encode()


class Handle(Protocol):
    def result(self, timeout: float | None = None) -> Any: ...


class Adapter(Protocol):
    """What a workload needs from a client implementation."""

    def start_session(self) -> None: ...
    def start_sampler(self, base_model: str) -> None: ...
    def start_trainer(self, base_model: str) -> None: ...
    def sample(self, tokens: list[int]) -> Handle: ...
    def sample_check(self, result: Any) -> int: ...
    def build_batch(self, tokens: Any, targets: Any, weights: Any) -> Any: ...
    def forward_backward(self, batch: Any) -> Handle: ...
    def optim_step(self, learning_rate: float) -> Handle: ...
    def outputs_count(self, result: Any) -> int: ...
    def loss(self, result: Any) -> float: ...
    def close(self) -> None: ...


class SdkAdapter:
    """The public tinker API; the same calls work on tinker-sync and the official SDK."""

    def __init__(self, url: str) -> None:
        import tinker
        from tinker import types

        self._tinker, self._types, self._url = tinker, types, url
        self._params = types.SamplingParams(max_tokens=SAMPLE_TOKENS)
        self.service: Any = None
        self.sampler: Any = None
        self.trainer: Any = None

    def start_session(self) -> None:
        self.service = self._tinker.ServiceClient(base_url=self._url)

    def start_sampler(self, base_model: str) -> None:
        self.sampler = _client(self.service.create_sampling_client(base_model=base_model))

    def start_trainer(self, base_model: str) -> None:
        self.trainer = _client(
            self.service.create_lora_training_client(base_model=base_model, rank=8)
        )

    def sample(self, tokens: list[int]) -> Handle:
        prompt = self._types.ModelInput.from_ints(tokens)
        future: Handle = self.sampler.sample(prompt, 1, self._params)
        return future

    def sample_check(self, result: Any) -> int:
        return len(result.sequences[0].tokens)

    def build_batch(self, tokens: Any, targets: Any, weights: Any) -> Any:
        types = self._types
        return [
            types.Datum(
                model_input=types.ModelInput.from_ints(row.tolist()),
                loss_fn_inputs={"target_tokens": target, "weights": weight},
            )
            for row, target, weight in zip(tokens, targets, weights, strict=True)
        ]

    def forward_backward(self, batch: Any) -> Handle:
        future: Handle = self.trainer.forward_backward(batch, "cross_entropy")
        return future

    def optim_step(self, learning_rate: float) -> Handle:
        params = self._types.AdamParams(learning_rate=learning_rate)
        future: Handle = self.trainer.optim_step(params)
        return future

    def outputs_count(self, result: Any) -> int:
        return len(result.loss_fn_outputs)

    def loss(self, result: Any) -> float:
        return float(result.metrics["loss:sum"])

    def close(self) -> None:
        close = getattr(self.service, "close", None)  # the official SDK 0.5.1 has no close()
        if close is None:
            return
        if "status" in inspect.signature(close).parameters:  # official 0.38: a future
            close("success").result(timeout=30)
        else:
            close()


def _client(created: Any) -> Any:
    """The client itself: the official SDK 0.38 returns a future of it (using the future as
    the client would warn on every call)."""
    return created.result() if type(created).__name__.startswith("Backcompat") else created


def protocol_headers() -> dict[str, str]:
    """The headers every request of the protocol carries as the SDKs send them."""
    import platform

    return {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "User-Agent": "AsyncTinker/Python 0.5.1",
        "X-API-Key": API_KEY,
        "X-Stainless-Package-Version": "0.5.1",
        "X-Stainless-OS": "Linux",
        "X-Stainless-Arch": "x64",
        "X-Stainless-Runtime": platform.python_implementation(),
        "X-Stainless-Runtime-Version": platform.python_version(),
        "X-Stainless-Async": "async:asyncio",
    }


class RawAdapter:
    """The floor: the same requests from a thread pool, JSON by hand, no checks, no retries.

    Same bodies and the same protocol headers as the SDKs (fresh idempotency key per call, poll
    headers on retrieve_future). `library` "urllib3" sends with a bare HTTPConnectionPool;
    "requests" with a requests.Session, to show what the HTTP library alone costs.
    """

    def __init__(self, url: str, workers: int = 16, library: str = "urllib3") -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="raw")
        self._headers = protocol_headers()
        self._post = (
            self._urllib3(url, workers) if library == "urllib3" else self._requests(url, workers)
        )
        self._session_id = ""
        self._sampler_id = ""
        self._model_id = ""
        self._seq = 0
        self._lock = threading.Lock()

    def _call_headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        import uuid

        headers = {
            **self._headers,
            "x-stainless-retry-count": "0",
            "x-stainless-read-timeout": "60",
            "X-Idempotency-Key": f"stainless-python-retry-{uuid.uuid4()}",
        }
        if extra:
            headers.update(extra)
        return headers

    def _urllib3(self, url: str, workers: int) -> Callable[..., tuple[int, Any]]:
        import urllib3

        host, port = url.split("://", 1)[1].rsplit(":", 1)
        pool = urllib3.HTTPConnectionPool(host, int(port), maxsize=workers, block=True)
        self._close_http = pool.close

        def post(path: str, body: bytes, extra: dict[str, str] | None = None) -> tuple[int, Any]:
            headers = self._call_headers(extra)
            response = pool.request("POST", path, body=body, headers=headers)
            return response.status, json.loads(response.data)

        return post

    def _requests(self, url: str, workers: int) -> Callable[..., tuple[int, Any]]:
        import requests

        session = requests.Session()
        session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=workers))
        self._close_http = session.close

        def post(path: str, body: bytes, extra: dict[str, str] | None = None) -> tuple[int, Any]:
            headers = self._call_headers(extra)
            response = session.post(url + path, data=body, headers=headers)
            return response.status_code, response.json()

        return post

    def _future(
        self, path: str, body: bytes, kind: str, extra: dict[str, str] | None = None
    ) -> Any:
        status, submitted = self._post(path, body, extra)
        if status != 200:
            raise RuntimeError(f"{path} answered {status}: {submitted}")
        poll = encode({"request_id": submitted["request_id"]})
        iteration = 0
        while True:
            poll_headers = {
                "x-stainless-read-timeout": "45",
                "X-Tinker-Request-Iteration": str(iteration),
                "X-Tinker-Request-Type": kind,
                "X-Stainless-Raw-Response": "raw",
            }
            status, payload = self._post("/api/v1/retrieve_future", poll, poll_headers)
            if status == 200 and payload.get("type") != "try_again":
                return payload
            if status not in (200, 408):
                raise RuntimeError(f"retrieve_future answered {status}: {payload}")
            iteration += 1

    def _next_seq(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq

    def start_session(self) -> None:
        body = {"tags": [], "user_metadata": {}, "sdk_version": "raw"}
        self._session_id = self._post("/api/v1/create_session", encode(body))[1]["session_id"]

    def start_sampler(self, base_model: str) -> None:
        body = {
            "session_id": self._session_id,
            "sampling_session_seq_id": 0,
            "base_model": base_model,
            "model_path": None,
        }
        reply = self._post("/api/v1/create_sampling_session", encode(body))[1]
        self._sampler_id = reply["sampling_session_id"]

    def start_trainer(self, base_model: str) -> None:
        body = {
            "session_id": self._session_id,
            "model_seq_id": 0,
            "base_model": base_model,
            "user_metadata": None,
            "lora_config": {
                "rank": 8,
                "seed": None,
                "train_unembed": True,
                "train_mlp": True,
                "train_attn": True,
            },
        }
        self._model_id = self._future("/api/v1/create_model", encode(body), "CreateModel")[
            "model_id"
        ]

    def sample(self, tokens: list[int]) -> Handle:
        body = {
            "num_samples": 1,
            "prompt": {"chunks": [{"tokens": tokens}]},
            "sampling_params": {"max_tokens": SAMPLE_TOKENS},
            "sampling_session_id": self._sampler_id,
            "seq_id": self._next_seq(),
            "prompt_logprobs": False,
            "topk_prompt_logprobs": 0,
        }
        return self._executor.submit(
            self._future,
            "/api/v1/asample",
            encode(body),
            "Sample",
            {"X-Tinker-Sampling-Backpressure": "1"},
        )

    def sample_check(self, result: Any) -> int:
        return len(result["sequences"][0]["tokens"])

    def build_batch(self, tokens: Any, targets: Any, weights: Any) -> Any:
        return [
            {
                "model_input": {"chunks": [{"tokens": row.tolist()}]},
                "loss_fn_inputs": {
                    "target_tokens": {
                        "data": target.tolist(),
                        "dtype": "int64",
                        "shape": [len(row)],
                    },
                    "weights": {"data": weight.tolist(), "dtype": "float32", "shape": [len(row)]},
                },
            }
            for row, target, weight in zip(tokens, targets, weights, strict=True)
        ]

    def forward_backward(self, batch: Any) -> Handle:
        chunks = split_chunks(
            batch, [3 * len(d["model_input"]["chunks"][0]["tokens"]) for d in batch]
        )
        bodies = [
            encode(
                {
                    "forward_backward_input": {
                        "data": chunk,
                        "loss_fn": "cross_entropy",
                        "loss_fn_config": None,
                    },
                    "model_id": self._model_id,
                    "seq_id": self._next_seq(),
                }
            )
            for chunk in chunks
        ]
        return self._executor.submit(self._merge, bodies)

    def _merge(self, bodies: list[bytes]) -> Any:
        parts = [
            self._future("/api/v1/forward_backward", body, "ForwardBackward") for body in bodies
        ]
        outputs = [o for part in parts for o in part["loss_fn_outputs"]]
        loss = sum(part["metrics"]["loss:sum"] for part in parts)
        return {"loss_fn_outputs": outputs, "metrics": {"loss:sum": loss}}

    def optim_step(self, learning_rate: float) -> Handle:
        body = {
            "adam_params": {"learning_rate": learning_rate},
            "model_id": self._model_id,
            "seq_id": self._next_seq(),
        }
        return self._executor.submit(self._future, "/api/v1/optim_step", encode(body), "OptimStep")

    def outputs_count(self, result: Any) -> int:
        return len(result["loss_fn_outputs"])

    def loss(self, result: Any) -> float:
        return float(result["metrics"]["loss:sum"])

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._close_http()


def split_chunks(items: list[Any], sizes: list[int]) -> list[list[Any]]:
    """Greedy packing the SDKs use: at most 128 datums and 500,000 numbers per request."""
    chunks: list[list[Any]] = [[]]
    numbers = 0
    for item, size in zip(items, sizes, strict=True):
        current = chunks[-1]
        if current and (len(current) >= MAX_CHUNK_LEN or numbers + size > MAX_CHUNK_NUMBERS):
            chunks.append([])
            numbers = 0
        chunks[-1].append(item)
        numbers += size
    return chunks


# ---------------------------------------------------------------- workloads


def run_import(_: str, __: str, ___: dict[str, Any]) -> dict[str, Any]:
    """Wall time and RSS of `import tinker` in this fresh interpreter."""
    rss_before = peak_rss_mb()
    start = time.perf_counter()
    import tinker

    elapsed = time.perf_counter() - start
    return {
        "import_s": elapsed,
        "rss_mb": peak_rss_mb(),
        "rss_before_mb": rss_before,
        "version": getattr(tinker, "__version__", "?"),
        "modules": len(sys.modules),
    }


def make_adapter(impl: str, url: str, params: dict[str, Any]) -> Adapter:
    if impl in ("raw", "raw-requests"):
        library = "requests" if impl == "raw-requests" else "urllib3"
        return RawAdapter(url, workers=int(params.get("workers", 16)), library=library)
    return SdkAdapter(url)


def run_create(impl: str, url: str, params: dict[str, Any]) -> dict[str, Any]:
    """ServiceClient + sampling client creation (import excluded: it is its own workload)."""
    out: dict[str, Any] = {}
    with measured(out, "import"):
        client = make_adapter(impl, url, params)
    with profiled(), measured(out, "create"):
        client.start_session()
        client.start_sampler(STUB_MODEL)
    out["ready_wall_s"] = out["import_wall_s"] + out["create_wall_s"]
    out["rss_mb"] = peak_rss_mb()
    out["threads"] = os_threads()
    client.close()
    return out


def run_sample(impl: str, url: str, params: dict[str, Any]) -> dict[str, Any]:
    """N sample calls in flight at once against the stub; client CPU, threads, RSS."""
    n = int(params["n"])
    client = make_adapter(impl, url, params)
    client.start_session()
    client.start_sampler(STUB_MODEL)
    for warm in [client.sample([1, 2, 3]) for _ in range(32)]:
        warm.result(timeout=60)
    prompts = [[i + 1, 2, 3, 4] for i in range(n)]
    control(url, "/_bench/reset", {})
    stub_pid = int(params.get("server_pid", 0))
    stub_cpu = process_cpu(stub_pid) if stub_pid else 0.0
    out: dict[str, Any] = {"n": n, "threads_before": os_threads()}
    start = time.perf_counter()
    with ThreadPeak() as peak, profiled(), measured(out, "run"):
        futures = [client.sample(prompt) for prompt in prompts]
        submitted = time.perf_counter()
        tokens = sum(client.sample_check(f.result(timeout=600)) for f in futures)
    out["submit_wall_s"] = submitted - start
    if tokens != n * SAMPLE_TOKENS:
        raise RuntimeError(f"expected {n * SAMPLE_TOKENS} sampled tokens, got {tokens}")
    out.update(
        peak_thread_names=peak.names,
        peak_threads=peak.peak,
        rss_mb=peak_rss_mb(),
        requests_per_s=n / out["run_wall_s"],
        cpu_ms_per_request=1000 * out["run_cpu_s"] / n,
    )
    wire = control(url, "/_bench/stats")["requests"]
    out["http_requests"] = sum(v for k, v in wire.items() if k.startswith("/api/"))
    if stub_pid:
        stub_busy = process_cpu(stub_pid) - stub_cpu
        out["stub_cpu_share"] = stub_busy / out["run_wall_s"]
        # What one stub core could serve at this cost per request: its headroom over the client.
        out["stub_capacity_rps"] = out["http_requests"] / max(stub_busy, 0.01)
    client.close()
    return out


def run_forward_backward(impl: str, url: str, params: dict[str, Any]) -> dict[str, Any]:
    """Build, validate, serialise and submit one large forward_backward; bytes on the wire."""
    import numpy as np

    datums, length = int(params.get("datums", 128)), int(params.get("tokens", 2048))
    control(url, "/_bench/config", {"fb_result": "minimal"})
    client = make_adapter(impl, url, params)
    client.start_session()
    client.start_trainer(STUB_MODEL)
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 32_000, size=(datums, length), dtype=np.int64)
    targets = np.roll(tokens, -1, axis=1)
    weights = np.ones((datums, length), dtype=np.float32)
    warm = client.build_batch(tokens[:2, :16], targets[:2, :16], weights[:2, :16])
    client.forward_backward(warm).result(timeout=60)
    control(url, "/_bench/reset", {})
    out: dict[str, Any] = {"datums": datums, "tokens": length}
    with profiled():
        with measured(out, "build"):
            batch = client.build_batch(tokens, targets, weights)
        with measured(out, "submit"):
            result = client.forward_backward(batch).result(timeout=600)
    if client.outputs_count(result) != datums:
        raise RuntimeError(f"expected {datums} outputs, got {client.outputs_count(result)}")
    out["total_cpu_s"] = out["build_cpu_s"] + out["submit_cpu_s"]
    out["total_wall_s"] = out["build_wall_s"] + out["submit_wall_s"]
    stats = control(url, "/_bench/stats")
    out["wire_bytes"] = stats["bytes_in"].get("/api/v1/forward_backward", 0)
    out["wire_requests"] = stats["requests"].get("/api/v1/forward_backward", 0)
    out["rss_mb"] = peak_rss_mb()
    control(url, "/_bench/config", {"fb_result": "full"})
    client.close()
    return out


def run_poll(impl: str, url: str, params: dict[str, Any]) -> dict[str, Any]:
    """Server completes each future `delay` s after submit; time until result() returns."""
    futures, workers = int(params.get("futures", 500)), int(params.get("concurrency", 10))
    delay = float(params.get("delay", 0.05))
    client = make_adapter(impl, url, params)
    client.start_session()
    client.start_sampler(STUB_MODEL)
    for warm in [client.sample([1, 2, 3]) for _ in range(8)]:
        warm.result(timeout=60)
    control(url, "/_bench/reset", {})
    control(url, "/_bench/config", {"sample_delay": delay})
    returned: dict[int, float] = {}

    def probe(worker: int) -> None:
        for j in range(futures // workers):
            key = 1_000_000 + worker * futures + j
            client.sample([key, 2, 3]).result(timeout=120)
            returned[key] = time.monotonic()

    try:
        with profiled():
            threads = [threading.Thread(target=probe, args=(w,)) for w in range(workers)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        control(url, "/_bench/config", {"sample_delay": 0.0})
    figures = pickup_latencies(url, returned)
    client.close()
    return {"delay_s": delay, "concurrency": workers, **figures}


def pickup_latencies(url: str, seen: dict[int, float]) -> dict[str, Any]:
    """Completion (stub clock) -> seen by the client, per future: count, median, p90, p99, max."""
    completed = {int(k): v for k, v in control(url, "/_bench/completions").items()}
    latencies = sorted(1000 * (seen[k] - completed[k]) for k in seen)
    middle = len(latencies) // 2
    return {
        "futures": len(latencies),
        "median_ms": (latencies[middle] + latencies[~middle]) / 2,
        "p90_ms": latencies[int(0.90 * (len(latencies) - 1))],
        "p99_ms": latencies[int(0.99 * (len(latencies) - 1))],
        "max_ms": latencies[-1],
    }


def run_poll_many(impl: str, url: str, params: dict[str, Any]) -> dict[str, Any]:
    """N futures pending at once, completing at spread-out times: pick-up latency under load.

    Each future's resolution time is taken in its done-callback (the moment a waiting
    result() would return), so one slow future does not delay the reading of the others.
    """
    n, spread = int(params.get("n", 1000)), float(params.get("spread", 2.0))
    # A 0.38 client (ours or official) reads the switch at start-up: the batch poller.
    batch = bool(params.get("batch_poller", False))
    control(url, "/_bench/config", {"client_config": {"sample_use_retrieve_futures": batch}})
    client = make_adapter(impl, url, params)
    client.start_session()
    client.start_sampler(STUB_MODEL)
    for warm in [client.sample([1, 2, 3]) for _ in range(8)]:
        warm.result(timeout=60)
    control(url, "/_bench/reset", {})
    control(url, "/_bench/config", {"sample_delay_spread": spread})
    resolved: dict[int, float] = {}

    def on_done(key: int) -> Callable[[Any], None]:
        def record(_: Any) -> None:
            resolved[key] = time.monotonic()

        return record

    start = time.perf_counter()
    try:
        futures = []
        for i in range(n):
            future: Any = client.sample([2_000_000 + i, 2, 3])
            future.add_done_callback(on_done(2_000_000 + i))
            futures.append(future)
        for future in futures:
            future.result(timeout=300)
    finally:
        control(url, "/_bench/config", {"sample_delay_spread": 0.0, "client_config": {}})
    wall = time.perf_counter() - start
    figures = pickup_latencies(url, resolved)
    client.close()
    return {"spread_s": spread, "wall_s": wall, **figures}


def run_train(impl: str, url: str, params: dict[str, Any]) -> dict[str, Any]:
    """A supervised loop (forward_backward + optim_step per step) on the embedded server."""
    import numpy as np

    steps, batch_size = int(params.get("steps", 50)), int(params.get("batch", 4))
    length, vocab = int(params.get("tokens", 32)), int(params.get("vocab", 200))
    client = make_adapter(impl, url, params)
    client.start_session()
    client.start_trainer(str(params["base_model"]))
    rng = np.random.default_rng(0)
    pattern = rng.integers(1, vocab, size=(batch_size, length + 1), dtype=np.int64)
    batch = client.build_batch(
        pattern[:, :-1], pattern[:, 1:], np.ones((batch_size, length), dtype=np.float32)
    )
    server_pid = int(params.get("server_pid", 0))
    server_cpu = process_cpu(server_pid) if server_pid else 0.0
    losses: list[float] = []
    out: dict[str, Any] = {"steps": steps}
    with profiled(), measured(out, "run"):
        for _ in range(steps):
            step = client.forward_backward(batch)
            update = client.optim_step(1e-2)
            losses.append(client.loss(step.result(timeout=300)))
            update.result(timeout=300)
    if server_pid:
        out["server_cpu_s"] = process_cpu(server_pid) - server_cpu
        out["client_cpu_share"] = out["run_cpu_s"] / (out["run_cpu_s"] + out["server_cpu_s"])
    out.update(
        first_loss=losses[0],
        last_loss=losses[-1],
        client_cpu_ms_per_step=1000 * out["run_cpu_s"] / steps,
    )
    client.close()
    return out


def run_versions(_: str, __: str, ___: dict[str, Any]) -> dict[str, Any]:
    """Python and library versions of this interpreter (for the machine section of a report)."""
    from importlib import metadata

    versions: dict[str, Any] = {"python": sys.version.split()[0]}
    for dist in (
        "tinker-sync",
        "tinker",
        "numpy",
        "urllib3",
        "requests",
        "attrs",
        "cattrs",
        "httpx",
        "pydantic",
        "torch",
    ):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return versions


class AllThreadsProfile:
    """cProfile in every thread started while active (SDK work runs on background threads).

    Each thread's profiler counts that thread's CPU time, not wall time, so a thread waiting
    for the GIL or the network is not charged for it: the listing shows where CPU goes.
    """

    def __init__(self) -> None:
        import cProfile

        self._factory = lambda: cProfile.Profile(time.thread_time)
        self._profiles: list[Any] = []
        self._window: list[dict[Any, Any]] = []

    def _start_in_thread(self, *_: object) -> None:
        profile = self._factory()
        self._profiles.append(profile)
        profile.enable()

    def __enter__(self) -> AllThreadsProfile:
        threading.setprofile(self._start_in_thread)
        self._start_in_thread()
        return self

    def __exit__(self, *exc: object) -> None:
        threading.setprofile(None)  # type: ignore[arg-type]
        self._profiles[0].disable()

    @contextmanager
    def window(self) -> Iterator[None]:
        """Keep only what the profilers record inside this block (the measured part)."""
        for profile in list(self._profiles):
            profile.clear()
        yield
        self._window = []
        for profile in list(self._profiles):
            profile.snapshot_stats()
            self._window.append(profile.stats)

    def top(self, count: int = 30) -> str:
        """The heaviest functions by own time, merged over all threads, blocking waits left out."""
        import pstats

        merged: dict[Any, list[float]] = {}
        for snapshot in self._window:
            for func, (_, calls, own, cum, _) in snapshot.items():
                row = merged.setdefault(func, [0.0, 0.0, 0])
                row[0] += own
                row[1] += cum
                row[2] += calls
        rows = sorted(
            (
                (own, cum, int(calls), pstats.func_std_string(func))  # type: ignore[attr-defined]
                for func, (own, cum, calls) in merged.items()
                if not any(wait in func[2] for wait in BLOCKING_CALLS)
            ),
            reverse=True,
        )
        header = f"{'own s':>8} {'cum s':>8} {'calls':>9}  function"
        lines = ["Heaviest functions by own CPU time:", header]
        lines += [f"{o:8.3f} {c:8.3f} {n:9d}  {name}" for o, c, n, name in rows[:count]]
        sdk = sorted((r for r in rows if "/tinker/" in r[3]), key=lambda r: -r[1])
        lines += ["", "SDK functions (tinker/) by cumulative CPU time:", header]
        lines += [f"{o:8.3f} {c:8.3f} {n:9d}  {name}" for o, c, n, name in sdk[:count]]
        return "\n".join(lines)


PROFILE: AllThreadsProfile | None = None


@contextmanager
def profiled() -> Iterator[None]:
    """Marks the block a profile run reports (the measured part of the workload)."""
    if PROFILE is None:
        yield
        return
    with PROFILE.window():
        yield


# Waiting, not working: excluded from profile listings (threads park in these).
BLOCKING_CALLS = (
    "acquire' of '_thread",
    "get' of '_queue",
    "'poll' of 'select",
    "time.sleep",
    "'select' of 'select",
    "'control' of 'select",
    "'wait'",
)


WORKLOADS: dict[str, Callable[[str, str, dict[str, Any]], dict[str, Any]]] = {
    "versions": run_versions,
    "import": run_import,
    "create": run_create,
    "sample": run_sample,
    "forward_backward": run_forward_backward,
    "poll": run_poll,
    "poll_many": run_poll_many,
    "train": run_train,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--impl", choices=["sdk", "raw", "raw-requests"], default="sdk")
    parser.add_argument("--url", default="")
    parser.add_argument("--params", default="{}")
    parser.add_argument("--profile", action="store_true", help="add cProfile top entries")
    args = parser.parse_args()
    workload = WORKLOADS[args.workload]
    if args.profile:
        global PROFILE
        with AllThreadsProfile() as PROFILE:
            result = workload(args.impl, args.url, json.loads(args.params))
        result["profile"] = PROFILE.top()
    else:
        result = workload(args.impl, args.url, json.loads(args.params))
    print(json.dumps(result), flush=True)
    sys.stdout.flush()
    os._exit(0)  # do not wait for SDK background threads: their shutdown is not measured


if __name__ == "__main__":
    main()
