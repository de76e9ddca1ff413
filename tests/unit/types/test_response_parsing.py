"""Every response example of the protocol structures into its model, and bad ones do not."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest

from tinker import _wire
from tinker import types as T
from tinker.errors import RequestErrorCategory

UTC = dt.timezone.utc


def f32(*values: float) -> list[float]:
    """The values as float32 gives them back (results are float32 arrays, as in 0.38)."""
    return np.asarray(values, dtype=np.float32).tolist()  # type: ignore[no-any-return]


def parse(data: Any, cls: type[Any]) -> Any:
    return _wire.structure(data, cls)


def test_create_session_response_ignores_unknown_keys() -> None:
    response = parse(
        {
            "type": "create_session",
            "session_id": "3f1e0c2a-0000-4000-8000-000000000001",
            "info_message": None,
            "brand_new_field": {"x": 1},
        },
        T.CreateSessionResponse,
    )
    assert response.session_id == "3f1e0c2a-0000-4000-8000-000000000001"
    assert response.info_message is None and response.warning_message is None
    assert T.fields_set(response) == {"type", "session_id", "info_message"}


def test_heartbeat_and_capabilities_and_health() -> None:
    assert parse({}, T.SessionHeartbeatResponse).type == "session_heartbeat"
    assert parse({"type": "session_heartbeat"}, T.SessionHeartbeatResponse)
    caps = parse(
        {"supported_models": [{"model_name": "a"}, {"model_name": None, "max_batch_size": 3}]},
        T.GetServerCapabilitiesResponse,
    )
    assert [m.model_name for m in caps.supported_models] == ["a", None]
    assert parse({"status": "ok"}, T.HealthResponse).status == "ok"
    assert parse({"status": "accepted"}, T.TelemetryResponse).status == "accepted"


@pytest.mark.parametrize(
    ("data", "cls"),
    [
        ({"status": "fine"}, T.HealthResponse),
        ({"status": "ok!"}, T.TelemetryResponse),
        ({"type": "other", "session_id": "s"}, T.CreateSessionResponse),
        ({"session_id": 7}, T.CreateSessionResponse),
        ({"request_id": 12}, T.UntypedAPIFuture),
        ({"supported_models": None}, T.GetServerCapabilitiesResponse),
    ],
)
def test_strict_fields_are_enforced(data: Any, cls: type[Any]) -> None:
    with pytest.raises(_wire.WireFormatError):
        parse(data, cls)


def test_untyped_future_and_poll_bodies() -> None:
    future = parse(
        {"request_id": "3f1e0c2a-...:train:0:7", "model_id": "3f1e0c2a-...:train:0"},
        T.UntypedAPIFuture,
    )
    assert future.request_id == "3f1e0c2a-...:train:0:7"
    pending = parse(
        {"type": "try_again", "request_id": "R", "queue_state": "paused_capacity", "x": 1},
        T.TryAgainResponse,
    )
    assert pending.queue_state == "paused_capacity"
    failed = parse(
        {"error": "target_tokens must have the same length as model_input", "category": "user"},
        T.RequestFailedResponse,
    )
    assert failed.category is RequestErrorCategory.User
    assert parse({"error": "x", "category": "nope"}, T.RequestFailedResponse).category is (
        RequestErrorCategory.Unknown
    )
    assert parse({"error": "x"}, T.RequestFailedResponse).category is RequestErrorCategory.Unknown


def test_create_model_and_get_info() -> None:
    assert parse({"model_id": "S:train:0"}, T.CreateModelResponse).model_id == "S:train:0"
    info = parse(
        {
            "model_id": "S:train:0",
            "model_data": {"arch": None, "model_name": "Qwen/Qwen3-8B", "tokenizer_id": "q"},
            "is_lora": True,
            "lora_rank": 32,
        },
        T.GetInfoResponse,
    )
    assert info.model_data.model_name == "Qwen/Qwen3-8B" and info.lora_rank == 32


def test_forward_backward_output_example() -> None:
    output = parse(
        {
            "loss_fn_output_type": "CrossEntropyLossReturn",
            "loss_fn_outputs": [
                {
                    "logprobs": {"data": [-1.2, -0.3, -2.0], "dtype": "float32", "shape": [3]},
                    "elementwise_loss": {"data": [1.2, 0.3, 0.0], "dtype": "float32", "shape": [3]},
                }
            ],
            "metrics": {"loss:sum": 1.5, "clock_cycle:unique": 1477253.0},
        },
        T.ForwardBackwardOutput,
    )
    logprobs = output.loss_fn_outputs[0]["logprobs"]
    assert isinstance(logprobs, T.TensorData)
    assert logprobs.data == f32(-1.2, -0.3, -2.0) and logprobs.shape == [3]
    assert logprobs.to_numpy().dtype == np.float32
    assert output.metrics["loss:sum"] == 1.5


@pytest.mark.parametrize(
    "tensor",
    [
        {"data": [1.0], "dtype": "float32", "shape": [1], "name": "x"},
        {"data": [1.0], "dtype": "float64"},
        {"data": [1.5], "dtype": "int64"},
        {"data": [1.0, 2.0], "dtype": "float32", "shape": [3]},
        {"dtype": "float32"},
    ],
)
def test_tensor_data_in_results_is_strict(tensor: dict[str, Any]) -> None:
    body = {"loss_fn_output_type": "x", "loss_fn_outputs": [{"logprobs": tensor}], "metrics": {}}
    with pytest.raises(_wire.WireFormatError):
        parse(body, T.ForwardBackwardOutput)


def test_tensor_data_missing_shape_is_one_dimensional() -> None:
    tensor = parse({"data": [1, 2], "dtype": "int64"}, T.TensorData)
    assert tensor.shape is None and tensor.tolist() == [1, 2]


def test_optim_step_and_weights_results() -> None:
    assert parse({}, T.OptimStepResponse).metrics is None
    assert parse({"metrics": {"grad_norm": 0.5}}, T.OptimStepResponse).metrics == {"grad_norm": 0.5}
    saved = parse({"path": "tinker://S:train:0/weights/ckpt1"}, T.SaveWeightsResponse)
    assert saved.path == "tinker://S:train:0/weights/ckpt1"
    assert parse({}, T.LoadWeightsResponse).path is None
    ephemeral = parse(
        {"sampling_session_id": "S:sample:0", "path": None, "size_bytes": None},
        T.SaveWeightsForSamplerResponseInternal,
    )
    assert ephemeral.sampling_session_id == "S:sample:0" and ephemeral.path is None
    named = parse(
        {"path": "tinker://S:train:0/sampler_weights/s1"}, T.SaveWeightsForSamplerResponse
    )
    assert named.path.endswith("/s1")
    assert parse({"model_id": "m"}, T.UnloadModelResponse).model_id == "m"


def test_sample_response_example() -> None:
    response = parse(
        {
            "type": "sample",
            "sequences": [{"tokens": [5, 6], "logprobs": [-0.5, -0.25], "stop_reason": "length"}],
            "prompt_logprobs": [None, -3.1, -0.7],
            "topk_prompt_logprobs": [None, [[17, -0.2], [4, -2.0]], [[9, -0.1], [2, -3.3]]],
        },
        T.SampleResponse,
    )
    assert response.sequences[0].tokens == [5, 6]
    assert response.sequences[0].stop_reason == "length"
    assert response.prompt_logprobs == [None, *f32(-3.1, -0.7)]
    assert response.sequences[0].logprobs == [-0.5, -0.25]
    (a, b), (c, d) = f32(-0.2, -2.0), f32(-0.1, -3.3)
    assert response.topk_prompt_logprobs == [None, [(17, a), (4, b)], [(9, c), (2, d)]]


def test_sample_response_rejects_unknown_stop_reason_and_type() -> None:
    with pytest.raises(_wire.WireFormatError, match="stop_reason"):
        parse({"sequences": [{"tokens": [], "stop_reason": "eos"}]}, T.SampleResponse)
    with pytest.raises(_wire.WireFormatError, match="type"):
        parse({"type": "samples", "sequences": []}, T.SampleResponse)


def test_sampling_session_response() -> None:
    response = parse({"sampling_session_id": "S:sample:0"}, T.CreateSamplingSessionResponse)
    assert response.sampling_session_id == "S:sample:0"


CHECKPOINT = {
    "checkpoint_id": "weights/ckpt1",
    "checkpoint_type": "training",
    "time": "2025-11-25T06:15:14.123456Z",
    "tinker_path": "tinker://S:train:0/weights/ckpt1",
    "size_bytes": 1234,
    "public": False,
}


def test_training_runs_and_checkpoints() -> None:
    runs = parse(
        {
            "training_runs": [
                {
                    "training_run_id": "S:train:0",
                    "base_model": "Qwen/Qwen3-8B",
                    "model_owner": "me",
                    "is_lora": True,
                    "lora_rank": 32,
                    "last_request_time": "2025-11-25T06:15:14+00:00",
                    "last_checkpoint": CHECKPOINT,
                    "last_sampler_checkpoint": None,
                    "user_metadata": {"k": "v"},
                }
            ],
            "cursor": {"offset": 0, "limit": 20, "total_count": 1},
        },
        T.TrainingRunsResponse,
    )
    run = runs.training_runs[0]
    assert run.last_request_time == dt.datetime(2025, 11, 25, 6, 15, 14, tzinfo=UTC)
    assert run.corrupted is False
    assert run.last_checkpoint is not None
    assert run.last_checkpoint.time == dt.datetime(2025, 11, 25, 6, 15, 14, 123456, tzinfo=UTC)
    assert runs.cursor.total_count == 1
    listing = parse({"checkpoints": [CHECKPOINT]}, T.CheckpointsListResponse)
    assert listing.cursor is None and listing.checkpoints[0].size_bytes == 1234
    assert listing.checkpoints[0].expires_at is None
    with pytest.raises(_wire.WireFormatError, match="cursor"):
        parse({"training_runs": []}, T.TrainingRunsResponse)


def test_checkpoint_datetimes_round_trip_with_z() -> None:
    checkpoint = parse({**CHECKPOINT, "expires_at": "2025-12-01T00:00:00Z"}, T.Checkpoint)
    assert checkpoint.expires_at == dt.datetime(2025, 12, 1, tzinfo=UTC)
    assert _wire.unstructure(checkpoint)["expires_at"] == "2025-12-01T00:00:00Z"
    assert _wire.unstructure(checkpoint)["time"] == "2025-11-25T06:15:14.123456Z"


def test_sessions_samplers_weights_info() -> None:
    assert parse({"sessions": ["a", "b"]}, T.ListSessionsResponse).sessions == ["a", "b"]
    session = parse({"training_run_ids": ["r"], "sampler_ids": []}, T.GetSessionResponse)
    assert session.training_run_ids == ["r"]
    sampler = parse({"sampler_id": "S:sample:0", "base_model": "b"}, T.GetSamplerResponse)
    assert sampler.model_path is None
    info = parse({"base_model": "b", "is_lora": True, "lora_rank": 8}, T.WeightsInfoResponse)
    assert info.lora_rank == 8


def test_telemetry_batch_structures_by_event_name() -> None:
    request = parse(
        {
            "events": [
                {
                    "event": "SESSION_START",
                    "event_id": "9a09eaa9",
                    "event_session_index": 0,
                    "severity": "INFO",
                    "timestamp": "2025-11-25T06:15:14.082201Z",
                },
                {
                    "event": "GENERIC_EVENT",
                    "event_id": "92319de3",
                    "event_name": "APIFuture.result_async.api_status_error",
                    "event_session_index": 1,
                    "severity": "WARNING",
                    "timestamp": "2025-11-25T06:15:14.246618Z",
                    "event_data": {"request_id": "R1", "status_code": 500},
                },
                {
                    "event": "SESSION_END",
                    "event_id": "x",
                    "event_session_index": 2,
                    "severity": "ERROR",
                    "timestamp": "2025-11-25T06:15:15Z",
                    "duration": "0:00:00.723453",
                },
            ],
            "platform": "Linux",
            "sdk_version": "0.5.1",
            "session_id": "S",
        },
        T.TelemetrySendRequest,
    )
    kinds = [type(e) for e in request.events]
    assert kinds == [T.SessionStartEvent, T.GenericEvent, T.SessionEndEvent]
    assert request.events[1].event_data == {"request_id": "R1", "status_code": 500}


def test_chunks_recognised_with_or_without_type() -> None:
    model_input = parse(
        {
            "chunks": [
                {"tokens": [1, 2]},
                {"type": "encoded_text", "tokens": [3]},
                {"data": "YWJj", "format": "png", "height": 2, "tokens": 4, "width": 2},
                {"format": "png", "height": 1, "location": "x.png", "tokens": 3, "width": 1},
                {
                    "type": "image",
                    "data": "",
                    "format": "jpeg",
                    "height": 1,
                    "tokens": 1,
                    "width": 1,
                    "expected_tokens": 1,
                },
            ]
        },
        T.ModelInput,
    )
    kinds = [type(c) for c in model_input.chunks]
    assert kinds == [
        T.EncodedTextChunk,
        T.EncodedTextChunk,
        T.ImageChunk,
        T.ImageAssetPointerChunk,
        T.ImageChunk,
    ]
    image = model_input.chunks[2]
    assert isinstance(image, T.ImageChunk) and image.data == b"abc"
    assert model_input.length == 2 + 1 + 4 + 3 + 1


@pytest.mark.parametrize(
    ("chunk", "message"),
    [
        ({"type": "audio", "tokens": [1]}, "unknown chunk type 'audio'"),
        ({"tokens": 3}, "cannot tell the chunk kind"),
        ({"data": "***", "format": "png", "height": 1, "tokens": 1, "width": 1}, "base64"),
        ({"tokens": [1, "2"]}, r"tokens\[1\]"),
    ],
)
def test_bad_chunks(chunk: dict[str, Any], message: str) -> None:
    with pytest.raises(_wire.WireFormatError, match=message):
        parse({"chunks": [chunk]}, T.ModelInput)


def test_requests_from_json_for_the_server() -> None:
    request = parse(
        {
            "num_samples": 2,
            "prompt": {"chunks": [{"tokens": [1, 2, 3]}]},
            "sampling_params": {"max_tokens": 4, "stop": [13], "temperature": 0.7},
            "sampling_session_id": "S:sample:0",
            "seq_id": 0,
            "prompt_logprobs": True,
            "topk_prompt_logprobs": 2,
        },
        T.SampleRequest,
    )
    assert request.sampling_params.top_k == -1
    assert T.fields_set(request.sampling_params) == {"max_tokens", "stop", "temperature"}
    load = parse(
        {"model_id": "m", "path": "tinker://m/weights/a", "seq_id": 1}, T.LoadWeightsRequest
    )
    assert load.optimizer is False


def test_structure_names_missing_fields_with_their_path() -> None:
    with pytest.raises(_wire.WireFormatError) as info:
        parse({"model_id": "m", "model_data": {}, "is_lora": "yes"}, T.GetInfoResponse)
    assert "GetInfoResponse.is_lora: expected bool, got str 'yes'" in str(info.value)
    with pytest.raises(_wire.WireFormatError) as missing:
        parse({"sequences": [{"tokens": [1]}]}, T.SampleResponse)
    assert "required field missing @ SampleResponse.sequences[0].stop_reason" in str(missing.value)


def test_loads_accepts_bytes_and_text() -> None:
    assert _wire.loads(b'{"a":[1,2]}') == {"a": [1, 2]}
    assert _wire.loads('{"a":"\u00e9"}') == {"a": "é"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-11-25T06:15:14Z", dt.datetime(2025, 11, 25, 6, 15, 14, tzinfo=UTC)),
        ("2025-11-25T06:15:14.5Z", dt.datetime(2025, 11, 25, 6, 15, 14, 500000, tzinfo=UTC)),
        (
            "2025-11-25T06:15:14.123456789+00:00",
            dt.datetime(2025, 11, 25, 6, 15, 14, 123456, tzinfo=UTC),
        ),
        ("2025-11-25T06:15:14", dt.datetime(2025, 11, 25, 6, 15, 14)),
        ("2025-11-25T01:15:14-05:00", dt.datetime(2025, 11, 25, 6, 15, 14, tzinfo=UTC)),
    ],
)
def test_datetime_forms(text: str, expected: dt.datetime) -> None:
    response = parse({"url": "https://x", "expires": text}, T.CheckpointArchiveUrlResponse)
    assert response.expires == expected


def test_bad_datetime_is_refused() -> None:
    with pytest.raises(_wire.WireFormatError, match="ISO 8601"):
        parse({"url": "https://x", "expires": "yesterday"}, T.CheckpointArchiveUrlResponse)
