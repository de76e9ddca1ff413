from __future__ import annotations

import datetime as dt
import json
import pathlib

import pytest
from cli_fakes import Cli

from tinker.cli.csv_output import csv_cell, write_csv
from tinker.types import (
    BillingUsageEvent,
    BillingUsageResponse,
    BillingUsageSession,
    CheckpointBillingEvent,
    CurrentCheckpointStorageUsageItem,
    CurrentCheckpointStorageUsageResponse,
    SamplingPrefillBillingEvent,
    StorageBillingEvent,
    TrainingBillingEvent,
)

UTC = dt.timezone.utc
START = dt.datetime(2026, 1, 1, tzinfo=UTC)
END = dt.datetime(2026, 1, 2, tzinfo=UTC)
USAGE_PATH = "/api/v1/billing/usage/events"


def _event(hour: int, info: object, **fields: object) -> BillingUsageEvent:
    values: dict[str, object] = {
        "bucket_start": START + dt.timedelta(hours=hour),
        "bucket_end": START + dt.timedelta(hours=hour + 1),
        "base_model": "tinker-local/tiny",
        "user_id": "user-1",
        "user_name": "alice",
        "session_id": "s-1",
        "project_id": "default",
        "event_info": info,
    }
    values.update(fields)
    return BillingUsageEvent(**values)  # type: ignore[arg-type]


def _usage() -> BillingUsageResponse:
    return BillingUsageResponse(
        data=[
            _event(
                0,
                TrainingBillingEvent(token_count=1_200_000),
                estimated_cost_usd=0.6,
                effective_rate_usd_per_million_tokens=0.5,
            ),
            _event(
                0,
                SamplingPrefillBillingEvent(cached=True, token_count=300),
                session_id="s-2",
                user_name=None,
                estimated_cost_usd=0.0003,
            ),
            _event(5, CheckpointBillingEvent(count=2), base_model=None),
            _event(
                6,
                StorageBillingEvent(free=True, gigabyte_hours=1.5),
                estimated_cost_usd=0.0,
                effective_rate_usd_per_gigabyte_month=0.02,
            ),
        ],
        sessions={
            "s-1": BillingUsageSession(user_metadata={"team": "a", "step": 3}),
            "s-2": BillingUsageSession(user_metadata=None),
        },
        cost_data_through=dt.datetime(2026, 1, 1, 18, tzinfo=UTC),
    )


def test_usage_table(cli: Cli) -> None:
    cli.admin.usage = _usage()
    result = cli("billing", "usage", "2026-01-01", "2026-01-02")
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "4 usage events, 2026-01-01 00:00 UTC to 2026-01-02 00:00 UTC",
        "Hour                  Type                       Base Model         Session  Project  "
        "User    Amount            Cost (USD)",
        "--------------------  -------------------------  -----------------  -------  -------  "
        "------  ----------------  ----------",
        "2026-01-01 00:00 UTC  training                   tinker-local/tiny  s-1      default  "
        "alice   1,200,000 tokens  0.6000",
        "2026-01-01 00:00 UTC  sampling_prefill (cached)  tinker-local/tiny  s-2      default  "
        "user-1  300 tokens        0.0003",
        "2026-01-01 05:00 UTC  checkpoint                 -                  s-1      default  "
        "alice   2 checkpoints     -",
        "2026-01-01 06:00 UTC  storage (free)             tinker-local/tiny  s-1      default  "
        "alice   1.500 GB-hours    0.0000",
        "Estimated cost: 0.6003 USD (data through 2026-01-01 18:00 UTC)",
    ]
    assert cli.admin.calls == [("get_billing_usage", START, END)]
    (request,) = cli.rest.sdk.http.seen(USAGE_PATH)
    assert request.params == {
        "starting_on": "2026-01-01T00:00:00Z",
        "ending_before": "2026-01-02T00:00:00Z",
    }


def test_usage_json_is_the_whole_response(cli: Cli) -> None:
    cli.admin.usage = _usage()
    payload = json.loads(cli("-f", "json", "billing", "usage", "2026-01-01", "2026-01-02").out)
    assert payload["cost_data_through"] == "2026-01-01T18:00:00Z"
    assert payload["sessions"] == {
        "s-1": {"user_metadata": {"team": "a", "step": 3}},
        "s-2": {"user_metadata": None},
    }
    assert len(payload["data"]) == 4
    assert payload["data"][1] == {
        "bucket_start": "2026-01-01T00:00:00Z",
        "bucket_end": "2026-01-01T01:00:00Z",
        "base_model": "tinker-local/tiny",
        "user_id": "user-1",
        "user_name": None,
        "session_id": "s-2",
        "project_id": "default",
        "estimated_cost_usd": 0.0003,
        "effective_rate_usd_per_million_tokens": None,
        "effective_rate_usd_per_gigabyte_month": None,
        "event_info": {"type": "sampling_prefill", "cached": True, "token_count": 300},
    }


USAGE_CSV_HEADER = (
    "bucket_start,bucket_end,base_model,user_id,user_name,session_id,project_id,"
    "estimated_cost_usd,effective_rate_usd_per_million_tokens,"
    "effective_rate_usd_per_gigabyte_month,type,token_count,cached,count,gigabyte_hours,free"
)


def test_usage_csv_to_stdout_replaces_the_table(cli: Cli) -> None:
    cli.admin.usage = _usage()
    result = cli("billing", "usage", "2026-01-01T00:00Z", "2026-01-02", "--csv", "-")
    assert result.code == 0, result.err
    assert result.err == ""
    assert result.out.splitlines() == [
        USAGE_CSV_HEADER,
        "2026-01-01T00:00:00Z,2026-01-01T01:00:00Z,tinker-local/tiny,user-1,alice,s-1,default,"
        "0.6,0.5,,training,1200000,,,,",
        "2026-01-01T00:00:00Z,2026-01-01T01:00:00Z,tinker-local/tiny,user-1,,s-2,default,"
        "0.0003,,,sampling_prefill,300,true,,,",
        "2026-01-01T05:00:00Z,2026-01-01T06:00:00Z,,user-1,alice,s-1,default,,,,checkpoint,,,2,,",
        "2026-01-01T06:00:00Z,2026-01-01T07:00:00Z,tinker-local/tiny,user-1,alice,s-1,default,"
        "0.0,,0.02,storage,,,,1.5,true",
    ]


def test_usage_csv_files_keep_the_table_on_stdout(cli: Cli, tmp_path: pathlib.Path) -> None:
    cli.admin.usage = _usage()
    events, sessions = tmp_path / "events.csv", tmp_path / "sessions.csv"
    events.write_text("old contents\n")
    result = cli(
        "billing",
        "usage",
        "2026-01-01",
        "2026-01-02",
        "--csv",
        str(events),
        "--sessions-csv",
        str(sessions),
    )
    assert result.code == 0, result.err
    assert result.out.startswith("4 usage events, ")
    assert result.err.splitlines() == [
        f"Wrote 4 usage events to {events}",
        f"Wrote 2 sessions to {sessions}",
    ]
    assert events.read_text().splitlines()[0] == USAGE_CSV_HEADER
    assert len(events.read_text().splitlines()) == 5
    assert sessions.read_text() == "session_id,step,team\ns-1,3,a\ns-2,,\n"


def test_usage_sessions_csv_to_stdout(cli: Cli) -> None:
    cli.admin.usage = _usage()
    result = cli(
        "-f", "json", "billing", "usage", "2026-01-01", "2026-01-02", "--sessions-csv", "-"
    )
    assert (result.code, result.out) == (0, "session_id,step,team\r\ns-1,3,a\r\ns-2,,\r\n")


def test_usage_refuses_two_csvs_on_stdout(cli: Cli) -> None:
    result = cli(
        "billing", "usage", "2026-01-01", "2026-01-02", "--csv", "-", "--sessions-csv", "-"
    )
    assert result.code == 1
    assert result.err == (
        "Error: only one of --csv and --sessions-csv can be '-' (standard output)\n"
    )
    assert cli.admin.calls == []


def test_usage_with_no_events(cli: Cli) -> None:
    result = cli("billing", "usage", "2026-01-01", "2026-01-02")
    assert result.out.splitlines() == [
        "0 usage events, 2026-01-01 00:00 UTC to 2026-01-02 00:00 UTC",
        "Hour  Type  Base Model  Session  Project  User  Amount  Cost (USD)",
        "----  ----  ----------  -------  -------  ----  ------  ----------",
        "Estimated cost: - USD (data through -)",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ("2026-13-01", "2026-01-02"),
            "argument STARTING_ON: expected an ISO date (2026-01-31) or a time on the hour "
            "(2026-01-31T09:00Z), got '2026-13-01'",
        ),
        (
            ("2026-01-01", "yesterday"),
            "argument ENDING_BEFORE: expected an ISO date (2026-01-31) or a time on the hour "
            "(2026-01-31T09:00Z), got 'yesterday'",
        ),
        (
            ("2026-01-01T09:30Z", "2026-01-02"),
            "argument STARTING_ON: must be on a full hour (UTC), got '2026-01-01T09:30Z'",
        ),
        (
            ("2026-01-01", "2026-01-01T10:00+05:30"),
            "argument ENDING_BEFORE: must be on a full hour (UTC), got '2026-01-01T10:00+05:30'",
        ),
    ],
)
def test_bad_dates_are_usage_errors_with_nothing_sent(
    cli: Cli, capsys: pytest.CaptureFixture[str], argv: tuple[str, str], message: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli("billing", "usage", *argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"tinker billing usage: error: {message}"
    assert cli.admin.calls == []
    assert cli.rest.sdk.http.requests == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ("2026-01-02", "2026-01-02"),
            "ENDING_BEFORE must be after STARTING_ON "
            "(STARTING_ON 2026-01-02 00:00 UTC, ENDING_BEFORE 2026-01-02 00:00 UTC)",
        ),
        (
            ("2026-01-01", "2026-01-15T01:00Z"),
            "ENDING_BEFORE must be at most 14 days after STARTING_ON "
            "(STARTING_ON 2026-01-01 00:00 UTC, ENDING_BEFORE 2026-01-15 01:00 UTC)",
        ),
        (
            ("2999-01-01", "2999-01-02"),
            "STARTING_ON must not be in the future (2999-01-01 00:00 UTC)",
        ),
    ],
)
def test_bad_windows_are_refused_with_nothing_sent(
    cli: Cli, argv: tuple[str, str], message: str
) -> None:
    result = cli("billing", "usage", *argv)
    assert (result.code, result.out, result.err) == (1, "", f"Error: {message}\n")
    assert cli.admin.calls == []
    assert cli.rest.sdk.http.requests == []


def test_a_fourteen_day_window_is_allowed(cli: Cli) -> None:
    result = cli("billing", "usage", "2026-01-01", "2026-01-15")
    assert result.code == 0, result.err
    assert cli.admin.calls == [("get_billing_usage", START, dt.datetime(2026, 1, 15, tzinfo=UTC))]


def _storage() -> CurrentCheckpointStorageUsageResponse:
    return CurrentCheckpointStorageUsageResponse(
        effective_rate_usd_per_gigabyte_month=0.02,
        data=[
            CurrentCheckpointStorageUsageItem(
                project_id="default",
                org_user_urn="urn:user:1",
                user_email="alice@example.com",
                user_name="Alice",
                checkpoint_count=3,
                size_bytes=3 * 1024**3,
                size_gigabytes=3.221225472,
                estimated_monthly_cost_usd=0.0644,
            ),
            CurrentCheckpointStorageUsageItem(
                project_id="research",
                org_user_urn="urn:user:2",
                checkpoint_count=1,
                size_bytes=512,
                size_gigabytes=5.12e-07,
            ),
        ],
    )


def test_checkpoint_storage_table(cli: Cli) -> None:
    cli.admin.storage = _storage()
    result = cli("billing", "checkpoint-storage")
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "Checkpoint storage: 4 checkpoints, 3.0 GB (rate 0.0200 USD per GB-month)",
        "Project   Owner              Checkpoints  Size    Monthly Cost (USD)",
        "--------  -----------------  -----------  ------  ------------------",
        "default   alice@example.com  3            3.0 GB  0.0644",
        "research  urn:user:2         1            512 B   -",
    ]
    assert cli.admin.calls == [("get_current_checkpoint_storage_usage", None)]
    assert cli.rest.sdk.http.seen("/api/v1/billing/usage/checkpoints/current")[0].query == ""


def test_checkpoint_storage_of_a_project_json_and_csv(cli: Cli, tmp_path: pathlib.Path) -> None:
    cli.admin.storage = _storage()
    out = tmp_path / "storage.csv"
    result = cli(
        "-f", "json", "billing", "checkpoint-storage", "--project-id", "default", "--csv", str(out)
    )
    assert result.code == 0, result.err
    assert json.loads(result.out) == {
        "effective_rate_usd_per_gigabyte_month": 0.02,
        "data": [
            {
                "project_id": "default",
                "org_user_urn": "urn:user:1",
                "user_email": "alice@example.com",
                "user_name": "Alice",
                "checkpoint_count": 3,
                "size_bytes": 3 * 1024**3,
                "size_gigabytes": 3.221225472,
                "estimated_monthly_cost_usd": 0.0644,
            },
            {
                "project_id": "research",
                "org_user_urn": "urn:user:2",
                "user_email": None,
                "user_name": None,
                "checkpoint_count": 1,
                "size_bytes": 512,
                "size_gigabytes": 5.12e-07,
                "estimated_monthly_cost_usd": None,
            },
        ],
    }
    assert result.err == f"Wrote 2 storage rows to {out}\n"
    assert out.read_text().splitlines() == [
        "project_id,org_user_urn,user_email,user_name,checkpoint_count,size_bytes,"
        "size_gigabytes,estimated_monthly_cost_usd",
        "default,urn:user:1,alice@example.com,Alice,3,3221225472,3.221225472,0.0644",
        "research,urn:user:2,,,1,512,5.12e-07,",
    ]
    assert cli.admin.calls == [("get_current_checkpoint_storage_usage", "default")]
    (request,) = cli.rest.sdk.http.seen("/api/v1/billing/usage/checkpoints/current")
    assert request.params == {"project_id": "default"}


def test_checkpoint_storage_csv_to_stdout(cli: Cli) -> None:
    cli.admin.storage = _storage()
    result = cli("billing", "checkpoint-storage", "--csv", "-")
    assert result.out.splitlines()[2] == "research,urn:user:2,,,1,512,5.12e-07,"
    assert len(result.out.splitlines()) == 3


def test_checkpoint_storage_refuses_an_empty_project(cli: Cli) -> None:
    result = cli("billing", "checkpoint-storage", "--project-id", " ")
    assert (result.code, result.err) == (1, "Error: --project-id must not be empty\n")
    assert cli.admin.calls == []


def test_csv_text_that_starts_like_a_formula_is_quoted_and_numbers_stay_numbers(
    cli: Cli,
) -> None:
    cli.admin.usage = BillingUsageResponse(
        data=[
            _event(
                0,
                TrainingBillingEvent(token_count=10),
                user_name='=HYPERLINK("http://x","y")',
                session_id="+s",
                project_id="-p",
                base_model="@m",
                estimated_cost_usd=-0.25,
            )
        ],
        sessions={
            "+s": BillingUsageSession(user_metadata={"=key": "\tx", "delta": -3, "plain": "a-b"})
        },
        cost_data_through=END,
    )
    events = cli("billing", "usage", "2026-01-01", "2026-01-02", "--csv", "-")
    assert events.out.splitlines()[1] == (
        '2026-01-01T00:00:00Z,2026-01-01T01:00:00Z,\'@m,user-1,"\'=HYPERLINK(""http://x"",'
        '""y"")",\'+s,\'-p,-0.25,,,training,10,,,,'
    )
    sessions = cli("billing", "usage", "2026-01-01", "2026-01-02", "--sessions-csv", "-")
    assert sessions.out == "session_id,'=key,delta,plain\r\n'+s,'\tx,-3,a-b\r\n"


@pytest.mark.parametrize(
    ("value", "cell"),
    [("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@A1", "'@A1"), ("\tx", "'\tx"),
     ("\rx", "'\rx"), ("a=b", "a=b"), ("", ""), (-1, "-1"), (-0.5, "-0.5"), (None, ""),
     (False, "false"), ({"a": "=x"}, '{"a": "=x"}')],
)  # fmt: skip
def test_csv_cells(value: object, cell: str) -> None:
    assert csv_cell(value) == cell


def test_a_cell_with_line_breaks_stays_in_its_row(tmp_path: pathlib.Path) -> None:
    import csv
    import io

    from tinker.cli.context import Context

    path = tmp_path / "rows.csv"
    ctx = Context(stdout=io.StringIO(), stderr=io.StringIO())
    write_csv(ctx, str(path), ["name", "n"], [["a\rb", 1], ["c\nd", 2]], "rows")
    with open(path, newline="", encoding="utf-8") as handle:
        assert list(csv.reader(handle)) == [["name", "n"], ["a\rb", "1"], ["c\nd", "2"]]


def test_csv_to_a_newline_translating_stdout_keeps_crlf_line_ends() -> None:
    import io

    from tinker.cli.context import Context

    raw = io.BytesIO()
    stdout = io.TextIOWrapper(raw, encoding="utf-8", newline="\r\n")  # as on Windows
    stdout.write("before\n")
    write_csv(Context(stdout=stdout, stderr=io.StringIO()), "-", ["a"], [["x"]], "rows")
    assert raw.getvalue() == b"before\r\na\r\nx\r\n"
