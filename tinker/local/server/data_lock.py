"""One server per data directory: an exclusive lock on `<data_dir>/server.lock` while it runs.

The lock file names its holder (process id, URL), so a second server on the same directory
refuses to start with an error saying which server has it. The operating system releases the
lock when its process ends, however it ends: the lock of a killed server is simply taken over
by the next one, which then writes its own details.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
from typing import IO, Any

LOCK_FILE = "server.lock"


class DataDirectoryInUse(OSError):
    """Another running server holds the data directory; `pid` and `url` name it (`url` is None
    while that server is still starting)."""

    def __init__(self, data_dir: pathlib.Path, pid: int | None, url: str | None) -> None:
        super().__init__(
            f"The data directory {str(data_dir)!r} is in use by another tinker.local server "
            f"(pid {pid if pid is not None else 'unknown'}, {url or 'still starting'}). Use "
            "that server, stop it, or give this one another data_dir."
        )
        self.data_dir = data_dir
        self.pid = pid
        self.url = url

    def __reduce__(self) -> tuple[type[DataDirectoryInUse], tuple[Any, ...]]:
        return type(self), (self.data_dir, self.pid, self.url)


class DataDirectoryLock:
    """The held lock of one data directory; `release()` (or process exit) lets it go."""

    def __init__(self, data_dir: pathlib.Path) -> None:
        self.path = data_dir / LOCK_FILE
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
        if not _try_lock(handle):
            pid, url = _holder(handle)
            handle.close()
            raise DataDirectoryInUse(data_dir, pid, url)
        self._handle: IO[str] | None = handle
        self.announce(None)

    def announce(self, url: str | None) -> None:
        """Record this process (and, once it listens, its URL) as the holder."""
        if self._handle is None:
            return
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(json.dumps({"pid": os.getpid(), "url": url}))
        self._handle.flush()

    def release(self) -> None:
        """Let the directory go (idempotent)."""
        if self._handle is not None:
            self._handle.close()  # closing the file drops the lock
            self._handle = None


def _holder(handle: IO[str]) -> tuple[int | None, str | None]:
    """The holder's process id and URL, as it wrote them in the lock file."""
    handle.seek(0)
    try:
        details = json.loads(handle.read() or "{}")
    except ValueError:
        details = None
    if not isinstance(details, dict):
        return None, None
    pid, url = details.get("pid"), details.get("url")
    return (pid if isinstance(pid, int) else None), (url if isinstance(url, str) else None)


if sys.platform == "win32":
    import msvcrt

    def _try_lock(handle: IO[str]) -> bool:
        handle.seek(0)
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

else:
    import fcntl

    def _try_lock(handle: IO[str]) -> bool:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True
