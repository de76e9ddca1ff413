"""Names, ids and `tinker://` paths of the local server, validated before they touch the disk.

`tinker://<run_id>/weights/<name>` is a training checkpoint (weights and optimizer state);
`tinker://<run_id>/sampler_weights/<name>` a sampler checkpoint (weights only);
`tinker://<run_id>/external_weights/<name>` weights exported for other tools (files only).
"""

from __future__ import annotations

import re

import attrs

from tinker import types
from tinker.local.server.http_errors import BadRequest

SCHEME = "tinker://"
CHECKPOINT_KINDS: dict[str, types.CheckpointType] = {
    "weights": "training",
    "sampler_weights": "sampler",
    "external_weights": "external",
}
#: Kinds holding this server's own checkpoint format (loadable into runs and samplers).
LOADABLE_KINDS = frozenset({"weights", "sampler_weights"})
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._=+@-]{0,199}")
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(:[A-Za-z0-9._-]+)*")


def validate_name(name: str) -> str:
    """Return `name` if it is a safe checkpoint name, else raise BadRequest saying why."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise BadRequest(
            f"Invalid checkpoint name {name!r}: use 1-200 letters, digits, '_', '-', '.', '=', "
            "'+' or '@', not starting with '.' or '-' and without path separators."
        )
    return name


def is_valid_run_id(run_id: str) -> bool:
    """True for ids of the shape the server makes (`<session>:train:<n>`), nothing path-like."""
    return bool(_RUN_ID.fullmatch(run_id)) and ".." not in run_id


@attrs.frozen
class CheckpointRef:
    """A checkpoint named by its training run and checkpoint id (`weights/<name>`)."""

    run_id: str
    kind: str  # "weights", "sampler_weights" or "external_weights"
    name: str

    @property
    def checkpoint_id(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def checkpoint_type(self) -> types.CheckpointType:
        return CHECKPOINT_KINDS[self.kind]

    @property
    def tinker_path(self) -> str:
        return f"{SCHEME}{self.run_id}/{self.kind}/{self.name}"


def checkpoint_ref(run_id: str, checkpoint_id: str) -> CheckpointRef:
    """Parse a REST `{training_run_id}` and `{checkpoint_id}` pair; BadRequest if malformed."""
    if not is_valid_run_id(run_id):
        raise BadRequest(f"Invalid training run id {run_id!r}.")
    kind, sep, name = checkpoint_id.partition("/")
    if not sep or kind not in CHECKPOINT_KINDS:
        raise BadRequest(
            f"Invalid checkpoint id {checkpoint_id!r}: expected 'weights/<name>', "
            "'sampler_weights/<name>' or 'external_weights/<name>'."
        )
    return CheckpointRef(run_id, kind, validate_name(name))


def parse_tinker_path(path: str) -> CheckpointRef:
    """Parse `tinker://<run_id>/<kind>/<name>`; BadRequest if malformed."""
    try:
        parsed = types.ParsedCheckpointTinkerPath.from_tinker_path(path)
    except (TypeError, ValueError) as exc:
        raise BadRequest(str(exc)) from exc
    return checkpoint_ref(parsed.training_run_id, parsed.checkpoint_id)


def loadable_path(path: str) -> CheckpointRef:
    """Parse a path of a checkpoint to load into a run or sampler; BadRequest for exported
    weights, which are files for other tools."""
    ref = parse_tinker_path(path)
    if ref.kind not in LOADABLE_KINDS:
        raise BadRequest(
            f"{path!r} holds weights exported for other tools; load or sample from the training "
            "or sampler checkpoint they were exported from."
        )
    return ref
