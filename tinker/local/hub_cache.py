"""The local models in the Hugging Face cache layout, so that hub readers find them offline.

`transformers.AutoTokenizer.from_pretrained("tinker-local/tiny")` (what the cookbook and most
training code call) only reads the Hugging Face cache when offline. `publish()` writes every
catalogue model there as the cached repo `models--tinker-local--<name>`: one snapshot holding
the packaged tokenizer files and the model's config.json, and `refs/main` naming it. The
snapshot's commit id is derived from those bytes, so publishing is idempotent (an up-to-date
repo costs a few stats) and a changed asset gets a new snapshot. Snapshots are renamed into
place complete and `refs/main` is replaced atomically: a concurrent reader sees the old state
or the new one. The cache directory is resolved as huggingface_hub resolves it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pathlib
import shutil
import uuid
from collections.abc import Mapping

import attrs

from tinker.local.compute.catalogue import LOCAL_MODELS
from tinker.local.compute.export import base_model_files, publish_directory

__all__ = [
    "DISABLE_ENV",
    "CachedModel",
    "cached_models",
    "hub_cache_dir",
    "publish",
    "publish_quietly",
]

logger = logging.getLogger(__name__)

#: Set to 0 (or off/false/no) to keep tinker.local from writing to the Hugging Face cache.
DISABLE_ENV = "TINKER_LOCAL_HF_CACHE"
_OFF = frozenset({"0", "off", "false", "no"})


def hub_cache_dir(environ: Mapping[str, str] | None = None) -> pathlib.Path:
    """The Hugging Face hub cache: $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE, else
    $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub."""
    env = os.environ if environ is None else environ
    explicit = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return _expand(explicit)
    home = env.get("HF_HOME") or os.path.join(
        env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "huggingface",
    )
    return _expand(home) / "hub"


def _expand(path: str) -> pathlib.Path:
    return pathlib.Path(os.path.expandvars(os.path.expanduser(path)))


@attrs.frozen
class CachedModel:
    """One local model as a cached repo: where it lives and whether it is up to date."""

    model_name: str
    repo_dir: pathlib.Path
    commit: str
    files: Mapping[str, bytes] = attrs.field(repr=False, eq=False)  # read once per start

    @property
    def snapshot_dir(self) -> pathlib.Path:
        """The directory a hub reader resolves `model_name` to."""
        return self.repo_dir / "snapshots" / self.commit

    @property
    def current(self) -> bool:
        """True when refs/main names this snapshot and the snapshot is complete."""
        try:
            ref = (self.repo_dir / "refs" / "main").read_text(encoding="ascii").strip()
        except OSError:
            return False
        return ref == self.commit and self.snapshot_complete

    @property
    def snapshot_complete(self) -> bool:
        """True when the snapshot directory holds every file of the model."""
        return all((self.snapshot_dir / name).is_file() for name in self.files)


def cached_models(cache_dir: pathlib.Path | None = None) -> list[CachedModel]:
    """Every catalogue model as a cached repo under `cache_dir` (default: hub_cache_dir())."""
    root = cache_dir if cache_dir is not None else hub_cache_dir()
    models = []
    for name in sorted(LOCAL_MODELS):
        files = base_model_files(name)
        repo_dir = root / ("models--" + name.replace("/", "--"))
        models.append(CachedModel(name, repo_dir, _commit(files), files))
    return models


def _commit(files: Mapping[str, bytes]) -> str:
    """A 40-hex commit id derived from the snapshot's file names and bytes."""
    digest = hashlib.sha1(usedforsecurity=False)
    for name, data in sorted(files.items()):
        digest.update(f"{name}\0{hashlib.sha256(data).hexdigest()}\n".encode())
    return digest.hexdigest()


def publish(cache_dir: pathlib.Path | None = None) -> list[CachedModel]:
    """Write (or confirm) every catalogue model in the cache; OSError when it cannot."""
    models = cached_models(cache_dir)
    for model in models:
        if not model.current:
            _write(model)
    return models


def publish_quietly() -> None:
    """publish(), unless switched off by TINKER_LOCAL_HF_CACHE=0; a cache that cannot be
    written is logged as a warning (naming the directory) and otherwise ignored."""
    if os.environ.get(DISABLE_ENV, "").strip().lower() in _OFF:
        return
    try:
        publish()
    except OSError as exc:
        logger.warning(
            "could not write the local models' tokenizers to the Hugging Face cache %s (%s); "
            "AutoTokenizer.from_pretrained('tinker-local/...') will not find them offline",
            hub_cache_dir(),
            exc,
        )


def _write(model: CachedModel) -> None:
    def fill(staging: pathlib.Path) -> None:
        for name, data in model.files.items():
            (staging / name).write_bytes(data)

    if model.snapshot_dir.exists() and not model.snapshot_complete:
        shutil.rmtree(model.snapshot_dir)  # damaged by hand: written anew below
    # FileExistsError: written before (refs/main pointed elsewhere) or by a concurrent writer.
    with contextlib.suppress(FileExistsError):
        publish_directory(model.snapshot_dir, fill)
    refs = model.repo_dir / "refs"
    refs.mkdir(parents=True, exist_ok=True)
    staged_ref = refs / f".main-{uuid.uuid4().hex}"
    staged_ref.write_text(model.commit, encoding="ascii")
    os.replace(staged_ref, refs / "main")
    logger.debug("%s is in the Hugging Face cache at %s", model.model_name, model.snapshot_dir)
