"""The bodies the server answers with, as `tinker.types` models built from backend outputs and
store records; `tinker._wire` encodes them (compact UTF-8 JSON, only the fields set here).

Bodies without a model in `tinker.types` are plain dicts: errors are FastAPI-style
`{"detail": ...}` (the detail is a string, or the list of problems of a 422), and the result
of create_custom_loss is `{"loss_id", "type"}` and that of save_weights_external
`{"path", "size_bytes", "type"}`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, cast

import numpy as np

from tinker import _wire, types
from tinker.local.compute.backend import LossOutput, SampleOutput
from tinker.local.server.store import CheckpointRow, RunRow

MODEL_OWNER = "local"  # TrainingRun.model_owner of every run


def error_detail(detail: Any) -> dict[str, Any]:
    """The body of an HTTP error: `{"detail": ...}`."""
    return {"detail": detail}


def future(
    request_id: str, model_id: str | None, sample_sequence_ids: list[str] | None = None
) -> types.UntypedAPIFuture:
    """The answer of a submit: the request id to poll (model_id is sent even when None) and,
    for a sample, its sequence ids."""
    if sample_sequence_ids is None:
        return types.UntypedAPIFuture(request_id=request_id, model_id=model_id)
    return types.UntypedAPIFuture(
        request_id=request_id, model_id=model_id, sample_sequence_ids=sample_sequence_ids
    )


def try_again(request_id: str, reason: str | None = None) -> types.TryAgainResponse:
    """The poll answer (HTTP 408) while a result is still pending; `reason` says why it
    waits (0.38 clients show it; older ones ignore it)."""
    if reason is None:
        return types.TryAgainResponse(request_id=request_id, queue_state="active")
    return types.TryAgainResponse(
        request_id=request_id, queue_state="active", queue_state_reason=reason
    )


def metadata_only(size: int) -> types.FutureCompleteMetadata:
    """The poll answer announcing a finished result of `size` bytes without its payload."""
    return types.FutureCompleteMetadata(response_payload_size=size)


def exported(path: str, size_bytes: int | None) -> dict[str, Any]:
    """The result of save_weights_external."""
    return {"path": path, "size_bytes": size_bytes, "type": "save_weights_external"}


def created_loss(loss_id: str) -> dict[str, str]:
    """The result of create_custom_loss."""
    return {"loss_id": loss_id, "type": "create_custom_loss"}


def failure(message: str, category: str) -> types.RequestFailedResponse:
    """The poll answer (HTTP 200) of a request that failed."""
    return types.RequestFailedResponse(error=message, category=category)


def tensor(array: Any) -> types.TensorData:
    """TensorData for a numpy array: integers and booleans as int64, everything else float32."""
    values = np.asarray(array)
    wire_dtype = np.int64 if values.dtype.kind in "iub" else np.float32
    return types.TensorData.from_numpy(values.astype(wire_dtype, copy=False))


def forward_metrics(result: LossOutput, extra_metrics: Mapping[str, float]) -> dict[str, float]:
    """The result's metrics as floats, plus the server's own where the result has none."""
    metrics = {key: float(value) for key, value in result.metrics.items()}
    for key, value in extra_metrics.items():
        metrics.setdefault(key, float(value))
    return metrics


def forward_output(
    result: LossOutput, extra_metrics: Mapping[str, float]
) -> types.ForwardBackwardOutput:
    """ForwardBackwardOutput: one outputs entry per datum, in order; metrics as floats."""
    return types.ForwardBackwardOutput(
        loss_fn_output_type=result.loss_fn_output_type,
        loss_fn_outputs=[
            {name: tensor(array) for name, array in output.items()} for output in result.outputs
        ],
        metrics=forward_metrics(result, extra_metrics),
    )


def sample_output(result: SampleOutput) -> types.SampleResponse:
    """SampleResponse: generated tokens only, per-token logprobs, stop reasons, prompt logprobs
    (position 0 has none: null)."""
    topk = result.topk_prompt_logprobs
    prompt = result.prompt_logprobs
    return types.SampleResponse(
        type="sample",
        sequences=[
            types.SampledSequence(
                tokens=[int(token) for token in sequence.tokens],
                logprobs=[float(value) for value in sequence.logprobs],
                stop_reason=cast(types.StopReason, sequence.stop_reason),
            )
            for sequence in result.sequences
        ],
        prompt_logprobs=None
        if prompt is None
        else [None if value is None else float(value) for value in prompt],
        topk_prompt_logprobs=None
        if topk is None
        else [
            None if entry is None else [(int(token), float(lp)) for token, lp in entry]
            for entry in topk
        ],
    )


def checkpoint(row: CheckpointRow) -> types.Checkpoint:
    """A checkpoint as the REST endpoints list it."""
    return types.Checkpoint(
        checkpoint_id=row.ref.checkpoint_id,
        checkpoint_type=row.ref.checkpoint_type,
        time=_utc(row.created_at),
        tinker_path=row.ref.tinker_path,
        size_bytes=row.size_bytes,
        public=row.public,
        user_metadata=_string_map(row.user_metadata),
        expires_at=None if row.expires_at is None else _utc(row.expires_at),
    )


def checkpoints_page(
    rows: list[CheckpointRow], total: int, limit: int, offset: int
) -> types.CheckpointsListResponse:
    """A page of checkpoints with its cursor."""
    return types.CheckpointsListResponse(
        checkpoints=[checkpoint(row) for row in rows],
        cursor=types.Cursor(offset=offset, limit=limit, total_count=total),
    )


def training_run(
    row: RunRow, last: CheckpointRow | None, last_sampler: CheckpointRow | None
) -> types.TrainingRun:
    """A training run with its newest training and sampler checkpoints."""
    return types.TrainingRun(
        training_run_id=row.run_id,
        base_model=row.base_model,
        model_owner=MODEL_OWNER,
        is_lora=True,
        corrupted=row.corrupted,
        lora_rank=row.lora_rank,
        last_request_time=_utc(row.last_request_at),
        last_checkpoint=None if last is None else checkpoint(last),
        last_sampler_checkpoint=None if last_sampler is None else checkpoint(last_sampler),
        user_metadata=_string_map(row.user_metadata),
    )


def _utc(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.timezone.utc)


def _string_map(metadata: Mapping[str, Any] | None) -> dict[str, str] | None:
    """Metadata as the string map clients expect: non-string values as their JSON text."""
    if metadata is None:
        return None
    return {
        key: value if isinstance(value, str) else _wire.dumps(value).decode()
        for key, value in metadata.items()
    }
