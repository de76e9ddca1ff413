"""ForwardBackwardCall: what one forward / forward_backward request carries, in SDK terms."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tinker import types

__all__ = ["ForwardBackwardCall"]


@dataclass(frozen=True)
class ForwardBackwardCall:
    """The datums of one chunk, their loss and its config, the model and the chunk's seq_id;
    `forward_only` for a forward (no gradients)."""

    model_id: str
    seq_id: int
    data: Sequence[types.Datum]
    loss_fn: str
    loss_fn_config: Mapping[str, float | str] | None = None
    forward_only: bool = False
