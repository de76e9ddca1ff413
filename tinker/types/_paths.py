"""tinker:// checkpoint paths:
`tinker://<training_run_id>/<weights|sampler_weights|external_weights>/<name>`."""

from __future__ import annotations

from typing import Literal

import attrs

from tinker.types._base import WireModel, wire

__all__ = ["CheckpointType", "ParsedCheckpointTinkerPath"]

CheckpointType = Literal["training", "sampler", "external"]

_SCHEME = "tinker://"
_KIND_TO_TYPE: dict[str, CheckpointType] = {
    "weights": "training",
    "sampler_weights": "sampler",
    "external_weights": "external",
}
# Characters that would escape a path segment or break the REST URLs built from the parts.
_FORBIDDEN = frozenset("\\?#")


def _bad_part(part: str) -> str | None:
    """Why a path part is unsafe, or None when it is fine."""
    if part in ("", ".", ".."):
        return "empty, '.' or '..' part"
    if any(ch in _FORBIDDEN for ch in part):
        return "backslash, '?' or '#'"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in part):
        return "control character"
    return None


@wire
@attrs.frozen(kw_only=True)
class ParsedCheckpointTinkerPath(WireModel):
    """The parts of a checkpoint's tinker:// path."""

    tinker_path: str
    training_run_id: str
    checkpoint_type: CheckpointType
    checkpoint_id: str

    @classmethod
    def from_tinker_path(cls, tinker_path: str) -> ParsedCheckpointTinkerPath:
        """Parse and check a path; ValueError names what is wrong."""
        if not isinstance(tinker_path, str):
            raise TypeError(f"tinker path must be a str, got {type(tinker_path).__name__}")
        if not tinker_path.startswith(_SCHEME):
            raise ValueError(f"Invalid tinker path {tinker_path!r}: must start with {_SCHEME!r}")
        parts = tinker_path[len(_SCHEME) :].split("/")
        if len(parts) != 3:
            raise ValueError(
                f"Invalid tinker path {tinker_path!r}: expected "
                "tinker://<training_run_id>/<weights|sampler_weights|external_weights>/<name>"
            )
        run_id, kind, name = parts
        checkpoint_type = _KIND_TO_TYPE.get(kind)
        if checkpoint_type is None:
            raise ValueError(
                f"Invalid tinker path {tinker_path!r}: the middle part must be 'weights', "
                f"'sampler_weights' or 'external_weights', got {kind!r}"
            )
        for part in (run_id, name):
            problem = _bad_part(part)
            if problem is not None:
                raise ValueError(f"Invalid tinker path {tinker_path!r}: {problem}")
        return cls(
            tinker_path=tinker_path,
            training_run_id=run_id,
            checkpoint_type=checkpoint_type,
            checkpoint_id=f"{kind}/{name}",
        )
