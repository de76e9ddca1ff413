"""Checkpoint names, ids and tinker:// paths: accepted forms and clear rejections."""

from __future__ import annotations

import pytest

from tinker.local.server.http_errors import BadRequest
from tinker.local.server.paths import (
    checkpoint_ref,
    parse_tinker_path,
    validate_name,
)

RUN = "3f1e0c2a-0000-4000-8000-000000000001:train:0"


def test_parse_training_and_sampler_paths() -> None:
    ref = parse_tinker_path(f"tinker://{RUN}/weights/ckpt1")
    assert (ref.run_id, ref.checkpoint_id, ref.checkpoint_type) == (
        RUN,
        "weights/ckpt1",
        "training",
    )
    assert ref.tinker_path == f"tinker://{RUN}/weights/ckpt1"
    sampler = parse_tinker_path(f"tinker://{RUN}/sampler_weights/s-1.v2")
    assert (sampler.kind, sampler.name, sampler.checkpoint_type) == (
        "sampler_weights",
        "s-1.v2",
        "sampler",
    )


@pytest.mark.parametrize(
    "path",
    [
        f"http://{RUN}/weights/a",
        f"tinker://{RUN}/weights",
        f"tinker://{RUN}/weights/a/b",
        f"tinker://{RUN}/models/a",
        f"tinker://{RUN}/weights/..",
        f"tinker://{RUN}/weights/.hidden",
        "tinker://../weights/a",
        f"tinker://{RUN}/weights/",
    ],
)
def test_malformed_paths_are_bad_requests(path: str) -> None:
    with pytest.raises(BadRequest):
        parse_tinker_path(path)


@pytest.mark.parametrize("name", ["", "..", "a/b", "a\\b", ".x", "-x", "a\x00b", "x" * 201])
def test_unsafe_names_are_rejected_with_the_rule(name: str) -> None:
    with pytest.raises(BadRequest, match="without path separators"):
        validate_name(name)


def test_checkpoint_ref_requires_a_known_kind() -> None:
    with pytest.raises(BadRequest, match="weights/<name>"):
        checkpoint_ref(RUN, "optimizer/x")
