"""`tinker checkpoint download` of an external-weights checkpoint: every listed file fetched
from its signed URL into DIR/<path without ':' or '/'>, nested names kept, the target replaced
only when complete; unsafe names, failed files and existing targets leave nothing behind."""

from __future__ import annotations

import json
import os
import pathlib
import types
from concurrent.futures import Future
from typing import Any

import pytest
from cli_fakes import Cli, FakeClients, FakeRest, SdkSession, checkpoint, serve_external_files
from support.fake_hub import install_fake_hub
from support.fake_service import Reply

from tinker import errors
from tinker.training_client import TrainingClient

PATH = "tinker://sess-1:train:0/external_weights/download"
FOLDER = "sess-1_train_0_external_weights_download"
FILES = {
    "config.json": b'{"a": 1}',
    "model.safetensors.age": bytes(range(256)) * 40,
    "tokenizer/tokenizer.json": b"{}",
}


@pytest.fixture
def listed(rest: FakeRest, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """get_external_weights_urls names FILES with signed URLs that the fake service serves."""
    return serve_external_files(rest, monkeypatch, FILES)


def _files(root: pathlib.Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_every_file_lands_under_a_folder_without_colons(
    cli: Cli, listed: dict[str, str], tmp_path: pathlib.Path
) -> None:
    result = cli("-f", "json", "checkpoint", "download", PATH, "-o", str(tmp_path))
    assert result.code == 0, result.err
    assert json.loads(result.out) == {
        "checkpoint_path": PATH,
        "destination": str(tmp_path / FOLDER),
        "file_size_bytes": sum(len(data) for data in FILES.values()),
    }
    assert [p.name for p in tmp_path.iterdir()] == [FOLDER]  # no staging directory left
    assert _files(tmp_path / FOLDER) == FILES

    again = cli("checkpoint", "download", PATH, "-o", str(tmp_path))
    assert again.code == 1
    assert again.err == f"Error: {tmp_path / FOLDER} already exists (use --force to replace it)\n"
    (tmp_path / FOLDER / "stale.txt").write_text("old")
    forced = cli("checkpoint", "download", PATH, "-o", str(tmp_path), "--force")
    assert forced.code == 0, forced.err
    assert forced.out.splitlines()[0].split() == ["Checkpoint", "Path", "Size", "Downloaded", "to"]
    assert _files(tmp_path / FOLDER) == FILES


def test_the_folder_and_files_get_the_modes_the_umask_gives(
    cli: Cli, listed: dict[str, str], tmp_path: pathlib.Path
) -> None:
    previous = os.umask(0o027)
    try:
        result = cli("checkpoint", "download", PATH, "-o", str(tmp_path))
    finally:
        os.umask(previous)
    assert result.code == 0, result.err
    folder = tmp_path / FOLDER
    modes = {p.relative_to(folder).as_posix(): p.stat().st_mode & 0o777 for p in folder.rglob("*")}
    assert folder.stat().st_mode & 0o777 == 0o750
    assert modes == {"config.json": 0o640, "model.safetensors.age": 0o640,
                     "tokenizer": 0o750, "tokenizer/tokenizer.json": 0o640}  # fmt: skip


@pytest.mark.parametrize("name", ["../escape", "/etc/passwd", "a//b", "a/./b", "a\\b", ""])
def test_an_unsafe_file_name_writes_nothing(
    cli: Cli, listed: dict[str, str], tmp_path: pathlib.Path, name: str
) -> None:
    listed[name] = next(iter(listed.values()))
    result = cli("checkpoint", "download", PATH, "-o", str(tmp_path))
    assert result.code == 1
    assert result.err == (
        f"Error: the service listed an unsafe file name {name!r}; nothing was written\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_failed_file_is_named_without_its_signed_url(
    cli: Cli, listed: dict[str, str], sdk: SdkSession, tmp_path: pathlib.Path
) -> None:
    sdk.http.route("GET", r"/forbidden", lambda _r: Reply(403, {"error": "expired"}))
    listed["tokenizer/tokenizer.json"] = f"{sdk.http.url}/forbidden?sig=SECRET"
    result = cli("checkpoint", "download", PATH, "-o", str(tmp_path))
    assert result.code == 1
    assert result.err == "Error: downloading tokenizer/tokenizer.json failed: HTTP 403\n"
    assert "SECRET" not in result.err
    assert list(tmp_path.iterdir()) == []


def test_without_the_038_method_the_message_says_so(
    rest: FakeRest, tmp_path: pathlib.Path, cli: Cli
) -> None:
    if hasattr(rest, "get_external_weights_urls"):
        pytest.skip("the SDK's RestClient has get_external_weights_urls()")
    result = cli("checkpoint", "download", PATH, "-o", str(tmp_path))
    assert result.code == 1
    assert "get_external_weights_urls()" in result.err
    assert list(tmp_path.iterdir()) == []


TRAINING = "tinker://old-run/weights/step-5"
EXPORT = "tinker://tmp:train:0/external_weights/download"


class _Trainer:
    def __init__(self, exports: list[tuple[str, int | None]]) -> None:
        self.exports = exports

    def save_weights_external(self, name: str, ttl_seconds: int | None = None) -> Future[Any]:
        self.exports.append((name, ttl_seconds))
        future: Future[Any] = Future()
        future.set_result(types.SimpleNamespace(path=EXPORT))
        return future


class _Service:
    """Loads a training checkpoint into a new run whose export is EXPORT."""

    def __init__(self) -> None:
        self.loaded: list[str] = []
        self.exports: list[tuple[str, int | None]] = []

    def create_training_client_from_state(self, path: str) -> _Trainer:
        self.loaded.append(path)
        return _Trainer(self.exports)


@pytest.fixture
def archiveless(
    rest: FakeRest, listed: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> tuple[Cli, _Service]:
    """A service without archives (404) and an SDK that can export a training checkpoint."""
    rest.errors["get_checkpoint_archive_url_from_tinker_path"] = errors.NotFoundError(
        "Error code: 404 - no archives here", status_code=404
    )
    monkeypatch.setattr(TrainingClient, "save_weights_external", lambda *a: None, raising=False)
    service = _Service()
    return Cli(FakeClients(rest, service)), service


def test_a_training_checkpoint_without_archives_goes_through_a_temporary_export(
    archiveless: tuple[Cli, _Service], tmp_path: pathlib.Path
) -> None:
    cli, service = archiveless
    result = cli("-f", "json", "checkpoint", "download", TRAINING, "-o", str(tmp_path))
    assert result.code == 0, result.err
    folder = tmp_path / "old-run_weights_step-5"
    assert json.loads(result.out)["destination"] == str(folder)
    assert _files(folder) == FILES
    assert service.loaded == [TRAINING]
    assert service.exports == [("download", 3600)]
    assert cli.rest.calls[-1] == ("delete_checkpoint_from_tinker_path", EXPORT)  # cleaned up


def test_an_existing_target_is_refused_before_any_export(
    archiveless: tuple[Cli, _Service], tmp_path: pathlib.Path
) -> None:
    cli, service = archiveless
    (tmp_path / "old-run_weights_step-5").mkdir()
    result = cli("checkpoint", "download", TRAINING, "-o", str(tmp_path))
    assert result.code == 1
    assert "already exists" in result.err
    assert (service.loaded, service.exports) == ([], [])


def test_without_export_support_a_missing_archive_is_reported(
    rest: FakeRest, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(TrainingClient, "save_weights_external", raising=False)
    rest.errors["get_checkpoint_archive_url_from_tinker_path"] = errors.NotFoundError(
        "Error code: 404 - gone", status_code=404
    )
    service = _Service()
    result = Cli(FakeClients(rest, service))(
        "checkpoint", "download", TRAINING, "-o", str(tmp_path)
    )
    assert (result.code, result.err) == (1, "Error: Resource not found\n  Error code: 404 - gone\n")
    assert service.loaded == []


SAMPLER = "tinker://old-run/sampler_weights/step-5"
SAMPLER_REFUSAL = (
    f"Error: {SAMPLER} cannot be downloaded: this service does not download sampler "
    "checkpoints (sampler_weights/). Download the training checkpoint of the same step instead "
    "(tinker://old-run/weights/NAME, or an external_weights/ path)\n"
)


def test_a_sampler_checkpoint_without_archives_is_refused_saying_what_to_download(
    archiveless: tuple[Cli, _Service], tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli, service = archiveless
    cli.rest.checkpoints = {"old-run": [checkpoint("old-run", "sampler", "step-5")]}
    result = cli("checkpoint", "download", SAMPLER, "-o", str(tmp_path))
    assert (result.code, result.out, result.err) == (1, "", SAMPLER_REFUSAL)
    assert (service.loaded, list(tmp_path.iterdir())) == ([], [])
    hub = install_fake_hub(monkeypatch)
    pushed = cli("checkpoint", "push-hf", SAMPLER, "-r", "org/adapter")
    assert (pushed.code, pushed.err) == (1, SAMPLER_REFUSAL)
    assert hub.calls == []


def test_a_sampler_checkpoint_the_service_does_not_list_is_not_found(
    archiveless: tuple[Cli, _Service], tmp_path: pathlib.Path
) -> None:
    cli, _ = archiveless
    cli.rest.checkpoints = {"old-run": [checkpoint("old-run", "sampler", "other")]}
    result = cli("checkpoint", "download", SAMPLER, "-o", str(tmp_path))
    assert (result.code, result.err) == (
        1,
        "Error: Resource not found\n  Error code: 404 - no archives here\n",
    )


def test_a_folder_made_while_the_files_arrived_is_kept_without_force(
    rest: FakeRest, listed: dict[str, str], tmp_path: pathlib.Path
) -> None:
    from tinker.cli.external_download import download_external_weights

    target = tmp_path / FOLDER

    def user_writes_there(_received: int) -> None:
        target.mkdir(exist_ok=True)
        (target / "notes.txt").write_text("mine")

    with pytest.raises(FileExistsError, match="already exists"):
        download_external_weights(rest, PATH, target, force=False, progress=user_writes_there)
    assert [p.name for p in tmp_path.iterdir()] == [FOLDER]  # no staging left
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
