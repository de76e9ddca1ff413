"""Child processes of a benchmark run: servers (stub, embedded) and one-workload client runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RUNNER = Path(__file__).resolve().parent / "client_runner.py"
API_KEY = "tml-bench-key"  # the official SDK 0.38 refuses keys without the prefix


class RunFailed(RuntimeError):
    """A client run exited badly; the message carries the tail of its stderr."""


@dataclass(frozen=True)
class Server:
    """A server child process: its base URL and pid (whose CPU time the runners read)."""

    url: str
    pid: int


@contextmanager
def serve(module: str, *args: str, startup_timeout: float = 120.0) -> Iterator[Server]:
    """Start `python -m module args` from the repo root; it prints its URL on the first line."""
    with tempfile.TemporaryFile("w+") as stderr:
        # stderr goes to a file: a chatty server must never block on a full pipe.
        process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            line = _first_line(process, startup_timeout)
            if not line.startswith("http"):
                process.kill()
                process.wait()
                stderr.seek(0)
                last = (stderr.read().strip().splitlines() or [line])[-1]
                raise RunFailed(f"{module} did not start: {last[:400]}")
            yield Server(line, process.pid)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    import selectors

    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            return f"no URL printed within {timeout} s"
    return process.stdout.readline().strip()


def run_client(
    python: str,
    workload: str,
    *,
    impl: str = "sdk",
    url: str = "",
    params: Mapping[str, Any] | None = None,
    profile: bool = False,
    timeout: float = 300.0,
) -> dict[str, Any]:
    """Run one workload in a fresh interpreter and return its JSON result."""
    command = [python, str(RUNNER), workload, "--impl", impl, "--url", url]
    command += ["--params", json.dumps(dict(params or {}))]
    if profile:
        command.append("--profile")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TINKER_", "PYTHON"))}
    env.update(TINKER_API_KEY=API_KEY, TINKER_BASE_URL=url or "http://127.0.0.1:9")
    # A neutral working directory, so no interpreter picks up this checkout's tinker/ by accident.
    with tempfile.TemporaryDirectory(prefix="tinker-bench-") as cwd:
        try:
            done = subprocess.run(
                command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired as exc:
            raise RunFailed(f"{workload} did not finish within {timeout} s") from exc
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise RunFailed(f"{workload} failed (exit {done.returncode}): {tail[0][:400]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def official_python(create: bool, version: str = "0.5.1") -> str | None:
    """The official SDK venv's interpreter (scripts/official_venvs.py builds it with `create`)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import official_venvs

    return official_venvs.official_python(version, create=create)
