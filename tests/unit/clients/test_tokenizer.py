"""get_tokenizer: model -> tokenizer id rules, local directories, the process-wide cache."""

from __future__ import annotations

import json
import pathlib
import sys
import threading
import types as pytypes
from collections.abc import Iterator

import pytest
import tokenizers
from tokenizers import models, pre_tokenizers, processors

import tinker.tokenizer as tokenizer_module
from tinker.tokenizer import Tokenizer, get_tokenizer, tokenizer_id_for_model


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    tokenizer_module.clear_tokenizer_cache()
    yield
    tokenizer_module.clear_tokenizer_cache()


def _write_tokenizer(directory: pathlib.Path) -> pathlib.Path:
    vocab = {"<s>": 0, "</s>": 1, "hello": 2, "world": 3, "[UNK]": 4}
    tok = tokenizers.Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(["<s>", "</s>"])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    directory.mkdir(parents=True, exist_ok=True)
    tok.save(str(directory / "tokenizer.json"))
    (directory / "tokenizer_config.json").write_text(
        json.dumps({"bos_token": "<s>", "eos_token": {"content": "</s>"}})
    )
    return directory


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("meta-llama/Llama-3.1-8B", "baseten/Meta-Llama-3-tokenizer"),
        ("meta-llama/Llama-3.2-1B-Instruct", "baseten/Meta-Llama-3-tokenizer"),
        ("Qwen/Qwen3-8B", "Qwen/Qwen3-8B"),
        ("org/model/variant", "org/model"),
        ("a/b/c/d", "a/b/c/d"),
        ("tinker-local/tiny", "tinker-local/tiny"),
    ],
)
def test_tokenizer_id_rules(model: str, expected: str) -> None:
    assert tokenizer_id_for_model(model) == expected


def test_directory_loads_offline_with_special_tokens(tmp_path: pathlib.Path) -> None:
    directory = _write_tokenizer(tmp_path / "tok")
    tok = get_tokenizer(str(directory))
    assert isinstance(tok, Tokenizer)
    assert tok.encode("hello world") == [0, 2, 3]
    assert tok.encode("hello world", add_special_tokens=False) == [2, 3]
    assert tok.decode([0, 2, 3]) == "<s> hello world"
    assert tok.decode([0, 2, 3], skip_special_tokens=True) == "hello world"
    assert (tok.bos_token_id, tok.eos_token_id) == (0, 1)
    assert tok.vocab_size == 5
    assert tok.name_or_path == str(directory)
    assert isinstance(tok.backend_tokenizer, tokenizers.Tokenizer)


def test_missing_tokenizer_json_is_a_clear_error(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match=r"no tokenizer\.json"):
        get_tokenizer(str(tmp_path))


@pytest.mark.parametrize("bad", ["", None, 3])
def test_bad_id(bad: object) -> None:
    with pytest.raises(ValueError, match="tokenizer_id"):
        get_tokenizer(bad)  # type: ignore[arg-type]


def test_encode_rejects_non_str(tmp_path: pathlib.Path) -> None:
    tok = get_tokenizer(str(_write_tokenizer(tmp_path / "tok")))
    with pytest.raises(TypeError, match="str"):
        tok.encode([1, 2])


def test_tinker_local_names_load_the_packaged_asset(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = _write_tokenizer(tmp_path / "asset")
    fake = pytypes.ModuleType("tinker.local.models")
    fake.TOKENIZER_DIR = directory  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tinker.local.models", fake)
    tok = get_tokenizer("tinker-local/tiny")
    assert tok.encode("world", add_special_tokens=False) == [3]
    assert tok.name_or_path == "tinker-local/tiny"


def test_packaged_local_tokenizer() -> None:
    models_module = pytest.importorskip("tinker.local.models")
    tok = get_tokenizer("tinker-local/tiny")
    assert tok.decode(tok.encode("héllo wörld")) == "héllo wörld"
    assert (
        tok.eos_token_id
        == tok.pad_token_id
        == models_module.get_model_config("tinker-local/tiny").eos_token_id
    )
    assert get_tokenizer(str(models_module.TOKENIZER_DIR)).encode("ab") == tok.encode("ab")


def test_cache_is_process_wide_and_loads_once_under_threads(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = str(_write_tokenizer(tmp_path / "tok"))
    calls: list[str] = []
    original = tokenizer_module._load

    def counting_load(tokenizer_id: str, backend: tokenizer_module.Backend) -> object:
        calls.append(tokenizer_id)
        return original(tokenizer_id, backend)

    monkeypatch.setattr(tokenizer_module, "_load", counting_load)
    results: list[object] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        results.append(get_tokenizer(directory))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == [directory]
    assert all(result is results[0] for result in results)


def test_transformers_backend_needs_transformers(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ImportError, match="transformers"):
        get_tokenizer(str(_write_tokenizer(tmp_path / "tok")), backend="transformers")
    with pytest.raises(ValueError, match="backend"):
        get_tokenizer("x", backend="sentencepiece")  # type: ignore[arg-type]
