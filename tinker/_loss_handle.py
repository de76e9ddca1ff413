"""LossHandle: a traced per-datum custom loss, and how forward_backward_custom uses one.

`ServiceClient.create_custom_loss` returns a handle. With a `loss_id` (uploaded to a server
that runs custom losses) a forward_backward_custom is one `forward_backward(data, "custom",
{"loss_id": ...})`; without one the handle's graph runs here, per datum, on the logprobs of a
forward pass (`batch_loss`), through the same linear surrogate as a callable loss. Either way
`check_batch` first checks, in the caller's thread, that every datum has what the loss reads.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tinker import types

__all__ = ["LossHandle", "PerDatumLossFn", "batch_loss", "check_batch", "check_session"]

# fn(logprobs, *inputs) -> (loss, {"custom/<name>:sum" | "custom/<name>:mean": tensor}),
# run once per datum on torch tensors.
PerDatumLossFn = Callable[..., tuple[Any, Mapping[str, Any]]]


@dataclasses.dataclass(frozen=True)
class LossHandle:
    """A custom loss created in one session: its name, its inputs (`logprobs` first) with
    ranks, the creating session, the traced graph that runs, and its server id when uploaded
    (None: it runs on the client)."""

    name: str
    inputs: tuple[types.CustomLossInput, ...]
    session_id: str
    graph: Any = dataclasses.field(repr=False, compare=False)  # torch.fx.GraphModule
    loss_id: str | None = None

    @functools.cached_property
    def key(self) -> str:
        """SHA-256 of the traced graph and the inputs: the same loss has the same key."""
        from tinker._loss_trace import graph_key

        return graph_key(self.inputs, self.graph)

    @property
    def input_names(self) -> tuple[str, ...]:
        """The loss_fn_inputs keys the loss reads (every parameter after `logprobs`)."""
        return tuple(spec.name for spec in self.inputs[1:])

    @property
    def logprobs_rank(self) -> int:
        """1: logprobs shaped [T] like 1-D target_tokens; 2: [T, K]."""
        return self.inputs[0].rank


def check_session(handle: LossHandle, session_id: str) -> None:
    """A handle works only with clients of the session that created it."""
    if handle.session_id != session_id:
        raise ValueError(
            f"LossHandle {handle.name!r} was created in session {handle.session_id!r}; this "
            f"client belongs to session {session_id!r}: create the loss again with this "
            "client's ServiceClient"
        )


def check_batch(handle: LossHandle, data: Sequence[types.Datum]) -> None:
    """Every datum has target_tokens of the logprobs' rank and each input the loss reads,
    with its rank and one row per target position (ValueError naming the datum)."""
    for index, datum in enumerate(data):
        where = f"data[{index}]"
        inputs = datum.loss_fn_inputs
        if "target_tokens" not in inputs:
            raise ValueError(f"{where}.loss_fn_inputs lacks 'target_tokens'")
        targets = _shape(inputs["target_tokens"])
        if len(targets) != handle.logprobs_rank:
            raise ValueError(
                f"{where}: loss {handle.name!r} takes rank-{handle.logprobs_rank} logprobs, "
                f"but target_tokens has shape {list(targets)}"
            )
        for spec in handle.inputs[1:]:
            if spec.name not in inputs:
                raise ValueError(
                    f"{where}.loss_fn_inputs lacks {spec.name!r}, which loss {handle.name!r} reads"
                )
            shape = _shape(inputs[spec.name])
            if not _fits(shape, spec.rank, targets[0]):
                raise ValueError(
                    f"{where}.loss_fn_inputs[{spec.name!r}] has shape {list(shape)}; loss "
                    f"{handle.name!r} declares rank {spec.rank}"
                    + (f" with {targets[0]} rows (one per target position)" if spec.rank else "")
                )


def _shape(tensor: types.TensorData) -> tuple[int, ...]:
    """The tensor's shape, read without densifying a sparse one."""
    return tuple(tensor.shape) if tensor.shape is not None else tuple(tensor.values.shape)


def _fits(shape: tuple[int, ...], rank: int, rows: int) -> bool:
    if rank == 0:
        return shape in ((), (1,))
    return len(shape) == rank and shape[0] == rows


def batch_loss(handle: LossHandle) -> Callable[[list[types.Datum], list[Any]], Any]:
    """The handle as a batch loss `fn(data, logprobs) -> (loss, metrics)` for the client-side
    path: per datum, the graph runs on its logprobs (shaped like target_tokens, float64) and
    inputs; losses add up, `:sum` metrics add up and `:mean` metrics average over datums."""

    def run(data: list[types.Datum], logprobs: list[Any]) -> tuple[Any, dict[str, float]]:
        import torch

        losses = []
        sums: dict[str, float] = {}
        for index, (datum, lp) in enumerate(zip(data, logprobs, strict=True)):
            inputs = datum.loss_fn_inputs
            args = [lp.reshape(_shape(inputs["target_tokens"])).to(torch.float64)]
            args += [_as_input(torch, inputs[spec.name], spec.rank) for spec in handle.inputs[1:]]
            loss, metrics = handle.graph(*args)
            losses.append(_one_value(torch, handle, index, "the loss", loss))
            for key, value in metrics.items():
                metric = _one_value(torch, handle, index, f"metric {key!r}", value)
                number = float(metric.detach())
                sums[key] = sums.get(key, 0.0) + number
        averaged = {
            key: value / len(data) if key.endswith(":mean") else value
            for key, value in sums.items()
        }
        return torch.stack(losses).sum(), averaged

    run.__name__ = handle.name
    return run


def _as_input(torch: Any, tensor: types.TensorData, rank: int) -> Any:
    """A loss input as the graph gets it: floats in float64, integers in int64, rank 0 as a
    0-d tensor (a one-element [1] tensor is accepted for it)."""
    value = torch.from_numpy(tensor.to_numpy().copy())
    if rank == 0:
        value = value.reshape(())
    return value.to(torch.float64 if value.is_floating_point() else torch.int64)


def _one_value(torch: Any, handle: LossHandle, index: int, what: str, value: Any) -> Any:
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        shape = list(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(
            f"datum {index}: loss {handle.name!r}: {what} must be a one-element tensor, got {shape}"
        )
    return value.reshape(())
