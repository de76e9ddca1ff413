"""Download checkpoint archives and extract them without trusting their contents.

`download_checkpoint` asks the service for a signed archive URL, streams the tar to a temporary
file beside the destination, extracts it with `safe_extract` into a fresh directory and only then
moves it into place, so a failed download never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

import logging
import os
import pathlib
import posixpath
import re
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

__all__ = [
    "DOWNLOAD_TIMEOUT",
    "CheckpointDownloadError",
    "UnsafeArchiveError",
    "checkpoint_dir_name",
    "download_checkpoint",
    "safe_extract",
]

logger = logging.getLogger(__name__)

TINKER_SCHEME = "tinker://"
# (connect, read) seconds: a stalled transfer fails instead of hanging.
DOWNLOAD_TIMEOUT: tuple[float, float] = (10.0, 30.0)
_CHUNK_BYTES = 1 << 16

# Called with (bytes received so far, total bytes or None when the server gives no length).
ProgressCallback = Callable[[int, "int | None"], None]


class UnsafeArchiveError(ValueError):
    """An archive member would escape the destination or is not a plain file or directory."""


class CheckpointDownloadError(OSError):
    """The archive could not be fetched (HTTP error, timeout, dropped or truncated transfer)."""


def checkpoint_dir_name(tinker_path: str) -> str:
    """Directory name for a checkpoint: the path without the scheme, every character but
    letters, digits, '.', '-' and '_' (the '/' and the ':' of run ids) replaced by '_'."""
    from tinker.types import ParsedCheckpointTinkerPath

    ParsedCheckpointTinkerPath.from_tinker_path(tinker_path)  # ValueError when malformed
    return re.sub(r"[^A-Za-z0-9._-]", "_", tinker_path[len(TINKER_SCHEME) :])


def download_checkpoint(
    rest_client: Any,
    tinker_path: str,
    output_dir: str | os.PathLike[str] | None = None,
    *,
    force: bool = False,
    progress: ProgressCallback | None = None,
) -> pathlib.Path:
    """Download and extract the checkpoint at `tinker_path` into `output_dir/<name>`.

    `output_dir` (default: the current directory) is created when missing. The target directory
    must not exist unless `force` is true, in which case it is replaced once the new archive has
    been extracted. Returns the path of the extracted checkpoint directory.
    """
    parent = pathlib.Path(output_dir if output_dir is not None else os.getcwd()).absolute()
    destination = parent / checkpoint_dir_name(tinker_path)
    if destination.exists() and not force:
        raise FileExistsError(
            f"{destination} already exists (use force=True / --force to replace it)"
        )
    parent.mkdir(parents=True, exist_ok=True)

    archive = rest_client.get_checkpoint_archive_url_from_tinker_path(tinker_path).result()
    fd, archive_name = tempfile.mkstemp(prefix=".tinker-download-", suffix=".tar", dir=parent)
    archive_path = pathlib.Path(archive_name)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=parent))
    try:
        with os.fdopen(fd, "wb") as sink:
            for chunk in _stream(archive.url, progress):
                sink.write(chunk)
        safe_extract(archive_path, staging)
        if destination.exists() or destination.is_symlink():
            _remove(destination)
        staging.rename(destination)
    finally:
        archive_path.unlink(missing_ok=True)
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    logger.info("Extracted checkpoint %s to %s", tinker_path, destination)
    return destination


def _stream(url: str, progress: ProgressCallback | None) -> Iterator[bytes]:
    """Yield the body of `url` in chunks, reporting progress; bounded by DOWNLOAD_TIMEOUT.

    Errors never quote the URL: a signed download URL is a credential.
    """
    import requests

    logger.debug("Downloading checkpoint archive")
    try:
        with requests.get(url, stream=True, timeout=DOWNLOAD_TIMEOUT) as response:
            if response.status_code >= 400:
                raise CheckpointDownloadError(
                    f"archive download failed: HTTP {response.status_code} {response.reason}"
                )
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            received = 0
            if progress is not None:
                progress(received, total)
            for chunk in response.iter_content(chunk_size=_CHUNK_BYTES):
                received += len(chunk)
                if progress is not None:
                    progress(received, total)
                yield chunk
    except requests.Timeout:
        raise CheckpointDownloadError(
            f"archive download timed out (no data for {DOWNLOAD_TIMEOUT[1]:.0f} s)"
        ) from None
    except requests.RequestException as exc:
        raise CheckpointDownloadError(f"archive download failed: {type(exc).__name__}") from None
    if total is not None and received != total:
        raise CheckpointDownloadError(
            f"archive download truncated: got {received} of {total} bytes"
        )


def _remove(path: pathlib.Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def safe_extract(tar_path: str | os.PathLike[str], dest: str | os.PathLike[str]) -> None:
    """Extract a (possibly compressed) tar into `dest`, refusing any member that is unsafe.

    Refused: absolute names, names with '..', symbolic and hard links, device files, FIFOs and
    anything that would resolve outside `dest`. Every member is checked before anything is
    written, so a hostile archive leaves `dest` untouched.
    """
    root = pathlib.Path(dest)
    root.mkdir(parents=True, exist_ok=True)
    resolved_root = root.resolve()
    with tarfile.open(tar_path, mode="r:*") as archive:
        members = archive.getmembers()
        for member in members:
            _check_member(member, resolved_root)
        if hasattr(tarfile, "data_filter"):
            archive.extractall(resolved_root, members=members, filter="data")
        else:  # Python 3.10 before 3.10.12: our own checks above are the only guard
            archive.extractall(resolved_root, members=members)


def _check_member(member: tarfile.TarInfo, root: pathlib.Path) -> None:
    """Raise UnsafeArchiveError naming `member` when it could write outside `root`."""
    name = member.name
    kind = _refused_kind(member)
    if kind is not None:
        raise UnsafeArchiveError(f"refusing to extract {name!r}: {kind}")
    if name.startswith(("/", "\\")) or posixpath.isabs(name) or pathlib.PureWindowsPath(name).drive:
        raise UnsafeArchiveError(f"refusing to extract {name!r}: absolute path")
    if ".." in pathlib.PurePosixPath(name.replace("\\", "/")).parts:
        raise UnsafeArchiveError(f"refusing to extract {name!r}: path contains '..'")
    target = (root / name).resolve()
    if target != root and root not in target.parents:
        raise UnsafeArchiveError(f"refusing to extract {name!r}: resolves outside {root}")


def _refused_kind(member: tarfile.TarInfo) -> str | None:
    if member.issym():
        return f"symbolic link to {member.linkname!r}"
    if member.islnk():
        return f"hard link to {member.linkname!r}"
    if member.ischr() or member.isblk():
        return "device file"
    if member.isfifo():
        return "FIFO"
    if not (member.isfile() or member.isdir()):
        return "unsupported member type"
    return None
