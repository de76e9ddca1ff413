"""`python -m tinker.local serve` in a subprocess, for tests that kill or measure the server."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys


class ServerProcess:
    """A server in its own process; its URL is read from its first line."""

    def __init__(
        self,
        data_dir: pathlib.Path,
        port: int = 0,
        *,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "tinker.local", "serve", "--port", str(port)),
                *("--data-dir", str(data_dir), "--long-poll-seconds", "1"),
                *("--log-level", "WARNING", *args),
            ],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "TINKER_TELEMETRY": "0", **(env or {})},
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline()
        assert first.startswith("Tinker local server: "), first
        self.url = first.split(": ", 1)[1].strip()
        self.port = int(self.url.rsplit(":", 1)[1])

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """Kill the process if it still runs and release its pipe."""
        if self.process.poll() is None:
            self.kill()
        if self.process.stdout is not None:
            self.process.stdout.close()
