"""Checkpoint files on disk: safetensors + adapter_config.json, written atomically, read exactly.

Layout: <root>/checkpoints/<run>/<weights|sampler_weights>/<name>/ with
`adapter_model.safetensors`, `adapter_config.json`, `checkpoint_complete` and, for training
checkpoints, `optimizer.safetensors`. A checkpoint directory appears under its final name only
once every file is written and synced (write to a temporary name, fsync, rename).
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import shutil
import tarfile
import uuid
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from tinker.local.server.http_errors import NotFound
from tinker.local.server.paths import CheckpointRef, run_dir_name

ADAPTER_FILE = "adapter_model.safetensors"
CONFIG_FILE = "adapter_config.json"
OPTIMIZER_FILE = "optimizer.safetensors"
COMPLETE_FILE = "checkpoint_complete"
ARCHIVE_FILES = (CONFIG_FILE, ADAPTER_FILE, COMPLETE_FILE)


@attrs.frozen
class CheckpointData:
    """The contents of one checkpoint, as numpy arrays and the adapter config."""

    adapter: dict[str, np.ndarray]
    adapter_config: dict[str, Any]
    optimizer: dict[str, np.ndarray] | None


class CheckpointFiles:
    """Reads and writes checkpoint directories below one root, never outside it."""

    def __init__(self, root: pathlib.Path) -> None:
        self._root = root.resolve()
        self._base = self._root / "checkpoints"
        self._base.mkdir(parents=True, exist_ok=True)

    def directory(self, ref: CheckpointRef) -> pathlib.Path:
        """The directory of `ref`, checked to lie inside the data directory."""
        path = (self._base / run_dir_name(ref.run_id) / ref.kind / ref.name).resolve()
        if self._base not in path.parents:
            raise NotFound(f"Checkpoint {ref.tinker_path!r} not found.")
        return path

    def write(
        self,
        ref: CheckpointRef,
        adapter: Mapping[str, np.ndarray],
        adapter_config: Mapping[str, Any],
        optimizer: Mapping[str, np.ndarray] | None,
    ) -> int:
        """Write a checkpoint atomically (replacing one of the same name); returns its size."""
        from safetensors.numpy import save

        final = self.directory(ref)
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = final.parent / f".tmp-{ref.name}-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            files: dict[str, bytes] = {
                ADAPTER_FILE: save(_contiguous(adapter)),
                CONFIG_FILE: json.dumps(dict(adapter_config), indent=2, sort_keys=True).encode(),
            }
            if optimizer is not None:
                files[OPTIMIZER_FILE] = save(_contiguous(optimizer))
            files[COMPLETE_FILE] = b""
            for file_name, content in files.items():
                _write_synced(staging / file_name, content)
            _fsync_dir(staging)
            self._replace(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return sum(len(content) for content in files.values())

    def read(self, ref: CheckpointRef, *, with_optimizer: bool) -> CheckpointData:
        """Load a checkpoint's tensors (bit-exact) and config; NotFound if it is incomplete."""
        from safetensors.numpy import load

        directory = self.directory(ref)
        if not (directory / COMPLETE_FILE).is_file():
            raise NotFound(f"Checkpoint {ref.tinker_path!r} not found.")
        adapter = load((directory / ADAPTER_FILE).read_bytes())
        config = json.loads((directory / CONFIG_FILE).read_text())
        optimizer = None
        if with_optimizer and (directory / OPTIMIZER_FILE).is_file():
            optimizer = load((directory / OPTIMIZER_FILE).read_bytes())
        return CheckpointData(dict(adapter), config, None if optimizer is None else dict(optimizer))

    def has_optimizer(self, ref: CheckpointRef) -> bool:
        """True when the checkpoint carries optimizer state."""
        return (self.directory(ref) / OPTIMIZER_FILE).is_file()

    def delete(self, ref: CheckpointRef) -> None:
        """Remove a checkpoint directory (no error if it is already gone)."""
        shutil.rmtree(self.directory(ref), ignore_errors=True)

    def archive(self, ref: CheckpointRef) -> bytes:
        """A tar of adapter_config.json, adapter_model.safetensors and checkpoint_complete."""
        directory = self.directory(ref)
        if not (directory / COMPLETE_FILE).is_file():
            raise NotFound(f"Checkpoint {ref.tinker_path!r} not found.")
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for file_name in ARCHIVE_FILES:
                path = directory / file_name
                if path.is_symlink() or not path.is_file():
                    raise NotFound(f"Checkpoint {ref.tinker_path!r} is missing {file_name}.")
                content = path.read_bytes()
                info = tarfile.TarInfo(file_name)
                info.size = len(content)
                info.mtime = int(path.stat().st_mtime)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(content))
        return buffer.getvalue()

    def _replace(self, staging: pathlib.Path, final: pathlib.Path) -> None:
        if final.exists():
            trash = final.parent / f".old-{final.name}-{uuid.uuid4().hex}"
            os.replace(final, trash)
            os.replace(staging, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(staging, final)
        _fsync_dir(final.parent)


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
