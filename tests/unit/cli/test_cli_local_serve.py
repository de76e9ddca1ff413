from __future__ import annotations

import sys
import types as pytypes

import pytest
from cli_fakes import Cli


@pytest.fixture
def server_main(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Stands in for `python -m tinker.local`'s main: records its argv, 'stops' with Ctrl-C."""
    calls: list[list[str]] = []

    def main(argv: list[str]) -> int:
        calls.append(list(argv))
        return 130

    module = pytypes.ModuleType("tinker.local.__main__")
    module.main = main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tinker.local.__main__", module)
    return calls


def test_local_serve_passes_every_option_through(cli: Cli, server_main: list[list[str]]) -> None:
    argv = ["--host", "0.0.0.0", "--port", "9000", "--data-dir", "/tmp/d", "--api-key", "k",
            "--faults", "train.5xx=0.1,seed=1", "--help"]  # fmt: skip
    result = cli("local", "serve", *argv)
    assert result.code == 130
    assert server_main == [["serve", *argv]]
    assert cli.rest.calls == []


def test_extra_arguments_are_refused_elsewhere(cli: Cli, server_main: list[list[str]]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli("session", "list", "--port", "1")
    assert exit_info.value.code == 2
    assert server_main == []
