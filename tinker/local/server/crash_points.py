"""Named steps of the checkpoint save and delete protocols, where a test can kill the server.

With `TINKER_LOCAL_CRASH_AT=<point>` (or `<point>:<n>`, e.g. `save.staged:2`) in its
environment, the server process SIGKILLs itself the first (or n-th) time it reaches that
point: a crash at an exact step, for the crash tests of the durability promise
(server.store). Unset, reaching a point costs one environment lookup.
"""

from __future__ import annotations

import collections
import os
import signal
import threading

ENV = "TINKER_LOCAL_CRASH_AT"

#: Every point, in the order a save (or a delete) passes them.
POINTS = (
    "save.writing",  # the staging directory holds some of the files
    "save.staged",  # every file written and synced, still in staging
    "save.renamed",  # the new version directory is in place, no row names it yet
    "save.committed",  # the row names the new version; the replaced one is still on disk
    "save.cleaned",  # the replaced version is removed; the answer is not sent yet
    "delete.committed",  # the row is gone; the files are still on disk
    "delete.cleaned",  # the files are gone; the answer is not sent yet
)

_reached: collections.Counter[str] = collections.Counter()
_lock = threading.Lock()


def reached(point: str) -> None:
    """Mark `point` as reached; kill this process if the environment asks for it here."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    name, _, count = spec.partition(":")
    if name != point:
        return
    with _lock:
        _reached[point] += 1
        times = _reached[point]
    if times == int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)
