"""Download checkpoint archives and extract them without trusting their contents.

`download_checkpoint` asks the service for a signed archive URL, streams the tar to a temporary
file beside the destination, extracts it with `safe_extract` into a fresh directory and only then
moves it into place, so a failed download never leaves a half-written checkpoint behind.
Everything a hostile or broken server could make unbounded is capped (`ArchiveLimits`): the
bytes and the total time of the download, and the extracted size, compression ratio, member
count and time of the extraction.
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
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from tinker._file_modes import usual_mode

__all__ = [
    "DOWNLOAD_TIMEOUT",
    "ArchiveLimits",
    "CheckpointDownloadError",
    "UnsafeArchiveError",
    "checkpoint_dir_name",
    "download_checkpoint",
    "publish_folder",
    "remove_path",
    "safe_extract",
]

logger = logging.getLogger(__name__)

TINKER_SCHEME = "tinker://"
# (connect, read) seconds: a stalled transfer fails instead of hanging.
DOWNLOAD_TIMEOUT: tuple[float, float] = (10.0, 30.0)
_GIB = 1 << 30
# Below this many extracted bytes the compression ratio is not checked (tar headers and padding
# make tiny archives look expanded or shrunk at random).
_RATIO_FLOOR_BYTES = 1 << 20


@attrs.frozen(kw_only=True)
class ArchiveLimits:
    """Caps on one checkpoint download and its extraction; past any of them it fails with a
    CheckpointDownloadError (download) or UnsafeArchiveError (archive) naming the cap."""

    max_download_bytes: int = 64 * _GIB
    download_seconds: float = 6 * 3600.0
    max_extracted_bytes: int = 64 * _GIB
    max_ratio: float = 100.0
    max_members: int = 10_000
    extract_seconds: float = 3600.0


DEFAULT_LIMITS = ArchiveLimits()

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
    limits: ArchiveLimits = DEFAULT_LIMITS,
) -> pathlib.Path:
    """Download and extract the checkpoint at `tinker_path` into `output_dir/<name>`.

    `output_dir` (default: the current directory) is created when missing. The target directory
    must not exist unless `force` is true, in which case it is replaced once the new archive has
    been extracted. `limits` caps the download and the extraction. Returns the path of the
    extracted checkpoint directory.
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
            for chunk in _stream(archive.url, progress, limits):
                sink.write(chunk)
        safe_extract(archive_path, staging, limits)
        publish_folder(staging, destination, force=force)
    finally:
        archive_path.unlink(missing_ok=True)
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    logger.info("Extracted checkpoint %s to %s", tinker_path, destination)
    return destination


def publish_folder(staging: pathlib.Path, destination: pathlib.Path, *, force: bool) -> None:
    """Move a complete staging folder (made by mkdtemp: 0700) to `destination` with the mode
    the umask gives. An existing destination, also one that appeared while the download ran,
    is replaced only with `force` (else FileExistsError)."""
    os.chmod(staging, usual_mode(0o777))
    if destination.exists() or destination.is_symlink():
        if not force:
            raise FileExistsError(
                f"{destination} already exists (use force=True / --force to replace it)"
            )
        remove_path(destination)
    staging.rename(destination)


def _stream(url: str, progress: ProgressCallback | None, limits: ArchiveLimits) -> Iterator[bytes]:
    """Yield the body of `url` as it arrives, reporting progress; bounded by DOWNLOAD_TIMEOUT per
    read and by `limits` in bytes and total time, so an endless or trickled body ends.

    Errors never quote the URL: a signed download URL is a credential.
    """
    import requests
    import urllib3.exceptions

    from tinker._transport import BodyLimitExceeded, body_chunks, bounded_body

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
            chunks = bounded_body(
                body_chunks(response),
                max_bytes=limits.max_download_bytes,
                seconds=limits.download_seconds,
                declared=length,
            )
            for chunk in chunks:
                received += len(chunk)
                if progress is not None:
                    progress(received, total)
                yield chunk
    except BodyLimitExceeded as exc:
        cap = (
            f"the download limit of {limits.max_download_bytes} bytes"
            if exc.too_large
            else f"the download deadline of {limits.download_seconds:g} s"
        )
        raise CheckpointDownloadError(
            f"archive download stopped after {exc.received} bytes: {exc} (over {cap}; see "
            "ArchiveLimits)"
        ) from None
    except (requests.Timeout, urllib3.exceptions.TimeoutError):
        raise CheckpointDownloadError(
            f"archive download timed out (no data for {DOWNLOAD_TIMEOUT[1]:.0f} s)"
        ) from None
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
        raise CheckpointDownloadError(f"archive download failed: {type(exc).__name__}") from None
    if total is not None and received != total:
        raise CheckpointDownloadError(
            f"archive download truncated: got {received} of {total} bytes"
        )


def remove_path(path: pathlib.Path) -> None:
    """Delete a file, a symlink or a directory tree."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def safe_extract(
    tar_path: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    limits: ArchiveLimits = DEFAULT_LIMITS,
) -> None:
    """Extract a (possibly compressed) tar into `dest`, refusing any member that is unsafe.

    Refused: absolute names, names with '..', symbolic and hard links, device files, FIFOs,
    sparse files and anything that would resolve outside `dest`; and an archive past `limits`
    (more members, more bytes in all, a higher ratio of extracted to archive bytes, or more time
    than allowed). Every member header is checked before anything is written, reading no
    member's data, so a hostile archive (a decompression bomb included) leaves `dest` untouched.
    """
    root = pathlib.Path(dest)
    root.mkdir(parents=True, exist_ok=True)
    resolved_root = root.resolve()
    budget = _ExtractionBudget(limits, archive_bytes=os.path.getsize(tar_path))
    with tarfile.open(tar_path, mode="r:*") as archive:
        members = []
        while budget.check_time() and (member := archive.next()) is not None:
            _check_member(member, resolved_root)
            budget.admit(member)
            members.append(member)
        for member in members:
            budget.check_time()
            if hasattr(tarfile, "data_filter"):
                archive.extract(member, resolved_root, filter="data")
            else:  # Python 3.10 before 3.10.12: our own checks above are the only guard
                archive.extract(member, resolved_root)


class _ExtractionBudget:
    """Counts the members and declared bytes of one archive against `ArchiveLimits`."""

    def __init__(self, limits: ArchiveLimits, *, archive_bytes: int) -> None:
        self._limits = limits
        self._archive_bytes = max(archive_bytes, 1)
        self._deadline = time.monotonic() + limits.extract_seconds
        self._members = 0
        self._bytes = 0

    def check_time(self) -> bool:
        """True while within the deadline; past it, UnsafeArchiveError."""
        if time.monotonic() > self._deadline:
            raise UnsafeArchiveError(
                f"refusing to extract the archive: not done within {self._limits.extract_seconds:g}"
                f" s after {self._members} members (ArchiveLimits.extract_seconds)"
            )
        return True

    def admit(self, member: tarfile.TarInfo) -> None:
        """Count `member`, raising UnsafeArchiveError once the archive exceeds a limit."""
        limits = self._limits
        self._members += 1
        self._bytes += member.size
        if self._members > limits.max_members:
            raise UnsafeArchiveError(
                f"refusing to extract the archive: more than {limits.max_members} members "
                "(ArchiveLimits.max_members)"
            )
        if self._bytes > limits.max_extracted_bytes:
            raise UnsafeArchiveError(
                f"refusing to extract {member.name!r}: the archive would extract to more than "
                f"{limits.max_extracted_bytes} bytes (ArchiveLimits.max_extracted_bytes)"
            )
        ratio = self._bytes / self._archive_bytes
        if self._bytes > _RATIO_FLOOR_BYTES and ratio > limits.max_ratio:
            raise UnsafeArchiveError(
                f"refusing to extract {member.name!r}: {self._bytes} bytes from a "
                f"{self._archive_bytes}-byte archive is a compression ratio above "
                f"{limits.max_ratio:g} (ArchiveLimits.max_ratio)"
            )


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
    if member.issparse():
        return "sparse file"
    if not (member.isfile() or member.isdir()):
        return "unsupported member type"
    return None
