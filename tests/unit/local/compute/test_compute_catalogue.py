"""The model catalogue: the registered sizes, and the packaged byte-level tokenizer (ids,
special tokens, UTF-8 round trips, and that the files are what scripts/build_tokenizer.py
produces)."""

from __future__ import annotations

import importlib.util
import json
import pathlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer

from tinker.local.compute.catalogue import (
    EOS_TOKEN_ID,
    LOCAL_MODELS,
    SPECIAL_TOKENS,
    TOKENIZER_DIR,
    VOCAB_SIZE,
    get_model_config,
    token_bytes,
)

SCRIPT = pathlib.Path(__file__).resolve().parents[4] / "scripts" / "build_tokenizer.py"
TEXTS = [
    "plain ascii",
    "héllo wörld",
    "emoji 👋🏽 and CJK 漢字",
    "tabs\tand\nnewlines  ",
    "",
    "\x00\x7f",
]


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.from_file(str(TOKENIZER_DIR / "tokenizer.json"))


def test_ids_are_bytes_then_specials(tokenizer: Tokenizer) -> None:
    assert tokenizer.get_vocab_size() == VOCAB_SIZE == 256 + len(SPECIAL_TOKENS)
    for text in TEXTS:
        assert tokenizer.encode(text).ids == list(text.encode())
    for offset, special in enumerate(SPECIAL_TOKENS):
        assert tokenizer.token_to_id(special) == 256 + offset
        assert token_bytes(256 + offset) == special.encode()
    assert tokenizer.id_to_token(EOS_TOKEN_ID) == "<|endoftext|>"
    assert tokenizer.encode("a<|user|>b").ids == [97, 257, 98]


def test_decode_round_trips_utf8(tokenizer: Tokenizer) -> None:
    for text in TEXTS:
        ids = tokenizer.encode(text).ids
        assert tokenizer.decode(ids, skip_special_tokens=False) == text
        assert b"".join(token_bytes(i) for i in ids) == text.encode()
    chat = "<|system|>sé<|endoftext|><|user|>hi<|endoftext|><|assistant|>"
    assert tokenizer.decode(tokenizer.encode(chat).ids, skip_special_tokens=False) == chat


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_text_encodes_to_its_utf8_bytes_and_back(text: str) -> None:
    tokenizer = Tokenizer.from_file(str(TOKENIZER_DIR / "tokenizer.json"))
    ids = tokenizer.encode(text).ids
    if not any(special in text for special in SPECIAL_TOKENS):
        assert ids == list(text.encode())
    assert tokenizer.decode(ids, skip_special_tokens=False) == text


def test_transformers_config_files() -> None:
    config = json.loads((TOKENIZER_DIR / "tokenizer_config.json").read_text())
    assert config["eos_token"] == "<|endoftext|>"
    assert config["added_tokens_decoder"][str(EOS_TOKEN_ID)]["special"] is True
    special = json.loads((TOKENIZER_DIR / "special_tokens_map.json").read_text())
    assert special["eos_token"] == "<|endoftext|>"


def test_transformers_loads_the_directory_offline() -> None:
    transformers = pytest.importorskip("transformers")
    auto = transformers.AutoTokenizer.from_pretrained(str(TOKENIZER_DIR))
    assert auto.eos_token_id == EOS_TOKEN_ID and len(auto) == VOCAB_SIZE
    assert auto.encode("hé<|user|>") == [104, 195, 169, 257]


def test_assets_match_the_build_script(tmp_path: pathlib.Path) -> None:
    spec = importlib.util.spec_from_file_location("build_tokenizer", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        assert (tmp_path / name).read_text() == (TOKENIZER_DIR / name).read_text(), name


def test_model_registry() -> None:
    assert {"tinker-local/tiny", "tinker-local/small"} <= set(LOCAL_MODELS)
    small = get_model_config("tinker-local/small")
    assert (small.d_model, small.n_layers, small.max_seq_len) == (256, 4, 1024)
    assert small.vocab_size == 260 and small.eos_token_id == 256
