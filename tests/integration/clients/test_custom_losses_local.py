"""Custom losses end to end against tinker.local: an uploaded graph (custom_loss_server_side)
gives the gradients of the same graph run on the client, and a traced cross-entropy the
gradients of the built-in "cross_entropy"; with the switch off the loss runs on the client."""

from __future__ import annotations

import base64
import dataclasses
import json
import pathlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from support.recording import RecordingAdapter

from tinker import types
from tinker._wire import compression, proto
from tinker.service_client import ServiceClient

torch = pytest.importorskip("torch")

CALLS = pathlib.Path(__file__).parents[2] / "fixtures" / "official-0.38" / "calls"
MODEL = "tinker-local/tiny"
RANKS = {"logprobs": 1, "weights": 1}


def nll(logprobs: Any, weights: Any) -> Any:
    loss = -(logprobs * weights).sum()
    return loss, {"custom/nll:sum": loss, "custom/weight:mean": weights.sum()}


def clipped_ratio(logprobs: Any, sampled: Any, advantages: Any) -> Any:
    ratio = torch.exp(logprobs - sampled)
    clipped = torch.clamp(ratio, 0.9, 1.1)
    loss = -torch.minimum(ratio * advantages, clipped * advantages).sum()
    return loss, {"custom/ratio:mean": ratio.mean()}


def _data() -> list[types.Datum]:
    rng = np.random.default_rng(7)
    data = []
    for length in (5, 3):
        tokens = rng.integers(1, 200, length + 1)
        data.append(
            types.Datum(
                model_input=types.ModelInput.from_ints(tokens[:-1].tolist()),
                loss_fn_inputs={
                    "target_tokens": tokens[1:].tolist(),
                    "weights": rng.uniform(0.2, 1.5, length).astype(np.float32),
                    "advantages": rng.normal(size=length).astype(np.float32),
                    "sampled": rng.uniform(-6.0, -4.0, length).astype(np.float32),
                },
            )
        )
    return data


def _cross_entropy_data(data: list[types.Datum]) -> list[types.Datum]:
    keep = ("target_tokens", "weights")
    return [
        dataclasses.replace(d, loss_fn_inputs={k: d.loss_fn_inputs[k] for k in keep}) for d in data
    ]


def _gradients(server: Any, model_id: str) -> dict[str, np.ndarray]:
    """The server's accumulated gradient buffers of the run (what optim_step would apply)."""
    grads: dict[str, np.ndarray] = server.engine.runs._runs[
        model_id
    ].trainer.accumulated_gradients()
    return grads


def _backward(server: Any, trainer: Any, run: Any) -> tuple[Any, dict[str, np.ndarray]]:
    """One backward pass, its gradients, then the gradients cleared by a zero-rate step (the
    weights stay as they are)."""
    output = run().result(timeout=60)
    grads = _gradients(server, trainer.model_id)
    trainer.optim_step(types.AdamParams(learning_rate=0.0)).result(timeout=60)
    return output, grads


def _uploaded_and_here(
    server: Any, trainer: Any, handle: Any, data: list[types.Datum]
) -> tuple[Any, dict[str, np.ndarray], Any, dict[str, np.ndarray]]:
    """The uploaded handle's output and gradients, then those of the same graph run here."""
    uploaded, on_server = _backward(
        server, trainer, lambda: trainer.forward_backward_custom(data, handle)
    )
    here = dataclasses.replace(handle, loss_id=None)
    computed, on_client = _backward(
        server, trainer, lambda: trainer.forward_backward_custom(data, here)
    )
    assert sum(float(np.abs(g).sum()) for g in on_server.values()) > 0
    return uploaded, on_server, computed, on_client


@pytest.fixture
def client(tinker_server: Any) -> Iterator[ServiceClient]:
    service = ServiceClient(base_url=tinker_server.url, api_key="tml-local", telemetry=False)
    yield service
    service.close().result(timeout=60)


def test_an_uploaded_loss_has_the_gradients_of_the_client_side_one_and_of_cross_entropy(
    tinker_server: Any, client: ServiceClient
) -> None:
    trainer = client.create_lora_training_client(MODEL, rank=2, seed=0).result(timeout=60)
    handle = client.create_custom_loss(nll, RANKS).result(timeout=60)
    assert handle.loss_id == f"{client.session_id}:loss:0"
    data = _data()
    uploaded, on_server, computed, on_client = _uploaded_and_here(
        tinker_server, trainer, handle, data
    )
    builtin, cross_entropy = _backward(
        tinker_server,
        trainer,
        lambda: trainer.forward_backward(_cross_entropy_data(data), "cross_entropy"),
    )

    for name, grad in on_server.items():
        np.testing.assert_allclose(grad, cross_entropy[name], rtol=1e-6, atol=1e-9, err_msg=name)
        np.testing.assert_allclose(grad, on_client[name], rtol=1e-6, atol=1e-9, err_msg=name)
    expected = builtin.metrics["loss:sum"]
    for output in (uploaded, computed):
        assert output.metrics["loss:sum"] == pytest.approx(expected, rel=1e-6)
        assert output.metrics["custom/nll:sum"] == pytest.approx(expected, rel=1e-6)
        weights = [float(d.loss_fn_inputs["weights"].to_numpy().sum()) for d in data]
        assert output.metrics["custom/weight:mean"] == pytest.approx(np.mean(weights), rel=1e-6)
    assert computed.metrics["surrogate_loss:sum"] == pytest.approx(expected, rel=1e-6)


def test_a_nonlinear_loss_gives_the_same_gradients_on_the_server_and_here(
    tinker_server: Any, client: ServiceClient
) -> None:
    trainer = client.create_lora_training_client(MODEL, rank=2, seed=1).result(timeout=60)
    ranks = {"logprobs": 1, "sampled": 1, "advantages": 1}
    handle = client.create_custom_loss(clipped_ratio, ranks).result(timeout=60)
    assert handle.loss_id is not None
    uploaded, on_server, computed, on_client = _uploaded_and_here(
        tinker_server, trainer, handle, _data()
    )
    for name, grad in on_server.items():
        np.testing.assert_allclose(grad, on_client[name], rtol=1e-5, atol=1e-8, err_msg=name)
    for key in ("loss:sum", "custom/ratio:mean"):
        assert uploaded.metrics[key] == pytest.approx(computed.metrics[key], rel=1e-5)


def test_with_the_switch_off_the_loss_runs_on_the_client(tinker_server_factory: Any) -> None:
    server = tinker_server_factory(protocol="0.38,custom_loss_server_side=off")
    service = ServiceClient(base_url=server.url, api_key="tml-local", telemetry=False)
    try:
        trainer = service.create_lora_training_client(MODEL, rank=2, seed=0).result(timeout=60)
        handle = service.create_custom_loss(nll, RANKS).result(timeout=60)
        assert handle.loss_id is None
        data = _data()
        output, grads = _backward(
            server, trainer, lambda: trainer.forward_backward_custom(data, handle)
        )
        builtin, cross_entropy = _backward(
            server,
            trainer,
            lambda: trainer.forward_backward(_cross_entropy_data(data), "cross_entropy"),
        )
        for name, grad in grads.items():
            np.testing.assert_allclose(grad, cross_entropy[name], rtol=1e-6, atol=1e-9)
        assert output.metrics["loss:sum"] == pytest.approx(builtin.metrics["loss:sum"], rel=1e-6)
        assert server.engine.runs._losses == {}
    finally:
        service.close().result(timeout=60)


def _decoded(raw: bytes) -> proto.ForwardBackwardCall:
    return proto.decode_forward_backward_request(
        compression.decompress(raw, max_output_size=1 << 24)
    )


def test_an_uploaded_handle_sends_what_the_official_sdk_sends(tinker_server: Any) -> None:
    """One forward_backward: loss_fn "custom", the loss_id in the config, the datums as given."""
    recorded = json.loads(
        (CALLS / "TrainingClient.forward_backward_custom.loss_handle.json").read_text()
    )
    (official,) = [
        r for r in recorded["modes"]["features"] if r["path"] == "/api/v1/forward_backward"
    ]
    theirs = _decoded(base64.b64decode(official["body"]["protobuf"]["raw_base64"]))
    adapter = RecordingAdapter()
    service = ServiceClient(
        base_url=tinker_server.url, api_key="tml-local", telemetry=False, http_adapter=adapter
    )
    try:
        trainer = service.create_lora_training_client(MODEL, rank=2, seed=0).result(timeout=60)
        handle = service.create_custom_loss(nll, RANKS).result(timeout=60)
        datum = types.Datum(
            model_input=types.ModelInput.from_ints(theirs.data[0].model_input.to_ints()),
            loss_fn_inputs=dict(theirs.data[0].loss_fn_inputs),
        )
        trainer.forward_backward_custom([datum], handle).result(timeout=60)
    finally:
        service.close().result(timeout=60)
    ((headers, body),) = adapter.to("/api/v1/forward_backward")  # one request, no forward
    ours = _decoded(body)
    assert headers["x-sdk-method"] == "TrainingClient.forward_backward_custom"
    assert (ours.loss_fn, theirs.loss_fn) == ("custom", "custom")
    assert ours.loss_fn_config == {"loss_id": handle.loss_id}
    assert theirs.loss_fn_config == {"loss_id": "capture-loss-1"}
    assert not ours.forward_only and not theirs.forward_only
    assert ours.data[0].model_input.to_ints() == theirs.data[0].model_input.to_ints()
    for key, tensor in theirs.data[0].loss_fn_inputs.items():
        np.testing.assert_array_equal(
            ours.data[0].loss_fn_inputs[key].to_numpy(), tensor.to_numpy()
        )
    assert set(ours.data[0].loss_fn_inputs) == set(theirs.data[0].loss_fn_inputs)
