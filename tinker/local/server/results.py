"""Results of forward/forward_backward and of sampling, in both wire forms.

JSON goes through `tinker.types` (server.responses); protobuf is built straight from the
backend's numpy arrays (`tinker._wire.proto`), with every field of the 0.38 messages:
per-sequence top-k, prompt top-k, target prompt logprobs (dense or CSR, as asked), alternative
prompt tokens and prompt cache hits. Arrays travel as float32 / int64 (int32 where the schema
says so); a prompt position without a logprob is NaN, as the protocol defines.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from tinker import types
from tinker._wire import proto
from tinker._wire.proto import mapping
from tinker._wire.proto import messages as m
from tinker.local.compute.backend import (
    AltTokens,
    LossOutput,
    SampleOutput,
    TargetLogprobs,
)
from tinker.local.server import responses


@attrs.frozen
class ForwardResult:
    """A forward/forward_backward result: per-datum outputs, metrics and the server's own
    metrics (added where the result has none)."""

    output: LossOutput
    extra_metrics: Mapping[str, float]

    def json_model(self) -> types.ForwardBackwardOutput:
        return responses.forward_output(self.output, self.extra_metrics)

    def protobuf(self) -> bytes:
        outputs = [
            {name: wire_array(array) for name, array in datum.items()}
            for datum in self.output.outputs
        ]
        metrics = responses.forward_metrics(self.output, self.extra_metrics)
        return mapping.encode_forward_backward_arrays(
            self.output.loss_fn_output_type, outputs, metrics
        )


@attrs.frozen
class SampleResult:
    """A sample result; its sequences in the order of the request's sample_sequence_ids."""

    output: SampleOutput

    def json_model(self) -> types.SampleResponse:
        return responses.sample_output(self.output)

    def protobuf(self) -> bytes:
        return proto.encode(sample_message(self.output))


def wire_array(array: Any) -> np.ndarray:
    """An output array as the wire carries it: integers and booleans int64, else float32."""
    values = np.asarray(array)
    dtype = "<i8" if values.dtype.kind in "iub" else "<f4"
    return np.ascontiguousarray(values, dtype)


def sample_message(result: SampleOutput) -> m.SampleResponse:
    """The protobuf SampleResponse of a backend sample result."""
    prompt = result.prompt_logprobs
    return m.SampleResponse(
        sequences=[
            m.SampledSequence(
                stop_reason=mapping.stop_reason_message(sequence.stop_reason),
                tokens=np.asarray(sequence.tokens, "<i4"),
                logprobs=np.asarray(sequence.logprobs, "<f4"),
                topk_sampled_logprobs=mapping.topk_table_message(sequence.topk_logprobs),
            )
            for sequence in result.sequences
        ],
        prompt_logprobs=None
        if prompt is None
        else np.array([math.nan if v is None else v for v in prompt], "<f4"),
        topk_prompt_logprobs=mapping.topk_rows_message(result.topk_prompt_logprobs),
        prompt_cache_hit_tokens=int(result.prompt_cache_hit_tokens),
        target_prompt_logprobs=_targets(result.target_prompt_logprobs),
        prompt_alt_tokens=_alt_tokens(result.prompt_alt_tokens),
    )


def _targets(table: TargetLogprobs | None) -> m.Tensor | None:
    if table is None:
        return None
    values = np.ascontiguousarray(table.values, "<f4").reshape(-1)
    shape = tuple(int(dim) for dim in table.shape)
    if table.crow is None or table.col is None:
        return m.Tensor(dtype=m.DType.FLOAT32, shape=shape, dense=values)
    csr = m.SparseCsr(
        values=values,
        crow_indices=np.ascontiguousarray(table.crow, "<i8"),
        col_indices=np.ascontiguousarray(table.col, "<i8"),
    )
    return m.Tensor(dtype=m.DType.FLOAT32, shape=shape, sparse_csr=csr)


def _alt_tokens(alt: AltTokens | None) -> m.PromptAltTokens | None:
    if alt is None:
        return None
    tokens = np.ascontiguousarray(alt.tokens, "<i8")
    return m.PromptAltTokens(
        tokens=m.Tensor(dtype=m.DType.INT64, shape=tokens.shape, dense=tokens.reshape(-1)),
        logprobs=m.Tensor(
            dtype=m.DType.FLOAT32,
            shape=tokens.shape,
            dense=np.ascontiguousarray(alt.logprobs, "<f4").reshape(-1),
        ),
    )
