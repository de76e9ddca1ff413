"""`tinker checkpoint push-hf`: the checkpoint downloaded into a temporary directory, a model
card added, and exactly the asked-for repository, commit and patterns sent to a fake
`huggingface_hub` (no network)."""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import sys

import pytest
from cli_fakes import Cli, serve_external_files
from support.fake_hub import FakeHub, install_fake_hub

from tinker.cli.model_card import CardFacts, model_card
from tinker.cli.push_hf import repo_name
from tinker.types import TrainingRun

RUN = "sess-1:train:0"
PATH = f"tinker://{RUN}/external_weights/final"
ADAPTER_CONFIG = {
    "base_model_name_or_path": "Qwen/Qwen3-8B",
    "r": 32,
    "lora_alpha": 64.0,
    "target_modules": ["q_proj", "v_proj"],
    "peft_type": "LORA",
}
FILES = {
    "adapter_config.json": json.dumps(ADAPTER_CONFIG).encode(),
    "adapter_model.safetensors": bytes(range(256)) * 8,
}
DERIVED = "alice/Qwen3-8B-sess-1-train-0-final"


def _run(base_model: str = "Qwen/Qwen3-8B") -> TrainingRun:
    return TrainingRun(
        training_run_id=RUN,
        base_model=base_model,
        model_owner="me",
        is_lora=True,
        lora_rank=32,
        last_request_time=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    )


@pytest.fixture
def hub(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    """A run with an exported checkpoint (FILES) and a fake Hub logged in as alice."""
    cli.rest.runs = [_run()]
    serve_external_files(cli.rest, monkeypatch, FILES)
    return install_fake_hub(monkeypatch)


def test_defaults_derive_the_repo_keep_it_private_and_add_a_model_card(
    cli: Cli, hub: FakeHub
) -> None:
    result = cli("checkpoint", "push-hf", PATH)
    assert (result.code, result.err) == (0, "")
    assert result.out == f"Pushed {PATH} to https://huggingface.co/{DERIVED}\n"
    names = [name for name, _ in hub.calls]
    assert names == ["whoami", "create_repo", "upload_folder"]
    assert hub.calls[1][1] == {
        "repo_id": DERIVED,
        "private": True,
        "repo_type": "model",
        "exist_ok": True,
    }
    upload = dict(hub.calls[2][1])
    folder = pathlib.Path(upload.pop("folder_path"))
    assert folder.parent.name.startswith("tinker-push-hf-")  # a temporary directory
    assert upload == {
        "repo_id": DERIVED,
        "repo_type": "model",
        "revision": None,
        "commit_message": f"Upload {PATH} from Tinker",
        "create_pr": False,
        "allow_patterns": None,
        "ignore_patterns": None,
    }
    files = hub.uploaded[0]
    assert sorted(files) == ["README.md", "adapter_config.json", "adapter_model.safetensors"]
    assert {name: files[name] for name in FILES} == FILES
    card = files["README.md"].decode().splitlines()
    assert card[:7] == [
        "---",
        "base_model: Qwen/Qwen3-8B",
        "library_name: peft",
        "tags:",
        "- tinker",
        "- lora",
        "---",
    ]
    for line in (
        f"# {DERIVED}",
        "| Base model | `Qwen/Qwen3-8B` |",
        f"| Tinker checkpoint | `{PATH}` |",
        f"| Training run | `{RUN}` |",
        "| LoRA rank | 32 |",
        "| LoRA alpha | 64 |",
        "| Target modules | `q_proj`, `v_proj` |",
        "from peft import PeftModel",
        'base = AutoModelForCausalLM.from_pretrained("Qwen/Qwen3-8B")',
        f'model = PeftModel.from_pretrained(base, "{DERIVED}")',
    ):
        assert line in card
    # the temporary download is gone once the upload is done
    assert not hub.folders[0].exists() and not hub.folders[0].parent.exists()
    assert ("get_external_weights_urls", PATH) in cli.rest.calls


def test_every_option_reaches_the_hub(cli: Cli, hub: FakeHub) -> None:
    result = cli(
        "-f", "json", "checkpoint", "push-hf", PATH, "-r", "org/adapter", "--public",
        "--revision", "dev", "--commit-message", "step 500", "--create-pr",
        "--allow-pattern", "*.json", "--allow-pattern", "*.safetensors",
        "--ignore-pattern", "*.bin", "--ignore-pattern", "optimizer/*", "--no-model-card",
    )  # fmt: skip
    assert (result.code, result.err) == (0, "")
    assert json.loads(result.out) == {
        "checkpoint_path": PATH,
        "repo_id": "org/adapter",
        "url": "https://huggingface.co/org/adapter",
        "pr_url": "https://huggingface.co/org/adapter/discussions/1",
        "model_card": False,
    }
    assert [name for name, _ in hub.calls] == ["create_repo", "create_branch", "upload_folder"]
    assert hub.calls[0][1] == {
        "repo_id": "org/adapter",
        "private": False,
        "repo_type": "model",
        "exist_ok": True,
    }
    assert hub.calls[1][1] == {
        "repo_id": "org/adapter",
        "branch": "dev",
        "repo_type": "model",
        "exist_ok": True,
    }
    upload = dict(hub.calls[2][1])
    upload.pop("folder_path")
    assert upload == {
        "repo_id": "org/adapter",
        "repo_type": "model",
        "revision": "dev",
        "commit_message": "step 500",
        "create_pr": True,
        "allow_patterns": ["*.json", "*.safetensors"],
        "ignore_patterns": ["*.bin", "optimizer/*"],
    }
    assert hub.uploaded == [FILES]  # no model card


def test_a_pull_request_and_a_branch_are_named_in_the_text_output(cli: Cli, hub: FakeHub) -> None:
    pr = cli("checkpoint", "push-hf", PATH, "--repo", "org/adapter", "--create-pr")
    assert pr.out == (
        f"Opened a pull request on org/adapter with {PATH}: "
        "https://huggingface.co/org/adapter/discussions/1\n"
    )
    branch = cli("checkpoint", "push-hf", PATH, "--repo", "adapter", "--revision", "dev")
    assert branch.out == f"Pushed {PATH} to https://huggingface.co/alice/adapter/tree/dev\n"
    # a bare name is completed by the Hub; the card and the upload use the full id
    assert hub.calls[-1][1]["repo_id"] == "alice/adapter"
    assert 'model = PeftModel.from_pretrained(base, "alice/adapter")' in (
        hub.uploaded[-1]["README.md"].decode().splitlines()
    )


def test_a_checkpoint_with_its_own_readme_keeps_it(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = {**FILES, "README.md": b"# mine\n"}
    serve_external_files(cli.rest, monkeypatch, own)
    hub = install_fake_hub(monkeypatch)
    result = cli("-f", "json", "checkpoint", "push-hf", PATH, "-r", "org/adapter")
    assert result.code == 0, result.err
    assert json.loads(result.out)["model_card"] is False
    assert hub.uploaded == [own]


def test_without_run_details_the_adapter_config_names_the_base_model(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_external_files(cli.rest, monkeypatch, FILES)  # no training run listed: 404
    hub = install_fake_hub(monkeypatch, user="bob")
    result = cli("checkpoint", "push-hf", PATH)
    assert result.code == 0, result.err
    assert hub.calls[1][1]["repo_id"] == "bob/sess-1-train-0-final"
    assert "base_model: Qwen/Qwen3-8B" in hub.uploaded[0]["README.md"].decode().splitlines()


def test_without_huggingface_hub_the_error_says_what_to_install(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails
    result = cli("checkpoint", "push-hf", PATH)
    assert result.code == 1
    assert result.err == (
        "Error: push-hf needs the huggingface_hub package: pip install huggingface_hub "
        "(and log in to the Hub with `hf auth login`)\n"
    )
    assert cli.rest.calls == []  # nothing downloaded


def test_without_a_hub_login_a_derived_name_is_refused_before_downloading(
    cli: Cli, hub: FakeHub
) -> None:
    hub.errors["whoami"] = OSError("Invalid user token.\nmore detail")
    result = cli("checkpoint", "push-hf", PATH)
    assert result.code == 1
    assert result.err == (
        "Error: cannot tell who you are on the Hugging Face Hub (log in with `hf auth login`, "
        "or name the repository with --repo): OSError: Invalid user token.\n"
    )
    assert ("get_external_weights_urls", PATH) not in cli.rest.calls


def test_a_refused_upload_is_one_error_line_and_leaves_no_files(cli: Cli, hub: FakeHub) -> None:
    hub.errors["upload_folder"] = RuntimeError("403 Forbidden: no write access to org")
    result = cli("checkpoint", "push-hf", PATH, "-r", "org/adapter")
    assert result.code == 1
    assert result.err == (
        "Error: the Hugging Face Hub call for org/adapter failed: "
        "RuntimeError: 403 Forbidden: no write access to org\n"
    )
    assert not hub.folders[0].parent.exists()


def test_a_malformed_path_is_refused_before_anything(cli: Cli, hub: FakeHub) -> None:
    result = cli("checkpoint", "push-hf", "tinker://run/other/x")
    assert result.code == 1
    assert result.err.startswith("Error: Invalid tinker path 'tinker://run/other/x'")
    assert (hub.calls, cli.rest.calls) == ([], [])


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("Qwen/Qwen3-8B", "run-1", "step-5"), "Qwen3-8B-run-1-step-5"),
        (("meta-llama/Llama-3.1-8B", "a1b2:train:0", "final"), "Llama-3.1-8B-a1b2-train-0-final"),
        ((None, "run::1", "x..y"), "run-1-x-y"),
        (("org/m", "-run-", ".end."), "m-run-end"),
        (("org/m", "r" * 120, "final"), "m-" + "r" * 94),
    ],
)
def test_derived_repo_names_are_valid_hub_names(
    parts: tuple[str | None, str, str], expected: str
) -> None:
    assert repo_name(*parts) == expected


def test_a_card_without_known_details_says_so() -> None:
    text = model_card(CardFacts(repo_id="u/r", tinker_path=PATH, training_run_id=RUN))
    lines = text.splitlines()
    assert lines[:6] == ["---", "library_name: peft", "tags:", "- tinker", "- lora", "---"]
    assert "| Base model | unknown |" in lines
    assert not any(line.startswith("| LoRA") for line in lines)
    assert 'base = AutoModelForCausalLM.from_pretrained("<base model>")' in lines


@pytest.mark.parametrize(
    ("target_modules", "lora_alpha", "rows"),
    [
        ("all-linear", 16, ["| LoRA alpha | 16 |", "| Target modules | `all-linear` |"]),
        (r".*\.(q|v)_proj", 8.5,
         ["| LoRA alpha | 8.5 |", r"| Target modules | `.*\.(q\|v)_proj` |"]),
        (["q_proj"], "32", ["| LoRA alpha | 32 |", "| Target modules | `q_proj` |"]),
        (None, "sqrt(r)", ["| LoRA alpha | sqrt(r) |"]),
        ([], True, ["| LoRA alpha | True |"]),
        ([], "a|b\nc", [r"| LoRA alpha | a\|b c |"]),  # one cell, one row
    ],
)  # fmt: skip
def test_the_card_shows_peft_configs_as_peft_writes_them(
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
    target_modules: object,
    lora_alpha: object,
    rows: list[str],
) -> None:
    config = {**ADAPTER_CONFIG, "target_modules": target_modules, "lora_alpha": lora_alpha}
    serve_external_files(
        cli.rest, monkeypatch, {**FILES, "adapter_config.json": json.dumps(config).encode()}
    )
    hub = install_fake_hub(monkeypatch)
    result = cli("checkpoint", "push-hf", PATH, "-r", "org/adapter")
    assert result.code == 0, result.err
    card = hub.uploaded[0]["README.md"].decode().splitlines()
    assert [line for line in card if line.startswith(("| LoRA alpha", "| Target"))] == rows


def test_age_encrypted_files_are_refused_and_nothing_is_uploaded(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    encrypted = {
        "adapter_config.json": FILES["adapter_config.json"],
        "adapter_model.safetensors.age": b"age-encryption.org/v1\n...",
        "extra/tokenizer.json.age": b"age-encryption.org/v1\n...",
    }
    serve_external_files(cli.rest, monkeypatch, encrypted)
    hub = install_fake_hub(monkeypatch)
    result = cli("checkpoint", "push-hf", PATH, "-r", "org/adapter")
    assert (result.code, result.out) == (1, "")
    assert result.err == (
        f"Error: {PATH} holds age-encrypted files (adapter_model.safetensors.age, "
        "extra/tokenizer.json.age); nothing was uploaded. Download it with `tinker checkpoint "
        "download`, decrypt each file with `age --decrypt -i KEY_FILE -o FILE FILE.age` (and "
        "remove the .age files), then upload the folder with `hf upload REPO_ID FOLDER`\n"
    )
    assert hub.calls == [] and hub.uploaded == []  # no repository made either
    downloads = [r for r in cli.rest.sdk.http.requests if r.path.startswith("/signed/")]
    assert downloads == []  # refused from the listing, before any file was fetched


@pytest.mark.parametrize(
    ("base", "line"),
    [("Qwen/Qwen3-8B", "base_model: Qwen/Qwen3-8B"),
     ("odd: name # x", 'base_model: "odd: name # x"')],
)  # fmt: skip
def test_the_base_model_is_one_yaml_value(base: str, line: str) -> None:
    from tinker.cli.model_card import CardFacts, model_card

    card = model_card(CardFacts("org/a", "tinker://r/weights/x", "r", base_model=base))
    assert card.splitlines()[1] == line
