"""A raw-HTTP test client for the local server (requests only; no SDK clients involved): JSON
bodies of both protocol eras, protobuf forward_backward bodies and protobuf results."""

from __future__ import annotations

import time
from typing import Any

import requests

from tinker import types
from tinker._wire import compression, proto

API = "/api/v1"
PROTOBUF = {"Content-Type": proto.CONTENT_TYPE}


class WireClient:
    """Sends protocol bodies and polls futures to completion within a bound."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.http = requests.Session()
        self.http.headers.update(headers or {})

    def __enter__(self) -> WireClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def post(self, endpoint: str, body: Any = None, **kwargs: Any) -> requests.Response:
        return self.http.post(f"{self.url}{API}/{endpoint}", json=body, timeout=30, **kwargs)

    def get(self, endpoint: str, **kwargs: Any) -> requests.Response:
        return self.http.get(f"{self.url}{API}/{endpoint}", timeout=30, **kwargs)

    def delete(self, endpoint: str) -> requests.Response:
        return self.http.delete(f"{self.url}{API}/{endpoint}", timeout=30)

    def ok(self, endpoint: str, body: Any = None) -> Any:
        response = self.post(endpoint, body)
        assert response.status_code == 200, (response.status_code, response.text)
        return response.json()

    def submit(self, endpoint: str, body: Any) -> str:
        answer = self.ok(endpoint, body)
        assert isinstance(answer["request_id"], str)
        return str(answer["request_id"])

    def result(self, request_id: str, bound: float = 20.0) -> Any:
        """Poll until the future is done (200), failing the test after `bound` seconds."""
        deadline = time.monotonic() + bound
        while time.monotonic() < deadline:
            response = self.post("retrieve_future", {"request_id": request_id})
            if response.status_code == 200:
                return response.json()
            assert response.status_code == 408, (response.status_code, response.text)
            pending = response.json()
            assert pending.pop("queue_state_reason").startswith("Not finished after ")
            assert pending == {
                "type": "try_again",
                "request_id": request_id,
                "queue_state": "active",
            }
        raise AssertionError(f"future {request_id} not done within {bound} s")

    def run(self, endpoint: str, body: Any) -> Any:
        return self.result(self.submit(endpoint, body))

    def post_proto(
        self, endpoint: str, body: bytes, *, zstd: bool = False, **headers: str
    ) -> requests.Response:
        """POST a protobuf body (zstd-compressed with `zstd`)."""
        sent = {**PROTOBUF, **headers}
        if zstd:
            body = compression.compress(body)
            sent["Content-Encoding"] = "zstd"
        return self.http.post(f"{self.url}{API}/{endpoint}", data=body, headers=sent, timeout=30)

    def submit_proto(self, call: proto.ForwardBackwardCall, *, zstd: bool = False) -> str:
        """Submit a forward/forward_backward as a 0.38 client does; returns the request id."""
        response = self.post_proto(
            "forward_backward", proto.encode_forward_backward_request(call), zstd=zstd
        )
        assert response.status_code == 200, (response.status_code, response.text)
        return str(response.json()["request_id"])

    def poll_proto(self, request_id: str, bound: float = 20.0) -> requests.Response:
        """Poll like a 0.38 client expecting a protobuf result: the final 200 response."""
        deadline = time.monotonic() + bound
        body = {"request_id": request_id, "allow_metadata_only": False}
        while time.monotonic() < deadline:
            response = self.post("retrieve_future", body, headers={"Accept": proto.CONTENT_TYPE})
            if response.status_code == 200:
                return response
            assert response.status_code == 408, (response.status_code, response.text)
        raise AssertionError(f"future {request_id} not done within {bound} s")

    def forward_proto(self, call: proto.ForwardBackwardCall) -> types.ForwardBackwardOutput:
        """A forward/forward_backward through protobuf both ways."""
        return self.forward_proto_result(self.submit_proto(call))

    def forward_proto_result(self, request_id: str) -> types.ForwardBackwardOutput:
        """The protobuf result of a submitted forward/forward_backward."""
        response = self.poll_proto(request_id)
        assert response.headers["Content-Type"] == proto.CONTENT_TYPE, response.text
        return proto.decode_forward_backward_output(response.content)

    def session(self) -> str:
        body = {"tags": ["test"], "user_metadata": {"who": "tests"}, "sdk_version": "0.5.1"}
        return str(self.ok("create_session", body)["session_id"])

    def model(self, session_id: str, seq: int = 0, base: str = "fake/tiny", rank: int = 4) -> str:
        body = {
            "session_id": session_id,
            "model_seq_id": seq,
            "base_model": base,
            "user_metadata": {"run": "r1"},
            "lora_config": {
                "rank": rank,
                "seed": 1,
                "train_unembed": True,
                "train_mlp": True,
                "train_attn": True,
            },
        }
        return str(self.run("create_model", body)["model_id"])


def datum(tokens: list[int], weights: list[float] | None = None) -> dict[str, Any]:
    """A cross_entropy datum as the SDK sends it (no chunk type, shapes included)."""
    targets = [*tokens[1:], 0]
    inputs: dict[str, Any] = {
        "target_tokens": {"data": targets, "dtype": "int64", "shape": [len(targets)]}
    }
    if weights is not None:
        inputs["weights"] = {"data": weights, "dtype": "float32", "shape": [len(weights)]}
    return {"model_input": {"chunks": [{"tokens": tokens}]}, "loss_fn_inputs": inputs}


def fwdbwd(model_id: str, seq_id: int, data: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "model_id": model_id,
        "seq_id": seq_id,
        "forward_backward_input": {
            "data": data or [datum([1, 2, 3])],
            "loss_fn": "cross_entropy",
            "loss_fn_config": None,
        },
    }


def sample_body(
    sampler_id: str,
    seq_id: int,
    prompt: list[int],
    *,
    num_samples: int = 1,
    max_tokens: int = 3,
    **extra: Any,
) -> dict[str, Any]:
    """An asample body as 0.38 clients send it: every default, chunk types; `extra` adds or
    replaces fields."""
    return {
        "num_samples": num_samples,
        "prompt": {"chunks": [{"tokens": prompt, "type": "encoded_text"}]},
        "sampling_params": {
            "max_tokens": max_tokens,
            "temperature": 1.0,
            "top_k": -1,
            "top_p": 1.0,
        },
        "sampling_session_id": sampler_id,
        "seq_id": seq_id,
        "prompt_logprobs": False,
        "topk_prompt_logprobs": 0,
        "topk_sample_logprobs": 0,
        "prompt_alt_tokens_k": 0,
        "record_stability_info": False,
        "type": "sample",
        **extra,
    }
