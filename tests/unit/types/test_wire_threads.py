"""The converter is built and extended lazily; first use from many threads at once is safe."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import threading
from tinker import _wire, types as T

payloads = [
    ({"sequences": [{"tokens": [5], "stop_reason": "length"}]}, T.SampleResponse),
    ({"loss_fn_output_type": "x", "metrics": {"a:sum": 1.0},
      "loss_fn_outputs": [{"l": {"data": [1.0], "dtype": "float32"}}]}, T.ForwardBackwardOutput),
    ({"model_id": "m", "model_data": {}}, T.GetInfoResponse),
    ({"checkpoints": [{"checkpoint_id": "weights/a", "checkpoint_type": "training",
       "time": "2025-01-01T00:00:00Z", "tinker_path": "tinker://r/weights/a"}]},
     T.CheckpointsListResponse),
]
requests = [
    T.SampleRequest(prompt=T.ModelInput.from_ints([1]), sampling_params=T.SamplingParams(seed=1)),
    T.OptimStepRequest(adam_params=T.AdamParams(eps=1e-9), model_id="m", seq_id=1),
]
expected = [_wire.dumps(r) for r in requests]  # reference bodies (built before the race)
from tinker._wire import json_codec
json_codec._CONVERTERS.clear()  # start the race from an empty converter cache
failures = []
barrier = threading.Barrier(12)

def work(index):
    barrier.wait()
    try:
        for _ in range(10):
            data, cls = payloads[index % len(payloads)]
            first, second = _wire.structure(data, cls), _wire.structure(data, cls)
            assert first.model_dump(mode="json") == second.model_dump(mode="json")
            assert _wire.dumps(requests[index % 2]) == expected[index % 2]
    except Exception as exc:
        failures.append(repr(exc))

threads = [threading.Thread(target=work, args=(i,)) for i in range(12)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(failures)
"""


def test_concurrent_first_use() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
