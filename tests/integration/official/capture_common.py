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
    """Labels the requests that follow (`mark`) and counts what the server has seen."""

    def __init__(self, url: str) -> None:
        self.url = url

    def mark(self, label: str) -> None:
        data = json.dumps({"label": label}).encode()
        request = urllib.request.Request(f"{self.url}/_capture/mark", data=data, method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()

    def seen(self, path: str) -> int:
        with urllib.request.urlopen(f"{self.url}/_capture/count?path={path}", timeout=10) as answer:
            return int(json.loads(answer.read())["count"])

    def step(self, label: str, call: Callable[[], Result]) -> Result:
        """Run one labelled call; its requests are attributed to `label`."""
        self.mark(label)
        result = call()
        print(f"ok {label}", flush=True)
        return result

    def wait_for(self, *paths: str, seconds: float) -> None:
        """Wait (bounded) until every path has been requested at least once."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not all(self.seen(p) for p in paths):
            time.sleep(0.5)
        missing = [p for p in paths if not self.seen(p)]
        assert not missing, f"not requested within {seconds} s: {missing}"
