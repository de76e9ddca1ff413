"""A running server with a session, a training run, a sampler and a checkpoint to aim at, and
the poll of a future over raw HTTP."""

from __future__ import annotations

import json
import time
from typing import Any

import requests

from .conftest import API_KEY
from .runs import MODEL

HEADERS = {"X-API-Key": API_KEY, "Content-Type": "application/json"}


class Target:
    """Ids of live objects on `server`, and raw HTTP helpers with the API key."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.url = server.url
        self.http = requests.Session()
        self.http.headers.update(HEADERS)
        session = self.post("create_session", {"tags": [], "sdk_version": "0"}).json()
        self.session_id = session["session_id"]
        spare = self.post("create_session", {"tags": [], "sdk_version": "0"}).json()
        self.spare_session_id = spare["session_id"]
        model = self.post(
            "create_model",
            {
                "session_id": self.session_id,
                "model_seq_id": 0,
                "base_model": MODEL,
                "lora_config": {"rank": 2},
            },
        ).json()
        self.model_id = self.result(model["request_id"])["model_id"]
        sampler = self.post(
            "create_sampling_session",
            {"session_id": self.session_id, "sampling_session_seq_id": 0, "base_model": MODEL},
        ).json()
        self.sampler_id = sampler["sampling_session_id"]
        saved = self.post("save_weights", {"model_id": self.model_id, "path": "target"}).json()
        self.checkpoint = self.result(saved["request_id"])["path"]

    def post(self, endpoint: str, body: Any) -> requests.Response:
        # json.dumps writes NaN and Infinity as bare words: more hostile input.
        return self.http.post(f"{self.url}/api/v1/{endpoint}", data=json.dumps(body), timeout=30)

    def result(self, request_id: str) -> Any:
        """The future's final body."""
        return poll(self.http, self.url, request_id)

    def healthy(self) -> bool:
        return requests.get(f"{self.url}/api/v1/healthz", timeout=10).status_code == 200


def poll(http: requests.Session, url: str, request_id: str, bound: float = 20.0) -> Any:
    """The final body of a server's future, polled within `bound` seconds."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        reply = http.post(
            f"{url}/api/v1/retrieve_future", json={"request_id": request_id}, timeout=30
        )
        if reply.status_code == 200:
            return reply.json()
        assert reply.status_code == 408, reply.text
    raise AssertionError(f"{request_id} still pending after {bound} s")
