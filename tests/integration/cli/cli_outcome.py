"""Running the CLI in-process against a real server, its output captured."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

import attrs

from tinker.cli import main
from tinker.cli.context import Context


@attrs.frozen
class Outcome:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run_cli(url: str, api_key: str, argv: Sequence[str], *, answer: str = "y") -> Outcome:
    """`tinker ARGV --base-url URL --api-key KEY`, prompts answered with `answer`."""
    out, err = io.StringIO(), io.StringIO()
    ctx = Context(stdout=out, stderr=err, prompt=lambda _: answer, interactive=True)
    code = main([*argv, "--base-url", url, "--api-key", api_key], context=ctx)
    return Outcome(code, out.getvalue(), err.getvalue())
