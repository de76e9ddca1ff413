"""Checkpoint files on disk: one directory per saved version, written durably, never replaced.

Layout under the data directory:

    checkpoints/<label>.<32 hex digits>/   one saved version: adapter_model.safetensors,
                                           adapter_config.json, checkpoint_complete and, for
                                           training checkpoints, optimizer.safetensors
    staging/<32 hex digits>/               a version being written

A version is written in staging (every file and the directory fsynced), then renamed into
checkpoints/ under a name never used before (the parent fsynced). The store's row names the
version directory (server.store), so no name the client chose decides a path and two
checkpoints never share a directory; a version directory no row names is debris of an
interrupted save or delete, which `recover` removes at start-up with the staging area.
"""

from __future__ import annotations

import io
import json
import logging
import os
import pathlib
import re
import shutil
import tarfile
import uuid
from collections.abc import Callable, Collection, Mapping
from typing import Any

import attrs
import numpy as np

from tinker.local.server import crash_points
from tinker.local.server.http_errors import NotFound
from tinker.local.server.paths import CheckpointRef

logger = logging.getLogger(__name__)

ADAPTER_FILE = "adapter_model.safetensors"
CONFIG_FILE = "adapter_config.json"
OPTIMIZER_FILE = "optimizer.safetensors"
COMPLETE_FILE = "checkpoint_complete"
ARCHIVE_FILES = (CONFIG_FILE, ADAPTER_FILE, COMPLETE_FILE)
CHECKPOINTS_DIR = "checkpoints"
STAGING_DIR = "staging"

_VERSION = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._=+@-]*\.[0-9a-f]{32}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._=+@-]+")


@attrs.frozen
class CheckpointData:
    """The contents of one checkpoint, as numpy arrays and the adapter config."""

    adapter: dict[str, np.ndarray]
    adapter_config: dict[str, Any]
    optimizer: dict[str, np.ndarray] | None


class CheckpointFiles:
    """Writes, reads and removes version directories below one data directory."""

    def __init__(self, root: pathlib.Path) -> None:
        root = root.resolve()
        self._base = root / CHECKPOINTS_DIR
        self._staging = root / STAGING_DIR
        self._base.mkdir(parents=True, exist_ok=True)
        self._staging.mkdir(exist_ok=True)

    def create(
        self,
        ref: CheckpointRef,
        adapter: Mapping[str, np.ndarray],
        adapter_config: Mapping[str, Any],
        optimizer: Mapping[str, np.ndarray] | None,
    ) -> tuple[str, int]:
        """Write a new version of `ref` durably; returns its directory name and size in bytes."""
        from safetensors.numpy import save

        files: dict[str, bytes] = {
            ADAPTER_FILE: save(_contiguous(adapter)),
            CONFIG_FILE: json.dumps(dict(adapter_config), indent=2, sort_keys=True).encode(),
        }
        if optimizer is not None:
            files[OPTIMIZER_FILE] = save(_contiguous(optimizer))

        def write(staging: pathlib.Path) -> int:
            staging.mkdir()
            for index, (file_name, content) in enumerate(files.items()):
                _write_synced(staging / file_name, content)
                if index == 0:
                    crash_points.reached("save.writing")
            return sum(len(content) for content in files.values())

        return self.create_with(ref, write)

    def create_with(
        self, ref: CheckpointRef, write: Callable[[pathlib.Path], int]
    ) -> tuple[str, int]:
        """A new version of `ref` whose files `write` puts into a directory it creates (at the
        path it is given, which does not exist yet) and whose size it returns; finished
        durably like every version."""
        token = uuid.uuid4().hex
        staging = self._staging / token
        try:
            size = write(staging)
            marker = staging / COMPLETE_FILE
            if not marker.exists():
                _write_synced(marker, b"")
            _fsync_dir(staging)
            crash_points.reached("save.staged")
            name = f"{_label(ref)}.{token}"
            os.rename(staging, self._base / name)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _fsync_dir(self._base)
        crash_points.reached("save.renamed")
        return name, size

    def path_of(self, directory: str, ref: CheckpointRef) -> pathlib.Path:
        """The version directory of `ref` (to copy it); NotFound when it is gone."""
        path = self._path(directory, ref)
        if not (path / COMPLETE_FILE).is_file():
            raise NotFound(f"The files of checkpoint {ref.tinker_path!r} are gone.")
        return path

    def listing(self, directory: str, ref: CheckpointRef) -> dict[str, int]:
        """The files of a version (relative name -> bytes), its completion marker left out."""
        path = self.path_of(directory, ref)
        return {
            str(file.relative_to(path)): file.stat().st_size
            for file in sorted(path.rglob("*"))
            if file.is_file() and not file.is_symlink() and file.name != COMPLETE_FILE
        }

    def read_file(self, directory: str, ref: CheckpointRef, name: str) -> bytes:
        """One file of a version, by its relative name in `listing`; NotFound otherwise."""
        if name not in self.listing(directory, ref):
            raise NotFound(f"Checkpoint {ref.tinker_path!r} has no file {name!r}.")
        return (self.path_of(directory, ref) / name).read_bytes()

    def read(self, directory: str, ref: CheckpointRef, *, with_optimizer: bool) -> CheckpointData:
        """Load a version's tensors (bit-exact) and config; NotFound if its files are gone."""
        from safetensors.numpy import load

        path = self._path(directory, ref)
        try:
            if not (path / COMPLETE_FILE).is_file():
                raise FileNotFoundError(path / COMPLETE_FILE)
            adapter = load((path / ADAPTER_FILE).read_bytes())
            config = json.loads((path / CONFIG_FILE).read_text())
            optimizer = None
            if with_optimizer and (path / OPTIMIZER_FILE).is_file():
                optimizer = load((path / OPTIMIZER_FILE).read_bytes())
        except FileNotFoundError:
            raise NotFound(f"The files of checkpoint {ref.tinker_path!r} are gone.") from None
        return CheckpointData(dict(adapter), config, None if optimizer is None else dict(optimizer))

    def has_optimizer(self, directory: str, ref: CheckpointRef) -> bool:
        """True when the version carries optimizer state."""
        return (self._path(directory, ref) / OPTIMIZER_FILE).is_file()

    def archive(self, directory: str, ref: CheckpointRef) -> bytes:
        """A tar of adapter_config.json, adapter_model.safetensors and checkpoint_complete."""
        path = self._path(directory, ref)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for file_name in ARCHIVE_FILES:
                member = path / file_name
                try:
                    if member.is_symlink():
                        raise FileNotFoundError(member)
                    content = member.read_bytes()
                    modified = int(member.stat().st_mtime)
                except (FileNotFoundError, IsADirectoryError):
                    raise NotFound(
                        f"The files of checkpoint {ref.tinker_path!r} are gone."
                    ) from None
                info = tarfile.TarInfo(file_name)
                info.size = len(content)
                info.mtime = modified
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(content))
        return buffer.getvalue()

    def complete(self, directory: str) -> bool:
        """True when the version directory holds a finished checkpoint."""
        path = self._inside(directory)
        return path is not None and (path / COMPLETE_FILE).is_file()

    def remove(self, directory: str) -> None:
        """Remove a version directory (no error if it is already gone)."""
        path = self._inside(directory)
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)

    def recover(self, referenced: Collection[str]) -> list[str]:
        """Remove the staging area's contents and every version no row names; their names."""
        staged = _entries(self._staging)
        for entry in staged:
            _remove(entry)
        removed = [entry.name for entry in staged]
        wanted = set(referenced)
        for entry in _entries(self._base):
            if _VERSION.fullmatch(entry.name) and entry.name not in wanted:
                _remove(entry)
                removed.append(entry.name)
        if removed:
            _fsync_dir(self._base)
        return removed

    def _path(self, directory: str, ref: CheckpointRef) -> pathlib.Path:
        """The version directory of `ref`; NotFound unless it lies inside checkpoints/."""
        path = self._inside(directory)
        if path is None:
            raise NotFound(f"Checkpoint {ref.tinker_path!r} not found.")
        return path

    def _inside(self, directory: str) -> pathlib.Path | None:
        path = (self._base / directory).resolve()
        return path if self._base in path.parents else None


def _label(ref: CheckpointRef) -> str:
    """A readable prefix for a version directory (uniqueness comes from the random suffix)."""
    text = _UNSAFE.sub("_", f"{ref.run_id}_{ref.kind}_{ref.name}")
    return text.lstrip(".-=+@")[:96] or "checkpoint"


def _entries(directory: pathlib.Path) -> list[pathlib.Path]:
    try:
        return sorted(directory.iterdir())
    except FileNotFoundError:
        return []


def _remove(path: pathlib.Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _contiguous(tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: np.ascontiguousarray(array) for name, array in tensors.items()}


def _write_synced(path: pathlib.Path, content: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(path: pathlib.Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # directories cannot be opened on some platforms (Windows)
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
