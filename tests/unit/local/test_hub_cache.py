"""The local models in the Hugging Face cache: layout as hub readers resolve it, idempotent
writes, repairs, the off switch, and transformers loading a tokenizer offline by model name."""

from __future__ import annotations

import json
import logging
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from tinker.local import hub_cache
from tinker.local.compute.catalogue import LOCAL_MODELS
from tinker.local.compute.export import base_model_files


@pytest.fixture
def cache(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """An empty Hugging Face hub cache in a temporary directory, named by $HF_HUB_CACHE."""
    directory = tmp_path / "hf" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(directory))
    monkeypatch.delenv(hub_cache.DISABLE_ENV, raising=False)
    return directory


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"HF_HUB_CACHE": "/a/hub", "HUGGINGFACE_HUB_CACHE": "/b", "HF_HOME": "/c"}, "/a/hub"),
        ({"HUGGINGFACE_HUB_CACHE": "/b", "HF_HOME": "/c"}, "/b"),
        ({"HF_HOME": "/c", "XDG_CACHE_HOME": "/x"}, "/c/hub"),
        ({"XDG_CACHE_HOME": "/x"}, "/x/huggingface/hub"),
        ({}, os.path.expanduser("~/.cache/huggingface/hub")),
    ],
)
def test_cache_directory_follows_the_hub_precedence(environ: dict[str, str], expected: str) -> None:
    assert hub_cache.hub_cache_dir(environ) == pathlib.Path(expected)


def test_publish_writes_every_model_as_a_cached_repo(cache: pathlib.Path) -> None:
    models = hub_cache.publish()

    assert sorted(model.model_name for model in models) == sorted(LOCAL_MODELS)
    for model in models:
        repo = cache / ("models--" + model.model_name.replace("/", "--"))
        assert (repo / "refs" / "main").read_text(encoding="ascii") == model.commit
        snapshot = repo / "snapshots" / model.commit
        expected = base_model_files(model.model_name)
        assert {path.name for path in snapshot.iterdir()} == set(expected)
        for name, data in expected.items():
            assert (snapshot / name).read_bytes() == data
        config = json.loads((snapshot / "config.json").read_bytes())
        assert config == json.loads(expected["config.json"])
        assert not [p for p in (repo / "refs").iterdir() if p.name != "main"]  # no staged refs


def test_hub_resolves_the_model_name_offline(cache: pathlib.Path) -> None:
    huggingface_hub = pytest.importorskip("huggingface_hub")
    hub_cache.publish()
    for model in hub_cache.cached_models():
        snapshot = huggingface_hub.snapshot_download(
            model.model_name, cache_dir=cache, local_files_only=True
        )
        assert pathlib.Path(snapshot) == model.snapshot_dir
        found = huggingface_hub.try_to_load_from_cache(
            model.model_name, "tokenizer.json", cache_dir=cache
        )
        assert found == str(model.snapshot_dir / "tokenizer.json")


def test_publish_is_idempotent(cache: pathlib.Path) -> None:
    first = hub_cache.publish()
    stamps = {path: path.stat().st_mtime_ns for path in cache.rglob("*") if path.is_file()}
    second = hub_cache.publish()

    assert first == second
    assert all(model.current for model in second)
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()} == stamps


def test_a_damaged_snapshot_and_a_stale_ref_are_repaired(cache: pathlib.Path) -> None:
    tiny, small = (m for m in hub_cache.publish() if m.model_name.endswith(("/tiny", "/small")))
    (tiny.snapshot_dir / "tokenizer.json").unlink()
    (small.repo_dir / "refs" / "main").write_text("0" * 40, encoding="ascii")
    assert not tiny.current and not small.current

    hub_cache.publish()

    assert tiny.current and small.current
    assert (tiny.snapshot_dir / "tokenizer.json").read_bytes() == (
        base_model_files(tiny.model_name)["tokenizer.json"]
    )


def test_publish_quietly_can_be_switched_off(
    cache: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(hub_cache.DISABLE_ENV, "off")
    hub_cache.publish_quietly()
    assert not cache.exists()


def test_an_unwritable_cache_is_a_warning_naming_it(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("HF_HUB_CACHE", str(blocker / "hub"))
    monkeypatch.delenv(hub_cache.DISABLE_ENV, raising=False)
    with caplog.at_level(logging.WARNING, logger=hub_cache.__name__):
        hub_cache.publish_quietly()
    assert len(caplog.records) == 1
    assert str(blocker / "hub") in caplog.records[0].getMessage()


# Runs in a fresh interpreter: huggingface_hub reads HF_HUB_OFFLINE and the cache location once,
# when it is imported. The server is started the way user code starts it.
_LOAD_AFTER_SERVE = textwrap.dedent(
    """
    import os, sys
    from tinker.local import serve
    from tinker.tokenizer import get_tokenizer

    server = serve(port=0, data_dir=sys.argv[1])
    try:
        from transformers import AutoTokenizer

        text = "<|user|>What is 12 + 7?<|endoftext|><|assistant|>19"
        for name in ("tinker-local/tiny", "tinker-local/small-random"):
            loaded = AutoTokenizer.from_pretrained(name)
            ours = get_tokenizer(name)
            assert loaded.encode(text, add_special_tokens=False) == ours.encode(text), name
            assert loaded.decode(ours.encode(text)) == text, name
        print("ok")
    finally:
        server.close()
    """
)


def test_transformers_loads_the_tokenizer_offline_from_an_empty_cache(
    tmp_path: pathlib.Path,
) -> None:
    pytest.importorskip("transformers")
    home = tmp_path / "hf-home"  # empty: nothing there before the server starts
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", hub_cache.DISABLE_ENV)
    }
    environ.update(HF_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")
    result = subprocess.run(
        [sys.executable, "-c", _LOAD_AFTER_SERVE, str(tmp_path / "data")],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    assert (home / "hub" / "models--tinker-local--tiny" / "refs" / "main").is_file()
