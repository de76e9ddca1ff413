from __future__ import annotations

import json
import os
import pathlib

import pytest
from cli_fakes import Cli

from tinker.types import GetSessionResponse

TRACE = bytes(range(256)) * 1000 + b"\x00end"


@pytest.fixture
def traced(cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> Cli:
    """A session `s-1` whose trace is TRACE, the current directory an empty one."""
    cli.rest.sessions = {"s-1": GetSessionResponse(training_run_ids=[], sampler_ids=[])}
    cli.rest.trace = TRACE
    monkeypatch.chdir(tmp_path)
    return cli


def test_downloads_the_exact_bytes_to_the_default_file(traced: Cli, tmp_path: pathlib.Path) -> None:
    result = traced("session", "export-trace", "s-1")
    assert result.code == 0, result.err
    target = tmp_path / "s-1.pftrace"
    assert target.read_bytes() == TRACE
    assert result.out.splitlines() == [
        "Session ID  Size      Downloaded to",
        "----------  --------  " + "-" * len(str(target)),
        f"s-1         250.0 KB  {target}",
    ]
    assert traced.rest.calls == [("export_session_trace", "s-1")]
    assert os.listdir(tmp_path) == ["s-1.pftrace"]  # no staging file left


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_the_file_gets_the_mode_the_umask_gives(
    traced: Cli, tmp_path: pathlib.Path, umask: int, mode: int
) -> None:
    previous = os.umask(umask)
    try:
        result = traced("session", "export-trace", "s-1")
    finally:
        os.umask(previous)
    assert result.code == 0, result.err
    assert (tmp_path / "s-1.pftrace").stat().st_mode & 0o777 == mode


def test_output_file_or_directory_and_json(traced: Cli, tmp_path: pathlib.Path) -> None:
    named = tmp_path / "sub" / "mine.trace"
    result = traced("-f", "json", "session", "export-trace", "s-1", "-o", str(named))
    assert json.loads(result.out) == {
        "session_id": "s-1",
        "destination": str(named),
        "file_size_bytes": len(TRACE),
    }
    assert named.read_bytes() == TRACE
    folder = tmp_path / "traces"
    folder.mkdir()
    assert traced("session", "export-trace", "s-1", "--output", str(folder)).code == 0
    assert (folder / "s-1.pftrace").read_bytes() == TRACE
    assert traced("session", "export-trace", "s-1", "-o", "new/").code == 0
    assert (tmp_path / "new" / "s-1.pftrace").read_bytes() == TRACE


def test_url_only_prints_just_the_url(traced: Cli, tmp_path: pathlib.Path) -> None:
    result = traced("session", "export-trace", "s-1", "--url-only")
    assert (result.code, result.out, result.err) == (0, traced.rest.trace_url + "\n", "")
    assert os.listdir(tmp_path) == []
    assert traced.rest.sdk.http.seen("/signed/trace.pftrace") == []
    payload = json.loads(traced("session", "export-trace", "s-1", "--url-only", "-f", "json").out)
    assert payload == {"session_id": "s-1", "url": traced.rest.trace_url}


def test_refuses_to_overwrite_unless_forced(traced: Cli, tmp_path: pathlib.Path) -> None:
    target = tmp_path / "s-1.pftrace"
    target.write_bytes(b"mine")
    result = traced("session", "export-trace", "s-1")
    assert (result.code, result.out) == (1, "")
    assert result.err == f"Error: {target} already exists (use --force to replace it)\n"
    assert target.read_bytes() == b"mine"
    assert traced.rest.calls == []  # refused before asking for the export
    assert traced("session", "export-trace", "s-1", "--force").code == 0
    assert target.read_bytes() == TRACE


def test_a_failed_download_leaves_no_file_and_hides_the_url(
    traced: Cli, tmp_path: pathlib.Path
) -> None:
    traced.rest.trace = None
    result = traced("session", "export-trace", "s-1")
    assert result.code == 1
    assert result.err == "Error: downloading the trace of s-1 failed: HTTP 404\n"
    assert "s3cret" not in result.err
    assert os.listdir(tmp_path) == []


def test_unknown_session(traced: Cli) -> None:
    result = traced("session", "export-trace", "s-404")
    assert result.code == 1
    assert result.err.startswith("Error: Resource not found\n")
