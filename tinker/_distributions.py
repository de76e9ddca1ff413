"""Which installed distributions provide the import package `tinker`, and a warning when two do.

tinker-sync is installed as the distribution `tinker-sync` but imported as `tinker`, the import
name of the official SDK (distribution `tinker`). Installing anything that requires `tinker`
puts the official SDK's files into the same `tinker/` directory, or a second copy elsewhere on
sys.path, and which one runs is then an accident of install order. `warn_if_shared()` runs at
`import tinker` and stays cheap: it lists the sys.path directories for metadata named `tinker-*`
(the official distribution) and only then loads importlib.metadata, which alone takes longer to
import than all of tinker. `claimants()` is the exhaustive check (`tinker doctor`).
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import importlib.metadata

__all__ = ["OWN_DISTRIBUTION", "Claimant", "claimants", "conflict_message", "warn_if_shared"]

OWN_DISTRIBUTION = "tinker-sync"
PACKAGE = "tinker"
_METADATA_SUFFIXES = (".dist-info", ".egg-info")


class Claimant(NamedTuple):
    """An installed distribution whose files include the import package `tinker`."""

    name: str
    version: str
    location: str  # the directory that holds its metadata


def claimants(paths: Iterable[str] | None = None) -> list[Claimant]:
    """Every distribution on `paths` (default sys.path) that provides `tinker`, each once (its
    first copy in path order).

    Reads every distribution's metadata (tens of milliseconds). tinker-sync counts even as an
    editable install, whose metadata lists no `tinker/` files.
    """
    import importlib.metadata

    found: list[Claimant] = []
    seen: set[str] = set()
    search = list(sys.path if paths is None else paths)
    for distribution in importlib.metadata.distributions(path=search):
        name = distribution.metadata["Name"] or ""
        if _normalise(name) != OWN_DISTRIBUTION and not _owns_package(distribution):
            continue
        if _normalise(name) not in seen:  # the first on the path is the one that counts
            seen.add(_normalise(name))
            location = os.path.realpath(str(distribution.locate_file("")))
            found.append(Claimant(name, distribution.version or "?", location))
    return found


def conflict_message(found: list[Claimant], imported_from: str) -> str | None:
    """The warning for `found` when a distribution other than tinker-sync provides `tinker`
    (None when tinker-sync is alone); `imported_from` is the package directory imported."""
    others = [c for c in found if _normalise(c.name) != OWN_DISTRIBUTION]
    if not others:
        return None
    listed = " and ".join(f"{c.name} {c.version} (in {c.location})" for c in found)
    return (
        f"the import package 'tinker' is provided by {len(found)} installed distributions: "
        f"{listed}. 'import tinker' loaded {imported_from}, and files of the others may be "
        "mixed in. Install tools that require 'tinker' next to tinker-sync with "
        "'pip install --no-deps', or keep one: 'pip uninstall tinker' then "
        "'pip install --force-reinstall --no-deps tinker-sync' (see docs/migration.md). "
        "'tinker doctor' shows the details."
    )


def warn_if_shared(paths: Iterable[str] | None = None) -> None:
    """Warn when the official distribution `tinker` is installed on `paths` (default sys.path)
    beside tinker-sync; costs one directory listing per path entry when it is not."""
    search = list(sys.path if paths is None else paths)
    if not _official_metadata_present(search):
        return
    try:
        message = conflict_message(claimants(search), os.path.dirname(os.path.abspath(__file__)))
    except Exception as exc:  # unreadable metadata must never break `import tinker`
        message = f"could not check which distributions provide 'tinker': {exc!r}"
    if message is not None:
        warnings.warn(message, UserWarning, stacklevel=2)


def _official_metadata_present(paths: Iterable[str]) -> bool:
    """True when a directory on `paths` holds metadata of a distribution named `tinker`."""
    for entry in dict.fromkeys(paths):
        try:
            names = os.listdir(entry or os.curdir)
        except OSError:  # a zip file, a missing directory, no permission
            continue
        for name in names:
            if name.endswith(_METADATA_SUFFIXES) and _normalise(name.split("-")[0]) == PACKAGE:
                return True
    return False


def _owns_package(distribution: importlib.metadata.Distribution) -> bool:
    """True when the distribution's top_level.txt or file list names `tinker`."""
    top_level = distribution.read_text("top_level.txt")
    if top_level is not None and PACKAGE in top_level.split():
        return True
    record = distribution.read_text("RECORD") or distribution.read_text("SOURCES.txt") or ""
    return any(line.startswith(f"{PACKAGE}/") for line in record.splitlines())


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")
