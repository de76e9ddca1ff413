"""`tinker session search` and `tinker auth whoami`: the requests they build (criteria, pages by
cursor, the limit), what they print, and the message when the SDK lacks the 0.38 methods."""

from __future__ import annotations

import datetime as dt
import json
import types
from concurrent.futures import Future
from typing import Any

import attrs
import pytest
from cli_fakes import Cli

import tinker.types

_NOW = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.timezone.utc)


@attrs.frozen
class _Tag:
    """Stands in for the 0.38 tagged query and owner types."""

    type: str


@attrs.frozen
class _Request:
    session_id: str | None
    display_name: str | None
    user_metadata: dict[str, str]
    owner: _Tag
    limit: int
    cursor: str | None
    statuses: list[_Tag] | None = None


def _tagged(kind: str) -> type[_Tag]:
    return type(f"{kind}Tag", (_Tag,), {"__init__": lambda self: _Tag.__init__(self, kind)})


_TYPES = {
    "SessionSearchRequest": _Request,
    "OwnSearchOwner": _tagged("own"),
    "AccessibleSearchOwner": _tagged("accessible"),
    "ActiveSessionStatusQuery": _tagged("active"),
    "CancelledSessionStatusQuery": _tagged("cancelled"),
    "FailedSessionStatusQuery": _tagged("failed"),
    "ClientFinishedSessionStatusQuery": _tagged("client_finished"),
}


def _done(value: Any) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_result(value)
    return future


def _summary(index: int, status: Any) -> Any:
    return types.SimpleNamespace(
        session_id=f"s{index}",
        display_name=f"run \x1b[31m{index}",
        created_at=_NOW,
        status=status,
        checkpoints_count=index,
        checkpoint_storage_bytes=2048 * index,
        user_metadata={"k": "v"},
    )


@pytest.fixture
def searchable(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> list[_Request]:
    """The 0.38 types and a search_sessions answering 5 sessions in pages of 2 (by cursor)."""
    for name, value in _TYPES.items():
        monkeypatch.setattr(tinker.types, name, value, raising=False)
    statuses = [
        types.SimpleNamespace(type="active"),
        types.SimpleNamespace(type="failed", category="user"),
        types.SimpleNamespace(type="client_finished", reason=types.SimpleNamespace(type="success")),
        types.SimpleNamespace(type="cancelled"),
        None,
    ]
    sessions = [_summary(i, status) for i, status in enumerate(statuses)]
    requests: list[_Request] = []

    def search_sessions(request: _Request) -> Future[Any]:
        requests.append(request)
        start = int(request.cursor or 0)
        page = sessions[start : start + min(2, request.limit)]
        end = start + len(page)
        return _done(
            types.SimpleNamespace(
                sessions=page, next_cursor=str(end) if end < len(sessions) else None
            )
        )

    monkeypatch.setattr(cli.rest, "search_sessions", search_sessions, raising=False)
    return requests


def test_search_sends_the_criteria_and_pages_by_cursor(
    cli: Cli, searchable: list[_Request]
) -> None:
    result = cli(
        "session", "search", "my run", "--id", "s1", "--status", "active", "--status", "finished",
        "--status", "active", "--metadata", "team=a", "--metadata", "x=1=2", "--owner",
        "accessible", "--limit", "0",
    )  # fmt: skip
    assert result.code == 0, result.err
    first = searchable[0]
    assert (first.display_name, first.session_id) == ("my run", "s1")
    assert first.user_metadata == {"team": "a", "x": "1=2"}
    assert first.owner.type == "accessible"
    assert [query.type for query in first.statuses or []] == ["active", "client_finished"]
    assert [(r.cursor, r.limit) for r in searchable] == [(None, 200), ("2", 200), ("4", 200)]
    lines = result.out.splitlines()
    assert lines[0] == "5 sessions"
    headers = ["Session", "ID", "Name", "Created", "Status", "Checkpoints", "Storage"]
    assert lines[1].split() == headers
    column = lines[1].index("Status")
    statuses = [f"{line.split()[0]} {line[column:].split('  ')[0]}" for line in lines[3:]]
    assert statuses == [
        "s0 active",
        "s1 failed (user)",
        "s2 finished (success)",
        "s3 cancelled",
        "s4 -",
    ]
    assert "run \\x1b[31m1" in lines[4]  # names cannot drive the terminal


def test_search_stops_at_the_limit_and_says_more_match(
    cli: Cli, searchable: list[_Request]
) -> None:
    result = cli("session", "search", "--limit", "3")
    assert result.code == 0, result.err
    assert [(r.cursor, r.limit) for r in searchable] == [(None, 3), ("2", 1)]
    assert searchable[0].display_name is None and searchable[0].statuses is None
    assert searchable[0].owner.type == "own"
    assert result.out.splitlines()[0] == "3 sessions (more match: raise --limit)"

    as_json = json.loads(cli("-f", "json", "session", "search", "--limit", "1").out)
    assert as_json == {
        "sessions": [
            {
                "session_id": "s0",
                "display_name": "run \x1b[31m0",
                "created_at": "2026-01-02T03:04:00+00:00",
                "status": "active",
                "checkpoints_count": 0,
                "user_metadata": {"k": "v"},
            }
        ]
    }


def test_bad_metadata_is_a_usage_error(cli: Cli, searchable: list[_Request]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli("session", "search", "--metadata", "novalue")
    assert exit_info.value.code == 2
    assert searchable == []


def test_whoami(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    identity = types.SimpleNamespace(email="a@b.c", user_urn="urn:user:1", org_urn="urn:org:9")
    monkeypatch.setattr(cli.rest, "whoami", lambda: _done(identity), raising=False)
    result = cli("auth", "whoami")
    assert result.code == 0, result.err
    assert result.out.splitlines()[2:] == [
        "Email         a@b.c",
        "User          urn:user:1",
        "Organization  urn:org:9",
    ]
    assert json.loads(cli("auth", "whoami", "-f", "json").out) == {
        "email": "a@b.c",
        "user": "urn:user:1",
        "organization": "urn:org:9",
    }


@pytest.mark.parametrize(
    ("argv", "method"),
    [(["auth", "whoami"], "whoami"), (["session", "search"], "search_sessions")],
)
def test_without_the_038_methods_the_message_says_so(
    cli: Cli, argv: list[str], method: str
) -> None:
    if hasattr(cli.rest, method):
        pytest.skip(f"the SDK's RestClient has {method}()")
    result = cli(*argv)
    assert result.code == 1
    assert result.err == (
        f"Error: this SDK's RestClient has no {method}() (it needs a 0.38 service)\n"
    )
