from __future__ import annotations

import datetime as dt
import json
import types
from concurrent.futures import Future
from typing import Any

import attrs
import pytest
from cli_fakes import Cli, ago, checkpoint

import tinker.types
from tinker._version import __version__
from tinker.types import GetSessionResponse, TrainingRun


def _run(index: int, **fields: object) -> TrainingRun:
    values: dict[str, object] = {
        "training_run_id": f"run-{index}",
        "base_model": "tinker-local/tiny",
        "model_owner": "alice",
        "is_lora": True,
        "lora_rank": 8,
        "last_request_time": ago(minutes=5),
    }
    values.update(fields)
    return TrainingRun(**values)  # type: ignore[arg-type]


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_version_table_and_json(cli: Cli) -> None:
    result = cli("version")
    assert (result.code, result.out, result.err) == (0, f"tinker {__version__}\n", "")
    assert json.loads(cli("-f", "json", "version").out) == {"version": __version__}
    assert json.loads(cli("version", "--format", "json").out) == {"version": __version__}


def test_run_list_table(cli: Cli) -> None:
    cli.rest.runs = [
        _run(1),
        _run(2, is_lora=False, lora_rank=None, corrupted=True, model_owner="bob"),
        _run(3, lora_rank=None, last_request_time=ago(days=3)),
    ]
    result = cli("run", "list")
    assert result.code == 0
    assert result.out.splitlines() == [
        "3 training runs",
        "Run ID  Base Model         LoRA    Last Update    Status",
        "------  -----------------  ------  -------------  ------",
        "run-1   tinker-local/tiny  Rank 8  5 minutes ago  OK",
        "run-2   tinker-local/tiny  No      5 minutes ago  Failed",
        "run-3   tinker-local/tiny  Yes     3 days ago     OK",
    ]
    assert cli.rest.calls == [("list_training_runs", 20, 0)]
    assert cli.clients.closed


def test_run_list_columns_in_the_order_given(cli: Cli) -> None:
    cli.rest.runs = [
        _run(
            1,
            last_checkpoint=checkpoint("run-1", "training", "0002", time=ago(hours=3)),
            last_sampler_checkpoint=checkpoint("run-1", "sampler", "s1", time=ago(hours=1)),
        ),
        _run(2, model_owner="bob", last_checkpoint=checkpoint("run-2", "training", "0001")),
        _run(3, corrupted=True),
    ]
    result = cli("run", "list", "-c", "checkpoint_time,owner, id,checkpoint,status,owner")
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "3 training runs",
        "Checkpoint Time  Owner  Run ID  Last Checkpoint     Status",
        "---------------  -----  ------  ------------------  ------",
        "1 hour ago       alice  run-1   sampler_weights/s1  OK",
        "5 minutes ago    bob    run-2   weights/0001        OK",
        "-                alice  run-3   -                   Failed",
    ]
    every = cli("run", "list", "--columns", "id,model,owner,lora,updated,status")
    assert every.out.splitlines()[1:4] == [
        "Run ID  Base Model         Owner  LoRA    Last Update    Status",
        "------  -----------------  -----  ------  -------------  ------",
        "run-1   tinker-local/tiny  alice  Rank 8  5 minutes ago  OK",
    ]


def test_run_list_json_ignores_the_columns(cli: Cli) -> None:
    cli.rest.runs = [_run(1)]
    narrow = json.loads(cli("-f", "json", "run", "list", "-c", "id").out)
    assert narrow == json.loads(cli("-f", "json", "run", "list").out)
    assert set(narrow["runs"][0]) >= {"training_run_id", "model_owner", "last_checkpoint"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "id,size",
            "unknown column 'size'; choose from "
            "id, model, owner, lora, updated, status, checkpoint, checkpoint_time",
        ),
        (
            "Id,model,time",
            "unknown columns 'Id', 'time'; choose from "
            "id, model, owner, lora, updated, status, checkpoint, checkpoint_time",
        ),
        (
            " , ",
            "no columns; choose from "
            "id, model, owner, lora, updated, status, checkpoint, checkpoint_time",
        ),
    ],
)
def test_run_list_rejects_unknown_columns(
    cli: Cli, capsys: pytest.CaptureFixture[str], value: str, message: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli("run", "list", "--columns", value)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert error == f"tinker run list: error: argument -c/--columns: {message}"
    assert cli.rest.calls == []


def test_run_list_limit_pages_in_batches_of_100_and_reports_the_rest(cli: Cli) -> None:
    cli.rest.runs = [_run(i) for i in range(250)]
    result = cli("run", "list", "--limit", "120")
    assert result.out.splitlines()[0] == (
        "120 training runs (130 more not shown, use --limit to see more)"
    )
    assert len(result.out.splitlines()) == 3 + 120
    assert cli.rest.calls == [("list_training_runs", 100, 0), ("list_training_runs", 20, 100)]


def test_run_list_limit_zero_fetches_everything(cli: Cli) -> None:
    cli.rest.runs = [_run(i) for i in range(201)]
    result = cli("-f", "json", "run", "list", "--limit", "0")
    runs = json.loads(result.out)["runs"]
    assert [r["training_run_id"] for r in runs] == [f"run-{i}" for i in range(201)]
    assert cli.rest.calls == [
        ("list_training_runs", 100, 0),
        ("list_training_runs", 100, 100),
        ("list_training_runs", 100, 200),
    ]


def test_run_list_json_is_the_model_dump(cli: Cli) -> None:
    run = _run(1, user_metadata={"k": "v"})
    cli.rest.runs = [run]
    payload = json.loads(cli("run", "list", "-f", "json").out)
    assert payload == {
        "runs": [
            {
                "training_run_id": "run-1",
                "base_model": "tinker-local/tiny",
                "model_owner": "alice",
                "is_lora": True,
                "last_request_time": _iso(run.last_request_time),
                "corrupted": False,
                "lora_rank": 8,
                "last_checkpoint": None,
                "last_sampler_checkpoint": None,
                "user_metadata": {"k": "v"},
            }
        ]
    }


def test_run_list_rejects_a_negative_limit(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli("run", "list", "--limit", "-1")
    assert exit_info.value.code == 2
    assert "--limit: must be at least 0, got -1" in capsys.readouterr().err
    assert cli.rest.calls == []


def test_run_info_table(cli: Cli) -> None:
    last = checkpoint("run-1", "training", "0005", time=ago(hours=2))
    cli.rest.runs = [_run(1, last_checkpoint=last, user_metadata={"team": "x", "step": "5"})]
    result = cli("run", "info", "run-1")
    assert result.code == 0
    assert result.out.splitlines() == [
        "Training run run-1",
        "Property                  Value",
        "------------------------  " + "-" * 27,
        "Run ID                    run-1",
        "Base Model                tinker-local/tiny",
        "Owner                     alice",
        "LoRA                      Rank 8",
        "Last Update               5 minutes ago",
        "Status                    OK",
        "Last Training Checkpoint  weights/0005",
        "  Time                    2 hours ago",
        "  Path                    tinker://run-1/weights/0005",
        "Last Sampler Checkpoint   None",
        "Metadata                  team=x, step=5",
    ]
    assert cli.rest.calls == [("get_training_run", "run-1")]


def test_run_info_json_nests_checkpoints(cli: Cli) -> None:
    last = checkpoint("run-1", "sampler", "s1", size_bytes=10, public=True)
    cli.rest.runs = [_run(1, last_sampler_checkpoint=last)]
    payload = json.loads(cli("-f", "json", "run", "info", "run-1").out)
    assert payload["last_sampler_checkpoint"] == {
        "checkpoint_id": "sampler_weights/s1",
        "checkpoint_type": "sampler",
        "time": _iso(last.time),
        "tinker_path": "tinker://run-1/sampler_weights/s1",
        "size_bytes": 10,
        "public": True,
        "expires_at": None,
        "user_metadata": None,
    }


def test_session_list_and_info(cli: Cli) -> None:
    cli.rest.sessions = {
        "s-1": GetSessionResponse(training_run_ids=["run-1", "run-2"], sampler_ids=[]),
        "s-2": GetSessionResponse(training_run_ids=[], sampler_ids=["samp-1"]),
        "s-3": GetSessionResponse(training_run_ids=[], sampler_ids=[]),
    }
    result = cli("session", "list", "--limit", "2", "--offset", "1")
    assert result.out.splitlines() == ["2 sessions", "Session ID", "----------", "s-2", "s-3"]
    assert cli.rest.calls == [("list_sessions", 2, 1)]
    assert json.loads(cli("-f", "json", "session", "list").out) == {
        "sessions": ["s-1", "s-2", "s-3"]
    }

    info = cli("session", "info", "s-1")
    assert info.out.splitlines() == [
        "Session s-1",
        "Property       Value",
        "-------------  ------------",
        "Session ID     s-1",
        "Training Runs  run-1, run-2",
        "Samplers       -",
    ]
    assert json.loads(cli("session", "info", "s-2", "-f", "json").out) == {
        "session_id": "s-2",
        "training_run_ids": [],
        "sampler_ids": ["samp-1"],
    }


def test_connection_options_reach_the_client_factory(cli: Cli) -> None:
    cli("--base-url", "http://x:1", "version")
    cli("--api-key", "tml-secret", "session", "list", "--base-url", "local")
    assert cli.clients.connection is not None
    assert cli.clients.connection.base_url == "local"
    assert cli.clients.connection.api_key == "tml-secret"
    assert "tml-secret" not in repr(cli.clients.connection)


@attrs.frozen
class _Query:
    type: str = "active"


@attrs.frozen
class _Search:
    statuses: list[_Query]
    limit: int
    cursor: str | None


def test_run_info_status_follows_the_sessions_heartbeats(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In `run info`, runs of live sessions are Active; those of sessions the service no longer
    sees alive (their process died long ago) are Ended; the active sessions are searched page
    by page. `run list` says only OK or Failed, and searches nothing."""
    monkeypatch.setattr(tinker.types, "SessionSearchRequest", _Search, raising=False)
    monkeypatch.setattr(tinker.types, "ActiveSessionStatusQuery", _Query, raising=False)
    pages = {None: (["s-live"], "page-2"), "page-2": (["s-other"], None)}
    searches: list[_Search] = []

    def search_sessions(request: _Search) -> Future[Any]:
        searches.append(request)
        ids, next_cursor = pages[request.cursor]
        future: Future[Any] = Future()
        sessions = [types.SimpleNamespace(session_id=i) for i in ids]
        future.set_result(types.SimpleNamespace(sessions=sessions, next_cursor=next_cursor))
        return future

    monkeypatch.setattr(cli.rest, "search_sessions", search_sessions, raising=False)
    cli.rest.runs = [
        _run(1, training_run_id="s-live:train:0"),
        _run(2, training_run_id="s-dead:train:0", last_request_time=ago(days=40)),
        _run(3, training_run_id="s-live:train:1", corrupted=True),
        _run(4, training_run_id="legacy-run"),
    ]
    result = cli("run", "list")
    assert result.code == 0, result.err
    statuses = {line.split()[0]: line.split()[-1] for line in result.out.splitlines()[3:]}
    assert statuses == {
        "s-live:train:0": "OK",
        "s-dead:train:0": "OK",
        "s-live:train:1": "Failed",
        "legacy-run": "OK",
    }
    assert searches == []

    states = {}
    for run in cli.rest.runs:
        info = cli("run", "info", run.training_run_id).out.splitlines()
        states[run.training_run_id] = next(line for line in info if line.startswith("Status"))
    assert states == {
        "s-live:train:0": "Status                    Active",
        "s-dead:train:0": "Status                    Ended",
        "s-live:train:1": "Status                    Failed",
        "legacy-run": "Status                    OK",
    }
    assert [s.cursor for s in searches[:2]] == [None, "page-2"]
    assert searches[0].statuses == [_Query("active")] and searches[0].limit == 200
