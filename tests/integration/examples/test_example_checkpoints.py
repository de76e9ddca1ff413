"""examples/checkpoints.py: resume with the optimizer state, sampler weights, REST, download."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from example_scripts import EXAMPLES_DIR
from safetensors.numpy import load_file

from tinker.local import LocalServer


@pytest.fixture(scope="module")
def walkthrough(
    tinker_shared_server: LocalServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The example's main() run once against the session's shared server."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(EXAMPLES_DIR))
        patch.setenv("TINKER_TELEMETRY", "0")
        checkpoints = importlib.import_module("checkpoints")
        yield checkpoints.main(
            base_url=tinker_shared_server.url,
            api_key="examples-test-key",
            output_dir=str(tmp_path_factory.mktemp("download")),
        )


def test_resumed_clients_continue_exactly_like_the_original(walkthrough: dict[str, Any]) -> None:
    losses = walkthrough["losses"]
    assert losses["resumed"] == losses["saved"]
    after = losses["original after one more step"]
    # Same next step from the same weights *and* Adam moments: the same result, bit for bit.
    assert losses["resumed after one more step"] == after
    assert losses["loaded after one more step"] == after
    assert after < losses["saved"]


def test_checkpoints_are_listed_with_their_kind_visibility_and_expiry(
    walkthrough: dict[str, Any],
) -> None:
    state, sampler = walkthrough["state_path"], walkthrough["sampler_path"]
    assert state.startswith("tinker://") and state.endswith("/weights/step-3")
    assert sampler.startswith("tinker://") and sampler.endswith("/sampler_weights/step-3")
    listed = {c.tinker_path: c for c in walkthrough["checkpoints"]}
    assert set(listed) == {state, sampler}
    assert listed[state].checkpoint_type == "training" and not listed[state].public
    assert listed[state].expires_at is None
    assert listed[sampler].checkpoint_type == "sampler" and listed[sampler].public
    ttl = listed[sampler].expires_at - listed[sampler].time
    assert 3590 <= ttl.total_seconds() <= 3610


def test_download_gives_a_peft_adapter(walkthrough: dict[str, Any]) -> None:
    root = walkthrough["download_dir"]
    assert root.name.endswith("_sampler_weights_step-3")
    assert {"adapter_config.json", "adapter_model.safetensors"} <= set(walkthrough["files"])
    config = json.loads((root / "adapter_config.json").read_text())
    assert config["r"] == 8
    tensors = load_file(str(root / "adapter_model.safetensors"))
    assert tensors and all(t.dtype == np.float32 for t in tensors.values())
    # Three steps of training moved the adapter: some B matrix is no longer zero.
    assert any(np.any(t != 0) for name, t in tensors.items() if "lora_B" in name)
