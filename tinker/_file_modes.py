"""File modes as the process's umask leaves them, for files and folders this package stages
under private temporary names (mkstemp/mkdtemp make them 0600/0700) and then publishes."""

from __future__ import annotations

import os

__all__ = ["usual_mode"]


def usual_mode(mode: int) -> int:
    """`mode` (0o666 for a file, 0o777 for a folder) less the umask: what open() or mkdir()
    would have given."""
    return mode & ~_umask()


def _umask() -> int:
    """The umask, read without changing it where the system tells it (Linux /proc), since
    setting it is process-wide and would race with other threads creating files."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
