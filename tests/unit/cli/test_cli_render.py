from __future__ import annotations

import datetime as dt
import enum

import pytest
from cli_fakes import Cli

from tinker.cli.render import (
    as_datetime,
    format_lora,
    format_size,
    format_time,
    format_timestamp,
    table,
    to_jsonable,
)
from tinker.types import Checkpoint

NOW = dt.datetime(2026, 3, 31, 12, 0, 0, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (dt.timedelta(seconds=0), "just now"),
        (dt.timedelta(seconds=59), "just now"),
        (dt.timedelta(seconds=-30), "just now"),  # clock skew: a time slightly in the future
        (dt.timedelta(minutes=1), "1 minute ago"),
        (dt.timedelta(minutes=59, seconds=59), "59 minutes ago"),
        (dt.timedelta(hours=1), "1 hour ago"),
        (dt.timedelta(hours=23), "23 hours ago"),
        (dt.timedelta(days=1), "1 day ago"),
        (dt.timedelta(days=6), "6 days ago"),
        (dt.timedelta(days=7), "1 week ago"),
        (dt.timedelta(days=30), "4 weeks ago"),
        (dt.timedelta(days=30, seconds=1), "2026-03-01"),
        (dt.timedelta(days=365), "2025-03-31"),
    ],
)
def test_relative_times(delta: dt.timedelta, expected: str) -> None:
    assert format_time(NOW - delta, now=NOW) == expected


def test_times_from_strings_and_naive_datetimes_are_utc() -> None:
    assert format_time("2026-03-31T11:58:00Z", now=NOW) == "2 minutes ago"
    assert format_time("2026-03-31T09:00:00.12+00:00", now=NOW) == "2 hours ago"
    assert format_time(dt.datetime(2026, 3, 31, 11, 0), now=NOW) == "1 hour ago"
    assert format_time(None, now=NOW) == "-"


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (None, "-"),
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KB"),
        (1536, "1.5 KB"),
        (5 * 1024**2, "5.0 MB"),
        (3 * 1024**3 + 1024**3 // 2, "3.5 GB"),
        (2 * 1024**4, "2.0 TB"),
        (2048 * 1024**4, "2048.0 TB"),
    ],
)
def test_sizes_use_base_1024(size: int | None, expected: str) -> None:
    assert format_size(size) == expected


def test_absolute_timestamps_are_utc_to_the_minute() -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert format_timestamp(dt.datetime(2026, 4, 2, 14, 30, 59, tzinfo=plus_two)) == (
        "2026-04-02 12:30 UTC"
    )
    assert format_timestamp("2026-04-02T12:30:00Z") == "2026-04-02 12:30 UTC"
    assert format_timestamp(None) == "-"


def test_lora_column() -> None:
    assert format_lora(True, 8) == "Rank 8"
    assert format_lora(True, None) == "Yes"
    assert format_lora(False, None) == "No"


def test_table_aligns_columns_and_strips_trailing_space() -> None:
    text = table("Title", ("A", "Longer"), [("xyz", "1"), ("q", "")])
    assert text.splitlines() == [
        "Title",
        "A    Longer",
        "---  ------",
        "xyz  1",
        "q",
    ]


class Color(enum.Enum):
    RED = "red"


def test_to_jsonable_converts_models_datetimes_and_enums() -> None:
    checkpoint = Checkpoint(
        checkpoint_id="weights/a",
        checkpoint_type="training",
        time=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        tinker_path="tinker://r/weights/a",
    )
    value = {"items": [checkpoint], "when": dt.datetime(2026, 1, 2), "color": Color.RED}
    assert to_jsonable(value) == {
        "items": [
            {
                "checkpoint_id": "weights/a",
                "checkpoint_type": "training",
                "time": "2026-01-02T03:04:05Z",
                "tinker_path": "tinker://r/weights/a",
                "size_bytes": None,
                "public": False,
                "expires_at": None,
                "user_metadata": None,
            }
        ],
        "when": "2026-01-02T00:00:00+00:00",
        "color": "red",
    }


def test_to_jsonable_rejects_unknown_objects() -> None:
    with pytest.raises(TypeError, match="cannot render object as JSON"):
        to_jsonable(object())


def _utc(*parts: int, offset: dt.timedelta | None = None) -> dt.datetime:
    zone = dt.timezone.utc if offset is None else dt.timezone(offset)
    return dt.datetime(*parts, tzinfo=zone)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-31", _utc(2026, 1, 31)),
        ("2026-01-31T12:05", _utc(2026, 1, 31, 12, 5)),
        ("2026-01-31 12:05:09", _utc(2026, 1, 31, 12, 5, 9)),
        ("2026-01-31T12:05:09.5", _utc(2026, 1, 31, 12, 5, 9, 500000)),
        ("2026-01-31T12:05:09.123456Z", _utc(2026, 1, 31, 12, 5, 9, 123456)),
        ("2026-01-31T12:05Z", _utc(2026, 1, 31, 12, 5)),
        ("2026-01-31T13:05+01:00", _utc(2026, 1, 31, 13, 5, offset=dt.timedelta(hours=1))),
        ("2026-01-31 07:35:00-04:30",
         _utc(2026, 1, 31, 7, 35, offset=-dt.timedelta(hours=4, minutes=30))),
        ("  2026-01-31  ", _utc(2026, 1, 31)),
    ],
)  # fmt: skip
def test_the_extended_iso_forms_are_read(text: str, expected: dt.datetime) -> None:
    moment = as_datetime(text)
    assert (moment, moment.utcoffset()) == (expected, expected.utcoffset())


@pytest.mark.parametrize(
    "text",
    [
        "20260131",  # basic date: 3.11's fromisoformat reads it, 3.10's does not
        "2026-W05",  # week date: likewise
        "2026-W05-6",
        "2026-031",  # ordinal date
        "20260131T120000Z",
        "2026-01-31T12",  # an hour alone
        "2026-01-31T1205",
        "2026-01-31T12:05:09.1234567",
        "2026-01-31T12:05+0100",
        "2026-01-31T12:05+01",
        "2026-01-31Z",
        "2026-01-31T12:05z",
        "2026-02-30",
        "2026-01-31T24:00",
        "2026-01-31T12:60",
        "2026-01-31T12:05+24:00",
        "2026-01-31T12:05+01:60",
        "٢٠٢٦-01-31",  # digits of another script
        "2026-1-31",
        "yesterday",
        "",
    ],
)
def test_anything_else_is_refused_on_every_python(text: str) -> None:
    with pytest.raises(ValueError):
        as_datetime(text)


@pytest.mark.parametrize("text", ["20260101", "2026-W01"])
def test_the_cli_refuses_basic_and_week_dates_naming_the_option(
    cli: Cli, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    deleting = cli("checkpoint", "delete", "--before", text, "-y")
    assert (deleting.code, deleting.err) == (
        1,
        f"Error: --before: {text!r} is not an ISO 8601 date or time (for example 2026-01-31, "
        "2026-01-31T12:00 or 2026-01-31T12:00:00Z)\n",
    )
    with pytest.raises(SystemExit):
        cli("billing", "usage", text, "2026-01-02")
    assert capsys.readouterr().err.endswith(
        "expected an ISO date (2026-01-31) or a time on the hour (2026-01-31T09:00Z), "
        f"got {text!r}\n"
    )
    assert cli.rest.calls == [] and cli.admin.calls == []
