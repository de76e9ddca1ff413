"""Provenance spans: which sampled sequence each run of a training datum's tokens came from.

A prompt span claims positions `[offset, offset + length)` of the prompt of the sample request
that produced `sequence_id`; a sampled span claims the same range of that sequence's sampled
tokens. `Datum.with_provenance` attaches them; stable_reinforce training reads them.
"""

from __future__ import annotations

import dataclasses
from typing import Union

from tinker.types._data import DataModel, data_model

__all__ = ["PromptProvenanceSpan", "ProvenanceSpans", "SampledProvenanceSpan", "check_span"]


def check_span(span: _ProvenanceRun) -> None:
    """ValueError naming the field when a span is malformed."""
    name = type(span).__name__
    if not isinstance(span.sequence_id, str) or not span.sequence_id:
        raise ValueError(f"{name}.sequence_id: must be a non-empty str, got {span.sequence_id!r}")
    for field in ("offset", "length"):
        value = getattr(span, field)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{name}.{field}: must be an int, got {value!r}")
        if value < 0:
            raise ValueError(f"{name}.{field}: must be >= 0, got {value}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class _ProvenanceRun(DataModel):
    _json_keys = ("sequence_id", "offset", "length")

    sequence_id: str
    offset: int = 0
    length: int

    def __post_init__(self) -> None:
        check_span(self)


@data_model
@dataclasses.dataclass(frozen=True, kw_only=True)
class PromptProvenanceSpan(_ProvenanceRun):
    """`length` tokens taken from the prompt of the request that sampled `sequence_id`."""

    _json_tag = "prompt_tokens"


@data_model
@dataclasses.dataclass(frozen=True, kw_only=True)
class SampledProvenanceSpan(_ProvenanceRun):
    """`length` tokens taken from the sampled tokens of `sequence_id`, from `offset`."""

    _json_tag = "sampled_tokens"


ProvenanceSpans = list[Union[PromptProvenanceSpan, SampledProvenanceSpan]]
