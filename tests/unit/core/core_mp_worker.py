"""Functions run in worker processes by the fork/spawn tests (importable by spawn children)."""

from __future__ import annotations

import os
import threading
from typing import Any

from tinker._calls import ApiCall
from tinker._futures import flatten
from tinker._runtime import Runtime
from tinker._session import attach
from tinker._transport import Traffic


def use_runtime(runtime: Runtime, n: int) -> dict[str, Any]:
    """Make an immediate call and a polled call through `runtime`; report what the child saw."""
    again = attach(runtime.config, runtime.session_id)
    immediate = runtime.call(
        ApiCall(traffic=Traffic.TRAIN, method="GET", path=f"/api/v1/items/{n}")
    )
    asample = ApiCall(
        traffic=Traffic.SAMPLE,
        method="POST",
        path="/api/v1/asample",
        body={"n": n},
        poll_as="Sample",
    )
    # blocking work of the child's blocking pool, waiting on the child's submit pool and poller
    polled = runtime.spawn(lambda: flatten(runtime.submit(asample)).result(timeout=20)).result(
        timeout=20
    )
    heartbeats = [t for t in threading.enumerate() if t.name == "tinker-heartbeat"]
    return {
        "pid": os.getpid(),
        "same": again is runtime,
        "path": immediate["path"],
        "echo": polled["echo"],
        "heartbeats": len(heartbeats),
        "session_id": runtime.session_id,
    }
