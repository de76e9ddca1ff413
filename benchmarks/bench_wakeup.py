"""Long-poll wake-up of the embedded server: result resolved -> the SDK future done.

The server runs in this process, so one monotonic clock times both ends: the moment the
engine resolves a result (FutureStore.resolve) and the moment the client's future completes
(a done-callback). Prints the median and p99 over sample requests on tinker-local/tiny.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time

import tinker
from tinker import types
from tinker.local import serve
from tinker.local.server import futures

N_REQUESTS = 200


def main() -> None:
    resolved_at: list[float] = []
    lock = threading.Lock()
    original = futures.FutureStore.resolve

    def recording(self: futures.FutureStore, request_id: str, body: bytes) -> None:
        with lock:
            resolved_at.append(time.monotonic())
        original(self, request_id, body)

    futures.FutureStore.resolve = recording  # type: ignore[method-assign]
    done_at: list[float] = []
    with (
        serve(data_dir=tempfile.mkdtemp()) as server,
        tinker.ServiceClient(base_url=server.url, api_key="bench", telemetry=False) as service,
    ):
        sampler = service.create_sampling_client(base_model="tinker-local/tiny")
        prompt = types.ModelInput.from_ints([1, 2, 3])
        params = types.SamplingParams(max_tokens=4, seed=0)
        for _ in range(N_REQUESTS):
            future = sampler.sample(prompt, 1, params)
            future.add_done_callback(lambda _: done_at.append(time.monotonic()))
            future.result()
            time.sleep(0.005)  # let the next poll be waiting before the result exists
    # Requests run one at a time, so the i-th result resolved is the i-th future done.
    pairs = zip(resolved_at, done_at, strict=True)
    gaps = sorted((done - resolved) * 1000 for resolved, done in pairs)
    p99 = gaps[min(len(gaps) - 1, int(len(gaps) * 0.99))]
    print(
        f"embedded server wake-up over {len(gaps)} samples: "
        f"median {statistics.median(gaps):.2f} ms, p99 {p99:.2f} ms"
    )


if __name__ == "__main__":
    main()
