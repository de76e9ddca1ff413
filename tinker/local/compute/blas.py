"""Pin numpy's OpenBLAS to a small thread count for the local compute backend.

The local models multiply small matrices, and requests already run on several threads, so
multi-threaded BLAS mostly spins: with 2 cores under load one training step of the tiny
model was 10x slower with 2 BLAS threads than with 1. The setting is process-wide; the
environment variable TINKER_LOCAL_BLAS_THREADS overrides it (0 = leave BLAS alone).
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading

logger = logging.getLogger(__name__)

ENV_VAR = "TINKER_LOCAL_BLAS_THREADS"
DEFAULT_THREADS = 1
_SETTERS = (
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)
_done = False
_lock = threading.Lock()


def _loaded_openblas() -> list[str]:
    """Paths of OpenBLAS libraries mapped into this process (Linux; empty elsewhere)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:
        return []
    return sorted(p for p in paths if p.startswith("/"))


def set_blas_threads(count: int) -> bool:
    """Set OpenBLAS's thread count; False when no OpenBLAS with a known setter is loaded."""
    import numpy  # noqa: F401  (loads numpy's BLAS before looking for it)

    changed = False
    for path in _loaded_openblas():
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _SETTERS:
            setter = getattr(library, name, None)
            if setter is not None:
                setter(ctypes.c_int(count))
                changed = True
                break
    return changed


def limit_blas_threads() -> None:
    """Apply the backend's BLAS thread count once per process (see the module docstring)."""
    global _done
    with _lock:
        if _done:
            return
        _done = True
        raw = os.environ.get(ENV_VAR, str(DEFAULT_THREADS))
        try:
            count = int(raw)
        except ValueError:
            logger.warning("ignoring %s=%r: not an integer", ENV_VAR, raw)
            return
        if count > 0 and not set_blas_threads(count):
            logger.debug("no OpenBLAS found; BLAS thread count left unchanged")
