"""JSON bodies of future results, built from backend outputs exactly as the protocol expects.

TensorData carries only `data`, `dtype` (float32 or int64) and `shape`; metric keys keep their
single ':'; failures are `{"error", "category"}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from tinker.local.compute.backend import LossOutput, SampleOutput

JSONDict = dict[str, Any]


def tensor(array: Any) -> JSONDict:
    """TensorData for a numpy array: floats as float32, integers as int64."""
    values = np.asarray(array)
    if values.dtype.kind in "iub":
        values, dtype = values.astype(np.int64), "int64"
    else:
        values, dtype = values.astype(np.float32), "float32"
    return {"data": values.ravel().tolist(), "dtype": dtype, "shape": list(values.shape)}


def forward_output(result: LossOutput, extra_metrics: Mapping[str, float]) -> JSONDict:
    """ForwardBackwardOutput: one outputs entry per datum, in order; metrics as floats."""
    metrics = {key: float(value) for key, value in result.metrics.items()}
    for key, value in extra_metrics.items():
        metrics.setdefault(key, float(value))
    return {
        "loss_fn_output_type": result.loss_fn_output_type,
        "loss_fn_outputs": [
            {name: tensor(array) for name, array in output.items()} for output in result.outputs
        ],
        "metrics": metrics,
    }


def sample_output(result: SampleOutput) -> JSONDict:
    """SampleResponse: generated tokens only, per-token logprobs, stop reasons, prompt logprobs."""
    topk = result.topk_prompt_logprobs
    return {
        "type": "sample",
        "sequences": [
            {
                "tokens": [int(token) for token in sequence.tokens],
                "logprobs": [float(value) for value in sequence.logprobs],
                "stop_reason": sequence.stop_reason,
            }
            for sequence in result.sequences
        ],
        "prompt_logprobs": None
        if result.prompt_logprobs is None
        else [None if value is None else float(value) for value in result.prompt_logprobs],
        "topk_prompt_logprobs": None
        if topk is None
        else [
            None if entry is None else [[int(token), float(lp)] for token, lp in entry]
            for entry in topk
        ],
    }


def failure(message: str, category: str) -> JSONDict:
    """RequestFailedResponse (sent with HTTP 200)."""
    return {"error": message, "category": category}
