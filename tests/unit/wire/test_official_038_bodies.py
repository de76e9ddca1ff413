"""The 0.38 codec against bodies the official SDK 0.38 sent (tests/fixtures/official-0.38):
the same calls encode to the same fields (protobuf decoded field by field, maps in any order;
JSON compared whole)."""

from __future__ import annotations

import asyncio
import base64
import json
import pathlib
import re
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import requests
import requests.adapters

from tinker import types
from tinker._wire import compression, proto
from tinker._wire.codec import WireCodec

CALLS = pathlib.Path(__file__).parents[2] / "fixtures" / "official-0.38" / "calls"
DTYPES = {"DTYPE_INT64": "int64", "DTYPE_FLOAT32": "float32"}
FORWARD_BACKWARD_CALLS = [
    "TrainingClient.forward_backward.cross_entropy_lists",
    "TrainingClient.forward_backward.ppo_config",
    "TrainingClient.forward_backward.five_datums",
    "TrainingClient.forward.cross_entropy",
]


def _requests(label: str, mode: str) -> list[dict[str, Any]]:
    recorded: list[dict[str, Any]] = json.loads((CALLS / f"{label}.json").read_text())["modes"][
        mode
    ]
    return recorded


def _datum(fields: dict[str, Any]) -> types.Datum:
    tokens = [
        t for chunk in fields["1:model_input"] for t in chunk["1:encoded_text"]["decoded"]["tokens"]
    ]
    inputs = {
        key: types.TensorData(
            data=tensor["decoded"]["values"],
            dtype=DTYPES[tensor["decoded"]["dtype"]],
            shape=tensor["decoded"]["shape"],
        )
        for key, tensor in fields["2:loss_fn_inputs"].items()
    }
    return types.Datum(model_input=types.ModelInput.from_ints(tokens), loss_fn_inputs=inputs)


def _request(fields: dict[str, Any]) -> types.ForwardRequest | types.ForwardBackwardRequest:
    """The request model the training client builds for the call the official SDK made."""
    batch = types.ForwardBackwardInput(
        data=[_datum(datum) for datum in fields["3:data"]],
        loss_fn=fields["4:loss_fn"],
        loss_fn_config=fields.get("5:loss_fn_config"),
    )
    model_id, seq_id = fields["1:model_id"], fields["2:seq_id"]
    if fields.get("6:forward_only"):
        return types.ForwardRequest(forward_input=batch, model_id=model_id, seq_id=seq_id)
    return types.ForwardBackwardRequest(
        forward_backward_input=batch, model_id=model_id, seq_id=seq_id
    )


def _fields(body: bytes) -> dict[str, Any]:
    """A decoded forward_backward body as plain values (loss inputs keyed, so map order of
    the wire does not matter)."""
    call = proto.decode_forward_backward_request(body)
    return {
        "model_id": call.model_id,
        "seq_id": call.seq_id,
        "loss_fn": call.loss_fn,
        "loss_fn_config": dict(call.loss_fn_config or {}),
        "forward_only": call.forward_only,
        "data": [
            {
                "tokens": datum.model_input.to_ints(),
                "inputs": {
                    key: (
                        tensor.dtype,
                        list(tensor.shape or []),
                        np.asarray(tensor.data).tolist(),
                    )
                    for key, tensor in datum.loss_fn_inputs.items()
                },
            }
            for datum in call.data
        ],
    }


@pytest.mark.parametrize("label", FORWARD_BACKWARD_CALLS)
def test_forward_backward_bodies_decode_to_the_official_fields(label: str) -> None:
    bodies = [r["body"]["protobuf"] for r in _requests(label, "plain") if "protobuf" in r["body"]]
    assert bodies
    for body in bodies:
        official = base64.b64decode(body["raw_base64"])
        ours = WireCodec(era="0.38").encode("/api/v1/forward_backward", _request(body["fields"]))
        assert ours.path == "/api/v1/forward_backward"
        assert ours.headers == {"Content-Type": "application/x-protobuf"}
        assert len(ours.content) == len(official)
        assert _fields(ours.content) == _fields(official)


@pytest.mark.parametrize("label", FORWARD_BACKWARD_CALLS)
def test_compressed_bodies_decompress_to_the_official_fields(label: str) -> None:
    bodies = [r for r in _requests(label, "features") if "protobuf" in r["body"]]
    assert bodies
    for recorded in bodies:
        body = recorded["body"]["protobuf"]
        assert recorded["headers"]["content-encoding"] == "zstd"
        official = base64.b64decode(body["decompressed_base64"])
        codec = WireCodec(era="0.38", compress_forward_backward=True)
        ours = codec.encode("/api/v1/forward_backward", _request(body["fields"]))
        assert ours.headers["Content-Encoding"] == "zstd"
        plain = compression.decompress(ours.content, max_output_size=1 << 20)
        assert _fields(plain) == _fields(official)


@pytest.mark.parametrize(
    ("label", "path", "build"),
    [
        (
            "TrainingClient.optim_step.adam_defaults",
            "/api/v1/optim_step",
            lambda body: types.OptimStepRequest(
                adam_params=types.AdamParams(), model_id=body["model_id"], seq_id=body["seq_id"]
            ),
        ),
        (
            "TrainingClient.optim_step.adam_all_fields",
            "/api/v1/optim_step",
            lambda body: types.OptimStepRequest(
                adam_params=types.AdamParams(**body["adam_params"]),
                model_id=body["model_id"],
                seq_id=body["seq_id"],
            ),
        ),
    ],
)
def test_json_bodies_match_the_official_ones(label: str, path: str, build: Any) -> None:
    (official,) = [r["body"]["json"] for r in _requests(label, "plain") if r["path"] == path]
    ours = WireCodec(era="0.38").encode(path, build(official))
    assert json.loads(ours.content) == official


def test_polls_of_protobuf_results_match_the_official_ones() -> None:
    polls = [
        r
        for r in _requests("TrainingClient.forward_backward.cross_entropy_lists", "plain")
        if r["path"] == "/api/v1/retrieve_future"
    ]
    codec = WireCodec(era="0.38")
    for poll in polls:
        assert codec.poll_body("req-5", allow_metadata_only=True) == poll["body"]["json"]
        assert codec.result_headers("ForwardBackwardOutput")["Accept"] == poll["headers"]["accept"]


# Requests the official SDK sends outside any public method (never attributed).
BACKGROUND_PATHS = {
    "/api/v1/client/config",
    "/api/v1/client/dynamic_config",
    "/api/v1/create_session",
    "/api/v1/session_heartbeat",
    "/api/v1/telemetry",
    "/api/v1/retrieve_futures",
    "/api/v1/cancel_future",
}


class _HeaderRecorder(requests.adapters.HTTPAdapter):
    """A stock adapter that remembers the path and headers of every request."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, dict[str, str]]] = []
        self._lock = threading.Lock()

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        path = requests.utils.urlparse(request.url).path or ""
        with self._lock:
            self.sent.append((path, {k.lower(): v for k, v in request.headers.items()}))
        return super().send(request, *args, **kwargs)


def _attribution(requests_: list[tuple[str, dict[str, str]]]) -> set[tuple[str, str, str]]:
    """(path, x-sdk-method, x-sdk-version) of the attributed requests, session ids elided;
    a background request must carry neither header."""
    out = set()
    for path, headers in requests_:
        path = re.sub(r"/sessions/[^/]+/", "/sessions/<id>/", path)
        if path in BACKGROUND_PATHS:
            assert "x-sdk-method" not in headers and "x-sdk-version" not in headers, path
            continue
        out.add((path, headers.get("x-sdk-method", ""), headers.get("x-sdk-version", "")))
    return out


def _official_attribution(label: str, paths: set[str] | None = None) -> set[tuple[str, str, str]]:
    recorded = [
        (r["path"], r["headers"])
        for r in _requests(label, "plain")
        if paths is None or r["path"] in paths
    ]
    return _attribution(recorded)


def test_requests_carry_the_public_method_like_the_official_ones(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tinker
    from tinker import local

    monkeypatch.setenv("TINKER_TELEMETRY", "0")
    adapter = _HeaderRecorder()
    datum = types.Datum(
        model_input=types.ModelInput.from_ints([1, 2, 3]),
        loss_fn_inputs={
            "target_tokens": types.TensorData(data=[2, 3, 4], dtype="int64", shape=[3]),
            "weights": types.TensorData(data=[1.0, 1.0, 1.0], dtype="float32", shape=[3]),
        },
    )
    prompt = types.ModelInput.from_ints([1, 2, 3])
    ours: dict[str, set[tuple[str, str, str]]] = {}
    with local.serve(data_dir=tmp_path, long_poll_seconds=2.0, protocol="0.38") as server:
        service = tinker.ServiceClient(
            base_url=server.url, api_key="tml-k", telemetry=False, http_adapter=adapter
        )
        state: dict[str, Any] = {}

        def run(label: str, call: Callable[[], Any]) -> None:
            start = len(adapter.sent)
            call()
            ours[label] = _attribution(adapter.sent[start:])

        def create() -> None:
            # Creation returns at once; its requests are the ones sent until it resolves.
            state["trainer"] = service.create_lora_training_client(
                "tinker-local/tiny", rank=2
            ).result()

        def sampler() -> Any:
            if "sampler" not in state:
                state["sampler"] = service.create_sampling_client(
                    base_model="tinker-local/tiny"
                ).result()
            return state["sampler"]

        run("ServiceClient.create_lora_training_client.defaults", create)
        trainer = state["trainer"]
        run(
            "TrainingClient.forward_backward.cross_entropy_lists",
            lambda: trainer.forward_backward([datum], "cross_entropy").result(),
        )
        run(
            "TrainingClient.forward.cross_entropy",
            lambda: trainer.forward([datum], "cross_entropy").result(),
        )
        run(
            "TrainingClient.optim_step.adam_defaults",
            lambda: trainer.optim_step(types.AdamParams()).result(),
        )
        run("TrainingClient.save_state.defaults", lambda: trainer.save_state("ck").result())
        sampler()
        params = types.SamplingParams(max_tokens=2)
        run(
            "SamplingClient.sample.defaults",
            lambda: sampler().sample(prompt, 1, params).result(),
        )
        run(
            "SamplingClient.compute_logprobs.defaults",
            lambda: sampler().compute_logprobs(prompt).result(),
        )
        run(
            "SamplingClient.sample_async",
            lambda: asyncio.run(sampler().sample_async(prompt, 1, params)),
        )
        run("ServiceClient.close.success", service.close)
    for label, attributed in ours.items():
        paths = {"/api/v1/asample", "/api/v1/retrieve_future"} if "async" in label else None
        assert attributed == _official_attribution(label, paths), label
