"""What both capture drivers share: the side channel to the capture server and the test data.

Imported by the drivers, which run as scripts inside an official SDK venv (this directory is on
their sys.path), so it needs nothing but the standard library.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from typing import TypeVar

TINY = "tinker-local/tiny"
API_KEY = "tml-capture-fake-api-key-0000"
TOKENS = [72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100]
Result = TypeVar("Result")


class CaptureChannel:
    """Labels the requests that follow (`mark`) and counts what the server has seen.

    With `probe` the driver runs against a server that is not the capture server (e.g.
    tinker.local): no side channel, and a failing call is reported (`FAILED <label>: <error>`)
    instead of ending the run, so one run lists every call the server does not handle.
    """

    def __init__(self, url: str, *, probe: bool = False) -> None:
        self.url = url
        self.probe = probe
        self.failures: list[str] = []

    def mark(self, label: str) -> None:
        if self.probe:
            return
        data = json.dumps({"label": label}).encode()
        request = urllib.request.Request(f"{self.url}/_capture/mark", data=data, method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()

    def seen(self, path: str) -> int:
        if self.probe:
            return 1
        with urllib.request.urlopen(f"{self.url}/_capture/count?path={path}", timeout=10) as answer:
            return int(json.loads(answer.read())["count"])

    def step(self, label: str, call: Callable[[], Result]) -> Result:
        """Run one labelled call; its requests are attributed to `label`."""
        self.mark(label)
        if not self.probe:
            result = call()
            print(f"ok {label}", flush=True)
            return result
        try:
            result = call()
        except Exception as exc:
            detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:400]
            self.failures.append(label)
            print(f"FAILED {label}: {detail}", flush=True)
            return None  # type: ignore[return-value]
        print(f"ok {label}", flush=True)
        return result

    def wait_for(self, *paths: str, seconds: float) -> None:
        """Wait (bounded) until every path has been requested at least once."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not all(self.seen(p) for p in paths):
            time.sleep(0.5)
        missing = [p for p in paths if not self.seen(p)]
        assert not missing, f"not requested within {seconds} s: {missing}"
