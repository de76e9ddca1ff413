"""tinker:// checkpoint paths: the exact grammar, and refusal of unsafe parts."""

from __future__ import annotations

import pytest

from tinker.types import ParsedCheckpointTinkerPath


def test_training_checkpoint_path() -> None:
    parsed = ParsedCheckpointTinkerPath.from_tinker_path("tinker://S:train:0/weights/ckpt1")
    assert parsed.tinker_path == "tinker://S:train:0/weights/ckpt1"
    assert parsed.training_run_id == "S:train:0"
    assert parsed.checkpoint_type == "training"
    assert parsed.checkpoint_id == "weights/ckpt1"


def test_sampler_checkpoint_path() -> None:
    path = "tinker://79db3d29-8bda-515f-a3c3-f9c1a8806642:train:0/sampler_weights/sampler-weights"
    parsed = ParsedCheckpointTinkerPath.from_tinker_path(path)
    assert parsed.training_run_id == "79db3d29-8bda-515f-a3c3-f9c1a8806642:train:0"
    assert parsed.checkpoint_type == "sampler"
    assert parsed.checkpoint_id == "sampler_weights/sampler-weights"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("http://r/weights/a", "must start with 'tinker://'"),
        ("r/weights/a", "must start with"),
        ("tinker://r/weights", "expected tinker://"),
        ("tinker://r/weights/a/b", "expected tinker://"),
        (
            "tinker://r/optimizer/a",
            "middle part must be 'weights', 'sampler_weights' or 'external_weights'",
        ),
        ("tinker:///weights/a", "empty"),
        ("tinker://r/weights/", "empty"),
        ("tinker://../weights/a", r"'\.\.'"),
        ("tinker://r/weights/..", r"'\.\.'"),
        ("tinker://./weights/a", "'.'"),
        ("tinker://r/weights/a\\..\\b", "backslash"),
        ("tinker://r/weights/a\x00", "control character"),
        ("tinker://r\n/weights/a", "control character"),
        ("tinker://r/weights/a?x=1", "'\\?'"),
        ("tinker://r/weights/a#frag", "'#'"),
    ],
)
def test_invalid_paths(path: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ParsedCheckpointTinkerPath.from_tinker_path(path)


def test_non_string_path() -> None:
    with pytest.raises(TypeError):
        ParsedCheckpointTinkerPath.from_tinker_path(None)  # type: ignore[arg-type]
