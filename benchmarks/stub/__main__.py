"""Run the stub in the foreground: `python -m benchmarks.stub` prints its URL, then serves."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json

from benchmarks.stub.http import start_stub


async def _serve(host: str, port: int, config: dict[str, object]) -> None:
    server, state = await start_stub(host, port)
    for name, value in config.items():
        setattr(state.config, name, value)
    bound = server.sockets[0].getsockname()
    print(f"http://{bound[0]}:{bound[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--config", default="{}", help="JSON object of StubConfig fields")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host, args.port, json.loads(args.config)))


if __name__ == "__main__":
    main()
