"""Tokenizers for Tinker models, loaded with the `tokenizers` library and cached per process.

`get_tokenizer(tokenizer_id)` accepts a Hugging Face repo id, a local directory holding a
`tokenizer.json`, or a `tinker-local/...` model name (the tokenizer packaged with the embedded
server, loaded offline; loading one also puts the local models in the Hugging Face cache, see
`tinker.local.hub_cache`). `tokenizer_id_for_model` maps a model name to its tokenizer repo.
"""

from __future__ import annotations

import importlib
import json
import os
import pathlib
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import tokenizers

__all__ = [
    "LOCAL_MODEL_PREFIX",
    "Tokenizer",
    "clear_tokenizer_cache",
    "get_tokenizer",
    "tokenizer_id_for_model",
]

LOCAL_MODEL_PREFIX = "tinker-local/"
_LLAMA3_PREFIX = "meta-llama/Llama-3"
_LLAMA3_TOKENIZER = "baseten/Meta-Llama-3-tokenizer"
# Repos whose tokenizer is pinned to a revision (and needs remote code under transformers).
_PINNED_REVISIONS: Mapping[str, str] = {
    "moonshotai/Kimi-K2-Thinking": "612681931a8c906ddb349f8ad0f582cb552189cd",
}

Backend = Literal["tokenizers", "transformers"]


def tokenizer_id_for_model(model_name: str) -> str:
    """The tokenizer repo of a model: Llama-3 -> an ungated copy; org/model/variant -> org/model."""
    if model_name.startswith(_LLAMA3_PREFIX):
        return _LLAMA3_TOKENIZER
    parts = model_name.split("/")
    if len(parts) == 3:
        return "/".join(parts[:2])
    return model_name


class Tokenizer:
    """A `tokenizers.Tokenizer` with the handful of methods training code needs.

    `backend_tokenizer` is the raw `tokenizers.Tokenizer` (the name transformers uses too).
    """

    def __init__(
        self,
        backend_tokenizer: tokenizers.Tokenizer,
        name_or_path: str,
        *,
        bos_token: str | None = None,
        eos_token: str | None = None,
        pad_token: str | None = None,
    ) -> None:
        self.backend_tokenizer = backend_tokenizer
        self.name_or_path = name_or_path
        self.bos_token = bos_token
        self.eos_token = eos_token
        self.pad_token = pad_token
        self.bos_token_id = self._token_id(bos_token)
        self.eos_token_id = self._token_id(eos_token)
        self.pad_token_id = self._token_id(pad_token)

    def _token_id(self, token: str | None) -> int | None:
        return None if token is None else self.backend_tokenizer.token_to_id(token)

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of `text` (with the tokenizer's special tokens unless told otherwise)."""
        if not isinstance(text, str):
            raise TypeError(f"encode() takes a str, got {type(text).__name__}")
        ids: list[int] = self.backend_tokenizer.encode(
            text, add_special_tokens=add_special_tokens
        ).ids
        return ids

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        """The text of the token ids `ids`."""
        text: str = self.backend_tokenizer.decode(
            [int(i) for i in ids], skip_special_tokens=skip_special_tokens
        )
        return text

    @property
    def vocab_size(self) -> int:
        """Size of the base vocabulary (without added tokens), as transformers counts it."""
        size: int = self.backend_tokenizer.get_vocab_size(with_added_tokens=False)
        return size

    def __len__(self) -> int:
        size: int = self.backend_tokenizer.get_vocab_size(with_added_tokens=True)
        return size

    def __repr__(self) -> str:
        return f"Tokenizer(name_or_path={self.name_or_path!r}, vocab_size={self.vocab_size})"


_cache: dict[tuple[str, str], Any] = {}
_key_locks: dict[tuple[str, str], threading.Lock] = {}
_cache_lock = threading.Lock()


def get_tokenizer(tokenizer_id: str, *, backend: Backend = "tokenizers") -> Any:
    """Load (once per process) the tokenizer `tokenizer_id`.

    With backend="tokenizers" (default) returns a `Tokenizer`; with backend="transformers"
    returns a transformers fast tokenizer (transformers must be installed).
    """
    if not isinstance(tokenizer_id, str) or not tokenizer_id:
        raise ValueError(f"tokenizer_id must be a non-empty str, got {tokenizer_id!r}")
    if backend not in ("tokenizers", "transformers"):
        raise ValueError(f"backend must be 'tokenizers' or 'transformers', got {backend!r}")
    key = (tokenizer_id, backend)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
        key_lock = _key_locks.setdefault(key, threading.Lock())
    with key_lock:  # one load per key; other keys load concurrently
        with _cache_lock:
            if key in _cache:
                return _cache[key]
        loaded = _load(tokenizer_id, backend)
        with _cache_lock:
            _cache[key] = loaded
        return loaded


def clear_tokenizer_cache() -> None:
    """Forget every cached tokenizer (mainly for tests)."""
    with _cache_lock:
        _cache.clear()


def _local_directory(tokenizer_id: str) -> pathlib.Path | None:
    if tokenizer_id.startswith(LOCAL_MODEL_PREFIX):
        # The embedded server's package asset; imported by name as tinker.local is optional here.
        models = importlib.import_module("tinker.local.models")
        # Also in the Hugging Face cache, for user code that loads it with transformers by name.
        importlib.import_module("tinker.local.hub_cache").publish_quietly()
        return pathlib.Path(models.TOKENIZER_DIR)
    path = pathlib.Path(os.path.expanduser(tokenizer_id))
    return path if path.is_dir() else None


def _load(tokenizer_id: str, backend: Backend) -> Any:
    directory = _local_directory(tokenizer_id)
    revision = _PINNED_REVISIONS.get(tokenizer_id)
    if backend == "transformers":
        return _load_transformers(str(directory or tokenizer_id), revision)
    if directory is not None:
        return _load_directory(directory, tokenizer_id)
    return _load_hub(tokenizer_id, revision)


def _load_directory(directory: pathlib.Path, name: str) -> Tokenizer:
    import tokenizers

    tokenizer_file = directory / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise ValueError(f"tokenizer directory {str(directory)!r} has no tokenizer.json")
    special = _special_tokens(
        _read_json(directory / "tokenizer_config.json"),
        _read_json(directory / "special_tokens_map.json"),
    )
    return Tokenizer(tokenizers.Tokenizer.from_file(str(tokenizer_file)), name, **special)


def _load_hub(repo_id: str, revision: str | None) -> Tokenizer:
    import tokenizers

    backend_tokenizer = tokenizers.Tokenizer.from_pretrained(repo_id, revision=revision or "main")
    special = _special_tokens(_hub_json(repo_id, "tokenizer_config.json", revision), None)
    return Tokenizer(backend_tokenizer, repo_id, **special)


def _load_transformers(name_or_path: str, revision: str | None) -> Any:
    try:
        transformers = importlib.import_module("transformers")
    except ImportError as exc:
        raise ImportError(
            "backend='transformers' needs the transformers package (pip install transformers)"
        ) from exc
    return transformers.AutoTokenizer.from_pretrained(
        name_or_path, use_fast=True, revision=revision, trust_remote_code=revision is not None
    )


def _read_json(path: pathlib.Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    with path.open(encoding="utf-8") as handle:
        content = json.load(handle)
    return content if isinstance(content, dict) else None


def _hub_json(repo_id: str, filename: str, revision: str | None) -> dict[str, Any] | None:
    """A JSON file of a hub repo, or None when it cannot be fetched (it is optional)."""
    try:
        from huggingface_hub import hf_hub_download

        return _read_json(pathlib.Path(hf_hub_download(repo_id, filename, revision=revision)))
    except Exception:  # the file is optional: a missing file or no network leaves it unset
        return None


def _token_text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return str(value["content"])
    return None


def _special_tokens(*configs: dict[str, Any] | None) -> dict[str, str | None]:
    """bos/eos/pad tokens from tokenizer_config.json / special_tokens_map.json (first wins)."""
    found: dict[str, str | None] = {"bos_token": None, "eos_token": None, "pad_token": None}
    for config in configs:
        for name in found:
            if found[name] is None and config is not None:
                found[name] = _token_text(config.get(name))
    return found
