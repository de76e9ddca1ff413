"""Uploaded custom losses: the traced graph (torch.fx nodes in execution order), its inputs
with their ranks, and the create_custom_loss request and answer."""

from __future__ import annotations

import re
from typing import Any, Literal

import attrs

from tinker.types._base import WireModel, wire

__all__ = [
    "CreateCustomLossRequest",
    "CreateCustomLossResponse",
    "CustomLossGraph",
    "CustomLossInput",
    "CustomLossInputRank",
    "CustomLossNode",
    "CustomLossNodeOp",
]

# 0: a scalar, 1: one value per target token [T], 2: [T, K].
CustomLossInputRank = Literal[0, 1, 2]
CustomLossNodeOp = Literal[
    "placeholder", "get_attr", "call_function", "call_method", "call_module", "output"
]
MAX_CUSTOM_LOSS_INPUTS = 16
_INPUT_NAME = re.compile(r"[a-z_][a-z0-9_]{0,63}")


@wire
@attrs.frozen(kw_only=True)
class CustomLossInput(WireModel):
    """One parameter of a traced loss: `logprobs` first, then the loss_fn_inputs keys read."""

    name: str
    rank: CustomLossInputRank

    def _validate(self) -> None:
        if not _INPUT_NAME.fullmatch(self.name):
            raise ValueError(
                f"CustomLossInput.name: must match [a-z_][a-z0-9_]{{0,63}}, got {self.name!r}"
            )


@wire
@attrs.frozen(kw_only=True)
class CustomLossNode(WireModel):
    """One torch.fx node: its kind, name, target and encoded arguments."""

    op: CustomLossNodeOp
    name: str
    target: str
    args: list[Any] = attrs.Factory(list)
    kwargs: dict[str, Any] = attrs.Factory(dict)


@wire
@attrs.frozen(kw_only=True)
class CustomLossGraph(WireModel):
    """A traced loss graph (format 1): nodes in execution order."""

    format: Literal[1] = 1
    nodes: list[CustomLossNode]


@wire
@attrs.frozen(kw_only=True)
class CreateCustomLossRequest(WireModel):
    """Body of POST /api/v1/create_custom_loss."""

    session_id: str
    custom_loss_seq_id: int
    name: str
    inputs: list[CustomLossInput]
    graph: CustomLossGraph
    type: Literal["create_custom_loss"] = "create_custom_loss"

    def _validate(self) -> None:
        inputs = self.inputs
        if not inputs or inputs[0].name != "logprobs" or inputs[0].rank not in (1, 2):
            raise ValueError(
                "CreateCustomLossRequest.inputs: the first input must be logprobs of rank 1 or 2"
            )
        if len(inputs) > MAX_CUSTOM_LOSS_INPUTS:
            raise ValueError(
                f"CreateCustomLossRequest.inputs: at most {MAX_CUSTOM_LOSS_INPUTS}, "
                f"got {len(inputs)}"
            )
        names = [item.name for item in inputs]
        if len(set(names)) != len(names):
            raise ValueError(f"CreateCustomLossRequest.inputs: names repeat: {names}")


@wire
@attrs.define(kw_only=True)
class CreateCustomLossResponse(WireModel):
    """Result of create_custom_loss: the id forward_backward(..., "custom") names."""

    loss_id: str
    type: Literal["create_custom_loss"] = "create_custom_loss"
