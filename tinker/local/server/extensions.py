"""Request fields of the 0.38 protocol that the `tinker.types` request models do not carry (yet),
read from the same JSON bodies.

Each extension holds the new fields of one request (PROTOCOL-0.38 sections 4.3, 6.1, 6.7, 6.8
and 7.2) with the protocol's defaults, so a 0.5.1 body (which has none of them) reads as the
defaults; bodies.parse_with decodes a body once into the request model and its extension. Two
0.38 requests are read whole: optim_step (either optimizer family's parameters) and
create_custom_loss (section 6.10).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import attrs

from tinker.types import AdamParams, WireModel
from tinker.types._base import wire


@wire
@attrs.frozen(kw_only=True)
class SessionExtension(WireModel):
    """create_session: the project and display name of the session."""

    project_id: str | None = None
    display_name: str | None = None


@wire
@attrs.frozen(kw_only=True)
class OptimizerExtension(WireModel):
    """create_model: the optimizer family of the run (None: AdamW)."""

    optimizer_config: dict[str, Any] | None = None


@wire
@attrs.frozen(kw_only=True)
class OptimStepExtension(WireModel):
    """optim_step: the parameters of a non-Adam optimizer family (instead of adam_params)."""

    optimizer_params: dict[str, Any] | None = None


@wire
@attrs.frozen(kw_only=True)
class SaveExtension(WireModel):
    """save_weights / save_weights_for_sampler: replacement, metadata and the sampler kind."""

    overwrite: bool | None = None  # absent (0.5.1 clients): a save replaces the checkpoint
    user_metadata: dict[str, str] | None = None
    kind: Literal["snapshot", "inflight"] = "snapshot"


@wire
@attrs.frozen(kw_only=True)
class TargetTokens(WireModel):
    """target_prompt_logprobs: int64 token ids of a [len(prompt) - 1, K] table, dense or CSR
    (`data` then lists only the listed cells)."""

    data: list[int]
    dtype: Literal["int64"]
    shape: list[int] | None = None
    sparse_crow_indices: list[int] | None = None
    sparse_col_indices: list[int] | None = None


@wire
@attrs.frozen(kw_only=True)
class SampleExtension(WireModel):
    """asample: what else to compute about the prompt and the generated tokens."""

    topk_sample_logprobs: int = 0
    target_prompt_logprobs: TargetTokens | None = None
    prompt_alt_tokens_k: int = 0
    prompt_logprobs_last_n: int | None = None
    record_stability_info: bool | None = None


@wire
@attrs.frozen(kw_only=True)
class OptimStepBody(WireModel):
    """optim_step with either family's parameters: `adam_params` (AdamW runs) or
    `optimizer_params` (other families, with their `type`)."""

    model_id: str
    seq_id: int | None = None
    adam_params: AdamParams | None = None
    optimizer_params: dict[str, Any] | None = None


@wire
@attrs.frozen(kw_only=True)
class CustomLossBody(WireModel):
    """create_custom_loss: a traced loss function for the session's training runs."""

    session_id: str
    custom_loss_seq_id: int
    name: str
    inputs: list[dict[str, Any]]
    graph: dict[str, Any]


_STATUSES = ("active", "cancelled", "failed", "client_finished")
_FINISH_REASONS = ("success", "errored", "interrupted")


@wire
@attrs.frozen(kw_only=True)
class SearchOwner(WireModel):
    """Whose sessions a search lists: own, accessible, or those of named users (1 to 10)."""

    type: Literal["own", "accessible", "user"] = "own"
    owner_urns: list[str] | None = None

    def _validate(self) -> None:
        if self.type == "user" and not 1 <= len(self.owner_urns or []) <= 10:
            raise ValueError("owner of type 'user' needs 1 to 10 owner_urns")


@wire
@attrs.frozen(kw_only=True)
class SearchCursor(WireModel):
    """Where the previous page of a session search ended."""

    last_created_at: dt.datetime
    last_session_id: str


@wire
@attrs.frozen(kw_only=True)
class SearchBody(WireModel):
    """sessions/search: every given criterion must match (session_id or display_name either)."""

    session_id: str | None = None
    project_ids: list[str] | None = None
    user_metadata: dict[str, str] = attrs.field(factory=dict)
    display_name: str | None = None
    owner: SearchOwner = attrs.field(factory=SearchOwner)
    statuses: list[dict[str, Any]] | None = None
    limit: int = 50
    cursor: SearchCursor | None = None

    def _validate(self) -> None:
        if self.display_name is not None and not self.display_name:
            raise ValueError("display_name must not be empty")
        if not 1 <= self.limit <= 200:
            raise ValueError(f"limit must be in 1..200, got {self.limit}")
        if self.statuses is not None:
            if not self.statuses:
                raise ValueError("statuses must list at least one status")
            for status in self.statuses:
                if status.get("type") not in _STATUSES:
                    raise ValueError(f"status type must be one of {_STATUSES}, got {status!r}")
                reasons = status.get("reasons")
                if reasons is not None and (
                    not reasons or any(r not in _FINISH_REASONS for r in reasons)
                ):
                    raise ValueError(f"reasons must list some of {_FINISH_REASONS}")


@wire
@attrs.frozen(kw_only=True)
class SaveExternalBody(WireModel):
    """save_weights_external: export the weights as `external_weights/<path>`."""

    model_id: str
    path: str
    seq_id: int | None = None
    ttl_seconds: int | None = None
    age_encryption_recipients: list[str] | None = None


@wire
@attrs.frozen(kw_only=True)
class CopyBody(WireModel):
    """copy_weights: a checkpoint under a new training run (in a project or a session)."""

    source_path: str
    destination_project_id: str | None = None
    ttl_seconds: int | None = None
    session_id: str | None = None
    model_seq_id: int | None = None
