"""Build the virtual environment that holds tinker-cookbook next to tinker-sync.

The cookbook declares a dependency on the distribution `tinker` (the official SDK), whose import
name is the same as tinker-sync's. Installing it the ordinary way would put the official SDK
over tinker-sync, so this script installs it the way docs/migration.md tells users to:

1. tinker-sync from this checkout (editable, so the venv always runs the checkout's code);
2. torch first, pinned to the CPU build that lies in this machine's wheel directory;
3. the cookbook with `--no-deps`;
4. the cookbook's other requirements, read from its own metadata, without `tinker` and torch,
   with those of the extras its arithmetic RL recipe imports (`math-rl`).

Default location: `<repo>/.venvs/cookbook` (gitignored); override it with `--dir DIR` or
TINKER_COOKBOOK_VENV. Stdlib only. Run: `python scripts/cookbook_venv.py` (or
`make cookbook-venv`); it prints the venv's python.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COOKBOOK = "tinker-cookbook==0.6.1"
TORCH = "torch==2.13.0"
# Requirements that must not be installed by pip's resolver: `tinker` is tinker-sync itself
# (same import name), torch is installed first from its pinned CPU build.
SKIPPED = frozenset({"tinker", "torch"})
# Needed only by the cookbook's Inkling and Kimi-K3 models; installed when the index has a
# version that fits, skipped (with a note) when it does not.
OPTIONAL = frozenset({"tml-renderers"})
# Extras whose requirements are installed too: the math_rl recipe imports them at start.
EXTRAS = ("math-rl",)
READY = ".installed"
# Prints the cookbook's requirements, one per line, from its installed metadata: the
# unconditional ones, and those whose whole marker is `extra == "<one of EXTRAS>"` (unmarked).
_LIST_REQUIREMENTS = r"""
import importlib.metadata as m, re, sys
for line in m.requires("tinker-cookbook") or []:
    requirement, _, marker = line.partition(";")
    extra = re.fullmatch(r"\s*extra\s*==\s*['\"]([^'\"]+)['\"]\s*", marker)
    if "extra" not in marker:
        print(line)
    elif extra and extra.group(1) in sys.argv[1:]:
        print(requirement.strip())
"""


def venv_dir() -> Path:
    """Where the cookbook venv lives: TINKER_COOKBOOK_VENV, else `<repo>/.venvs/cookbook`."""
    configured = os.environ.get("TINKER_COOKBOOK_VENV", "")
    return Path(configured) if configured else ROOT / ".venvs" / "cookbook"


def requirement_name(requirement: str) -> str:
    """The normalised project name of a requirement line ("Foo_Bar>=1; x" -> "foo-bar")."""
    name = requirement.split(";")[0]
    for stop in "<>=!~[ (":
        name = name.split(stop)[0]
    return name.strip().lower().replace("_", "-").replace(".", "-")


def cookbook_python(directory: Path | None = None, *, create: bool) -> str | None:
    """The venv's interpreter; with `create`, build the venv first if it is not complete.

    The venv counts as ready once every step succeeded (a marker file written last), so an
    interrupted build is redone from scratch.
    """
    directory = directory or venv_dir()
    python = directory / "bin" / "python"
    if (directory / READY).exists():
        return str(python)
    if not create:
        return None
    subprocess.run([_base_python(), "-m", "venv", "--clear", str(directory)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, TORCH], check=True)
    subprocess.run([*pip, "-e", str(ROOT)], check=True)
    subprocess.run([*pip, "--no-deps", COOKBOOK], check=True)
    listed = subprocess.run(
        [str(python), "-c", _LIST_REQUIREMENTS, *EXTRAS], check=True, capture_output=True, text=True
    ).stdout.split("\n")
    wanted = [line for line in listed if line and requirement_name(line) not in SKIPPED]
    required = [line for line in wanted if requirement_name(line) not in OPTIONAL]
    subprocess.run([*pip, *required], check=True)
    for line in wanted:
        if requirement_name(line) in OPTIONAL and subprocess.run([*pip, line]).returncode:
            print(f"note: {line!r} is not installable here; skipped", file=sys.stderr)
    freeze = subprocess.run(
        [str(python), "-m", "pip", "freeze", "--disable-pip-version-check"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    (directory / READY).write_text(freeze)
    return str(python)


def _base_python() -> str:
    """A Python 3.11 (the cookbook needs >= 3.11; the CPU torch wheel here is for 3.11)."""
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    return "python3.11"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None, help="directory of the venv")
    args = parser.parse_args(argv)
    print(cookbook_python(args.dir, create=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
