"""Regenerate the captures of what the unmodified official SDKs send (tests/fixtures/official-*).

For each SDK version: start the capture server (tests/integration/official/capture_server.py) once
per client-config mode, run that version's capture driver against it inside the official venv,
then distil the request logs into one JSON fixture per call. Builds the venvs when missing.

Run: `python scripts/official_capture.py [--out-root DIR] [VERSION ...]` (or
`make official-capture`). Stdlib only; the work happens in the official venvs.
"""

from __future__ import annotations

import argparse
import os
import selectors
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from official_venvs import ROOT, official_python

HARNESS = ROOT / "tests" / "integration" / "official"
FIXTURES = ROOT / "tests" / "fixtures"
# version -> (driver script, client-config modes of the capture server)
CAPTURES = {
    "0.38.0": ("capture_driver_038.py", ("plain", "features")),
    "0.5.1": ("capture_driver_051.py", ("plain",)),
}


def fixture_dir(version: str, root: Path = FIXTURES) -> Path:
    """tests/fixtures/official-0.38 for 0.38.0, official-0.5.1 for 0.5.1."""
    short = version.removesuffix(".0") if version.count(".") == 2 else version
    return root / f"official-{short}"


def clean_env() -> dict[str, str]:
    """The environment without any TINKER_* setting, so only the driver's arguments count."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("TINKER_", "PYTHON"))}


@contextmanager
def capture_server(python: str, log: Path, mode: str) -> Iterator[str]:
    """Run the capture server in `python` (an official 0.38 venv); yield its base URL."""
    process = subprocess.Popen(
        [python, str(HARNESS / "capture_server.py"), "--log", str(log), "--mode", mode],
        stdout=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    try:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            if not selector.select(60):
                raise RuntimeError("the capture server printed no URL within 60 s")
        url = process.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError(f"the capture server did not start: {url!r}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def capture(version: str, out: Path, work: Path) -> None:
    """Capture one SDK version in every mode and write its fixtures into `out`."""
    driver, modes = CAPTURES[version]
    server_python = official_python("0.38.0", create=True)
    sdk_python = official_python(version, create=True)
    assert server_python and sdk_python
    logs: list[str] = []
    for mode in modes:
        log = work / f"{version}-{mode}.jsonl"
        with capture_server(server_python, log, mode) as url:
            subprocess.run(
                [sdk_python, str(HARNESS / driver), url, mode],
                check=True,
                timeout=600,
                cwd=work,
                env=clean_env(),
            )
        logs.append(f"{mode}={log}")
    command = [server_python, str(HARNESS / "distil.py"), "--driver", str(HARNESS / driver)]
    command += ["--sdk", f"tinker=={version}", "--out", str(out), *logs]
    subprocess.run(command, check=True, env=clean_env())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("versions", nargs="*", default=list(CAPTURES), help="SDK versions")
    parser.add_argument("--out-root", type=Path, default=FIXTURES, help="parent of official-*/")
    args = parser.parse_args(argv)
    for version in args.versions:
        with tempfile.TemporaryDirectory(prefix="tinker-capture-") as work:
            capture(version, fixture_dir(version, args.out_root), Path(work))
    return 0


if __name__ == "__main__":
    sys.exit(main())
