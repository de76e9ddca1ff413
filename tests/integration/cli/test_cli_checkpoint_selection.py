"""`tinker checkpoint delete` by filters and `tinker checkpoint push-hf` against a real
embedded server (the tinker.testing fixtures), through the real SDK; the Hub is a fake module."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from cli_outcome import Outcome, run_cli
from support.fake_hub import install_fake_hub

from tinker.local import LocalServer
from tinker.service_client import ServiceClient
from tinker.testing.plugin import API_KEY

BASE_MODEL = "tinker-local/tiny"


def tinker_cli(server: LocalServer, *argv: str, answer: str = "y") -> Outcome:
    return run_cli(server.url, API_KEY, argv, answer=answer)


def _listed(server: LocalServer) -> dict[str, Any]:
    outcome = tinker_cli(server, "-f", "json", "checkpoint", "list", "--limit", "0")
    assert outcome.code == 0, outcome.err
    return {c["tinker_path"]: c for c in json.loads(outcome.out)["checkpoints"]}


def test_delete_by_filters(tinker_server: LocalServer, tinker_service_client: Any) -> None:
    service: ServiceClient = tinker_service_client
    first = service.create_lora_training_client(base_model=BASE_MODEL, rank=4)
    a = first.save_state("a").result().path
    s1 = first.save_weights_for_sampler("s1").result().path
    second = service.create_lora_training_client(base_model=BASE_MODEL, rank=4)
    c = second.save_state("c").result().path
    listed = _listed(tinker_server)
    assert set(listed) == {a, s1, c}

    declined = tinker_cli(tinker_server, "checkpoint", "delete", "--type", "weights", answer="n")
    assert declined.code == 0, declined.err
    lines = declined.out.splitlines()
    assert lines[0].startswith("2 checkpoints to delete (")
    assert [line.split()[:2] for line in lines[3:5]] == [[c, "training"], [a, "training"]]
    assert lines[-1] == "Deletion cancelled."
    assert set(_listed(tinker_server)) == {a, s1, c}

    by_run = tinker_cli(
        tinker_server, "checkpoint", "delete", "--run-id", first.model_id, "--type", "weights", "-y"
    )
    assert (by_run.code, by_run.out, by_run.err) == (0, f"Deleted {a}\n", "")
    assert set(_listed(tinker_server)) == {s1, c}

    created = listed[c]["time"]  # at or after the newest checkpoint's own time: just that one
    by_time = tinker_cli(tinker_server, "checkpoint", "delete", "--after", created, "-y")
    assert (by_time.code, by_time.out) == (0, f"Deleted {c}\n")
    assert set(_listed(tinker_server)) == {s1}

    none = tinker_cli(tinker_server, "checkpoint", "delete", "--run-id", second.model_id, "-y")
    assert (none.code, none.out) == (
        0,
        f"No checkpoints match --run-id {second.model_id}: nothing deleted.\n",
    )


@pytest.mark.parametrize("kind", ["weights", "sampler_weights"])
def test_push_hf_uploads_the_downloaded_adapter_with_a_card(
    tinker_server: LocalServer,
    tinker_service_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    hub = install_fake_hub(monkeypatch)
    trainer = tinker_service_client.create_lora_training_client(base_model=BASE_MODEL, rank=4)
    save = trainer.save_state if kind == "weights" else trainer.save_weights_for_sampler
    path = save("first").result().path
    result = tinker_cli(tinker_server, "-f", "json", "checkpoint", "push-hf", path)
    assert result.code == 0, result.err
    run_name = re.sub(r"[^A-Za-z0-9._-]+", "-", trainer.model_id)
    repo_id = f"alice/tiny-{run_name}-first"
    assert json.loads(result.out) == {
        "checkpoint_path": path,
        "repo_id": repo_id,
        "url": f"https://huggingface.co/{repo_id}",
        "pr_url": None,
        "model_card": True,
    }
    files = hub.uploaded[0]
    assert {"adapter_model.safetensors", "adapter_config.json", "README.md"} <= set(files)
    assert json.loads(files["adapter_config.json"])["r"] == 4
    card = files["README.md"].decode().splitlines()
    for line in (
        f"base_model: {BASE_MODEL}",
        f"| Tinker checkpoint | `{path}` |",
        f"| Training run | `{trainer.model_id}` |",
        "| LoRA rank | 4 |",
        "| LoRA alpha | 32 |",
        f'model = PeftModel.from_pretrained(base, "{repo_id}")',
    ):
        assert line in card
    assert not hub.folders[0].parent.exists()
