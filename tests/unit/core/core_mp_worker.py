"""Functions run in worker processes by the fork/spawn tests (importable by spawn children)."""

from __future__ import annotations

import os
import threading
from typing import Any

from tinker._futures import chain
from tinker._runtime import Runtime, Traffic


def use_runtime(runtime: Runtime, n: int) -> dict[str, Any]:
    """Make an immediate call and a polled call through `runtime`; report what the child saw."""
    again = Runtime.attach(runtime.config, runtime.session_id)
    immediate = runtime.call(Traffic.TRAIN, "GET", f"/api/v1/items/{n}")
    submitted = runtime.spawn(
        lambda: runtime.call(Traffic.SAMPLE, "POST", "/api/v1/asample", body={"n": n})["request_id"]
    )
    polled = chain(submitted, lambda rid: runtime.track(rid, "Sample", None)).result(timeout=20)
    heartbeats = [t for t in threading.enumerate() if t.name == "tinker-heartbeat"]
    return {
        "pid": os.getpid(),
        "same": again is runtime,
        "path": immediate["path"],
        "echo": polled["echo"],
        "heartbeats": len(heartbeats),
        "session_id": runtime.session_id,
    }
