"""Every answer of the server validates into the SDK's response model (strict client parsing)."""

from __future__ import annotations

from typing import Any

from tinker import _wire, types

from .wire_client import WireClient, datum, fwdbwd


def _valid(body: Any, model: type[Any]) -> Any:
    return _wire.structure(body, model)


def test_walkthrough_answers_fit_the_response_models(client: WireClient) -> None:
    body = {"tags": [], "user_metadata": {}, "sdk_version": "0.5.1"}
    session = _valid(client.ok("create_session", body), types.CreateSessionResponse)
    session_id = session.session_id
    _valid(
        client.ok("session_heartbeat", {"session_id": session_id}), types.SessionHeartbeatResponse
    )
    _valid(client.get("healthz").json(), types.HealthResponse)
    _valid(client.get("get_server_capabilities").json(), types.GetServerCapabilitiesResponse)
    _valid(client.ok("telemetry", {"events": []}), types.TelemetryResponse)

    create = {"session_id": session_id, "model_seq_id": 0, "base_model": "fake/tiny"}
    future = _valid(client.ok("create_model", create), types.UntypedAPIFuture)
    model_id = _valid(client.result(future.request_id), types.CreateModelResponse).model_id
    _valid(client.ok("get_info", {"model_id": model_id}), types.GetInfoResponse)

    forward = {
        "model_id": model_id,
        "seq_id": 1,
        "forward_input": {"data": [datum([1, 2, 3])], "loss_fn": "cross_entropy"},
    }
    _valid(client.run("forward", forward), types.ForwardBackwardOutput)
    _valid(client.run("forward_backward", fwdbwd(model_id, 2)), types.ForwardBackwardOutput)
    optim = {"model_id": model_id, "seq_id": 3, "adam_params": {"learning_rate": 0.001}}
    _valid(client.run("optim_step", optim), types.OptimStepResponse)
    save = {"model_id": model_id, "path": "c", "seq_id": 4}
    path = _valid(client.run("save_weights", save), types.SaveWeightsResponse).path
    load = {"model_id": model_id, "path": path, "optimizer": False, "seq_id": 5}
    _valid(client.run("load_weights", load), types.LoadWeightsResponse)
    named = {"model_id": model_id, "path": "s", "seq_id": 6}
    sampler_path = _valid(
        client.run("save_weights_for_sampler", named), types.SaveWeightsForSamplerResponseInternal
    ).path
    ephemeral = {"model_id": model_id, "sampling_session_seq_id": 0, "seq_id": 7}
    sampler_id = _valid(
        client.run("save_weights_for_sampler", ephemeral),
        types.SaveWeightsForSamplerResponseInternal,
    ).sampling_session_id
    sample = {
        "prompt": {"chunks": [{"tokens": [1, 2]}]},
        "sampling_params": {"max_tokens": 2},
        "sampling_session_id": sampler_id,
        "seq_id": 0,
        "prompt_logprobs": True,
    }
    _valid(client.run("asample", sample), types.SampleResponse)
    created = {"session_id": session_id, "sampling_session_seq_id": 1, "model_path": sampler_path}
    _valid(client.ok("create_sampling_session", created), types.CreateSamplingSessionResponse)
    failed = client.run(
        "forward_backward",
        fwdbwd(model_id, 8, [{"model_input": {"chunks": [{"tokens": [1]}]}, "loss_fn_inputs": {}}]),
    )
    _valid(failed, types.RequestFailedResponse)

    _valid(client.ok("weights_info", {"tinker_path": path}), types.WeightsInfoResponse)
    _valid(client.get("training_runs").json(), types.TrainingRunsResponse)
    _valid(client.get(f"training_runs/{model_id}").json(), types.TrainingRun)
    _valid(
        client.get(f"training_runs/{model_id}/checkpoints").json(), types.CheckpointsListResponse
    )
    _valid(client.get("checkpoints").json(), types.CheckpointsListResponse)
    _valid(client.get("sessions").json(), types.ListSessionsResponse)
    _valid(client.get(f"sessions/{session_id}").json(), types.GetSessionResponse)
    _valid(client.get(f"samplers/{sampler_id}").json(), types.GetSamplerResponse)
    _valid(client.run("unload_model", {"model_id": model_id}), types.UnloadModelResponse)
