"""A requests transport adapter that records what a client sends (path, headers, body), for
tests that run a real client against tinker.local and check its wire traffic."""

from __future__ import annotations

import threading
from typing import Any

import requests
import requests.adapters


class RecordingAdapter(requests.adapters.HTTPAdapter):
    """A stock adapter that remembers (path, headers, body) of every request."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, dict[str, str], Any]] = []
        self._lock = threading.Lock()

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            path = requests.utils.urlparse(request.url).path
            self.sent.append((path, dict(request.headers), request.body))
        return super().send(request, *args, **kwargs)

    def to(self, path: str) -> list[tuple[dict[str, str], Any]]:
        return [(headers, body) for sent, headers, body in self.sent if sent == path]
