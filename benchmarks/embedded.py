"""Run the embedded server (tinker.local.serve) in the foreground; prints its URL first."""

from __future__ import annotations

import tempfile
import threading


def main() -> None:
    import tinker.local

    with tempfile.TemporaryDirectory(prefix="tinker-bench-data-") as data_dir:
        server = tinker.local.serve(port=0, data_dir=data_dir)
        print(server.url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
