"""Build the virtual environments that hold the unmodified official SDKs (0.38.0 and 0.5.1).

One venv per release, independent of any checkout's own .venv, used by the opt-in tests
(tests/official/) and by `make bench-compare`. Default root: `<repo>/.venvs/` (gitignored);
override it with `--root DIR` or the TINKER_OFFICIAL_VENVS environment variable.

Run: `python scripts/official_venvs.py [--root DIR] [VERSION ...]` (or `make official-venvs`);
it prints `<version> <python path>` per venv. Stdlib only, so any Python >= 3.11 can run it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSIONS = ("0.38.0", "0.5.1")
# The CPU build of torch lies in this machine's wheel directory; a bare `torch` requirement
# would pull a multi-GB CUDA build, so it is pinned and installed first. Both SDKs use torch
# for their optional paths (TensorData.from_torch, custom losses).
TORCH = "torch==2.13.0"
# The capture server decodes protobuf bodies with the official runtime's own classes, and
# zstd-compressed ones with zstandard; both are already dependencies of 0.38.0.
EXTRAS = {"0.38.0": ("zstandard",), "0.5.1": ()}
READY = ".installed"


def venvs_root() -> Path:
    """Where the official venvs live: TINKER_OFFICIAL_VENVS, else `<repo>/.venvs`."""
    configured = os.environ.get("TINKER_OFFICIAL_VENVS", "")
    return Path(configured) if configured else ROOT / ".venvs"


def venv_dir(version: str, root: Path | None = None) -> Path:
    """The directory of the venv holding `tinker==version`."""
    return (root or venvs_root()) / f"official-{version}"


def official_python(version: str, *, create: bool, root: Path | None = None) -> str | None:
    """The interpreter of the official SDK `version`; with `create`, build its venv if missing.

    A venv counts as ready only once every install step succeeded (a marker file written last),
    so an interrupted build is redone from scratch on the next call.
    """
    if version not in VERSIONS:
        raise ValueError(f"unknown official SDK version {version!r}; known: {', '.join(VERSIONS)}")
    directory = venv_dir(version, root)
    python = directory / "bin" / "python"
    if (directory / READY).exists():
        return str(python)
    if not create:
        return None
    # 0.38.0 needs Python >= 3.11; the machine's default python3 is 3.11.
    base = _base_python()
    subprocess.run([base, "-m", "venv", "--clear", str(directory)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, TORCH], check=True)
    subprocess.run([*pip, f"tinker=={version}", *EXTRAS[version]], check=True)
    (directory / READY).write_text(f"tinker=={version}\n")
    return str(python)


def _base_python() -> str:
    """A Python >= 3.11 to create venvs from: this interpreter if new enough, else python3.11."""
    if sys.version_info >= (3, 11):
        return sys.executable
    return "python3.11"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("versions", nargs="*", default=list(VERSIONS), help="SDK versions")
    parser.add_argument("--root", type=Path, default=None, help="directory of the venvs")
    args = parser.parse_args(argv)
    for version in args.versions:
        python = official_python(version, create=True, root=args.root)
        print(version, python, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
