from __future__ import annotations

import datetime as dt
import json

import pytest
from cli_fakes import Cli, ago, checkpoint

from tinker import errors

RUN = "run-1"
PATH = f"tinker://{RUN}/weights/0001"


@pytest.fixture
def stocked(cli: Cli) -> Cli:
    cli.rest.checkpoints = {
        RUN: [
            checkpoint(RUN, "training", "0001", size_bytes=3 * 1024**2, time=ago(hours=3)),
            checkpoint(RUN, "sampler", "s1", size_bytes=512, public=True, time=ago(minutes=2)),
        ],
        "run-2": [checkpoint("run-2", "training", "final", time=ago(days=2))],
    }
    return cli


def test_list_for_one_run(stocked: Cli) -> None:
    result = stocked("checkpoint", "list", "--run-id", RUN)
    assert result.code == 0
    assert result.out.splitlines() == [
        "2 checkpoints for training run run-1",
        "Checkpoint ID       Type      Size    Public  Created        Path",
        "------------------  --------  ------  ------  -------------  "
        + "-" * len("tinker://run-1/sampler_weights/s1"),
        "weights/0001        training  3.0 MB  No      3 hours ago    tinker://run-1/weights/0001",
        "sampler_weights/s1  sampler   512 B   Yes     2 minutes ago  "
        "tinker://run-1/sampler_weights/s1",
    ]
    assert stocked.rest.calls == [("list_checkpoints", RUN)]


def test_list_for_one_run_json(stocked: Cli) -> None:
    payload = json.loads(stocked("-f", "json", "checkpoint", "list", "--run-id", "run-2").out)
    assert payload["run_id"] == "run-2"
    assert [c["tinker_path"] for c in payload["checkpoints"]] == ["tinker://run-2/weights/final"]
    assert set(payload["checkpoints"][0]) == {
        "checkpoint_id",
        "checkpoint_type",
        "time",
        "tinker_path",
        "size_bytes",
        "public",
        "expires_at",
        "user_metadata",
    }


def test_list_all_is_newest_first_with_limit_and_note(stocked: Cli) -> None:
    result = stocked("checkpoint", "list", "--limit", "2")
    lines = result.out.splitlines()
    assert lines[0] == "2 checkpoints (1 more not shown, use --limit to see more)"
    assert [line.split()[0] for line in lines[3:]] == ["sampler_weights/s1", "weights/0001"]
    assert stocked.rest.calls == [("list_user_checkpoints", 2, 0)]


def test_list_all_pages_by_1000(cli: Cli) -> None:
    cli.rest.checkpoints = {
        RUN: [checkpoint(RUN, "training", f"{i:05d}", time=ago(seconds=i)) for i in range(2500)]
    }
    payload = json.loads(cli("-f", "json", "checkpoint", "list", "--limit", "0").out)
    assert "run_id" not in payload
    assert len(payload["checkpoints"]) == 2500
    assert cli.rest.calls == [
        ("list_user_checkpoints", 1000, 0),
        ("list_user_checkpoints", 1000, 1000),
        ("list_user_checkpoints", 1000, 2000),
    ]


def test_info_table_and_json(stocked: Cli) -> None:
    result = stocked("checkpoint", "info", PATH)
    assert result.out.splitlines() == [
        f"Checkpoint {PATH}",
        "Property         Value",
        "---------------  " + "-" * len(PATH),
        "Checkpoint ID    weights/0001",
        "Type             training",
        f"Tinker Path      {PATH}",
        "Size             3.0 MB",
        "Public           No",
        "Created          3 hours ago",
        "Training Run ID  run-1",
    ]
    payload = json.loads(stocked("-f", "json", "checkpoint", "info", PATH).out)
    assert payload["checkpoint_id"] == "weights/0001"
    assert payload["size_bytes"] == 3 * 1024**2


def test_info_shows_the_expiry_of_an_expiring_checkpoint(cli: Cli) -> None:
    expires = dt.datetime(2030, 5, 6, 7, 8, tzinfo=dt.timezone.utc)
    cli.rest.checkpoints = {RUN: [checkpoint(RUN, "training", "0001", expires_at=expires)]}
    lines = cli("checkpoint", "info", PATH).out.splitlines()
    assert lines[-1] == "Expires          2030-05-06 07:08 UTC"
    payload = json.loads(cli("-f", "json", "checkpoint", "info", PATH).out)
    assert payload["expires_at"] == "2030-05-06T07:08:00Z"


def test_info_of_a_missing_checkpoint_fails(stocked: Cli) -> None:
    result = stocked("checkpoint", "info", f"tinker://{RUN}/weights/nope")
    assert result.code == 1
    assert result.out == ""
    assert result.err == f"Error: checkpoint not found: tinker://{RUN}/weights/nope\n"


@pytest.mark.parametrize(
    "bad",
    [
        "run-1/weights/0001",
        "tinker://run-1/0001",
        "tinker://run-1/other/0001",
        "tinker://run-1/weights/a/b",
        "tinker:///weights/0001",
    ],
)
def test_malformed_paths_are_refused_before_any_request(cli: Cli, bad: str) -> None:
    for command in ("info", "publish", "unpublish", "download", "delete"):
        result = (
            cli("checkpoint", command, bad, "--yes")
            if command == "delete"
            else cli("checkpoint", command, bad)
        )
        assert result.code == 1
        assert result.err.startswith(f"Error: Invalid tinker path {bad!r}")
    assert cli.rest.calls == []


def test_publish_and_unpublish_confirm(stocked: Cli) -> None:
    assert stocked("checkpoint", "publish", PATH).out == f"Published {PATH}\n"
    unpublished = stocked("checkpoint", "unpublish", PATH)
    assert (unpublished.code, unpublished.out) == (0, f"Unpublished {PATH}\n")
    assert json.loads(stocked("-f", "json", "checkpoint", "publish", PATH).out) == {
        "tinker_path": PATH,
        "public": True,
    }
    assert stocked.rest.calls == [
        ("publish_checkpoint_from_tinker_path", PATH),
        ("unpublish_checkpoint_from_tinker_path", PATH),
        ("publish_checkpoint_from_tinker_path", PATH),
    ]


def test_publish_conflict_is_reported(stocked: Cli) -> None:
    stocked.rest.errors["publish_checkpoint_from_tinker_path"] = errors.ConflictError(
        "Error code: 409 - already public", status_code=409
    )
    result = stocked("checkpoint", "publish", PATH)
    assert result.code == 1
    assert result.err == "Error: API error (status 409)\n  Error code: 409 - already public\n"


def test_set_ttl_and_remove_confirm(stocked: Cli) -> None:
    set_result = stocked("checkpoint", "set-ttl", PATH, "--ttl", "3600")
    assert (set_result.code, set_result.out) == (0, f"{PATH} now expires in 3600 seconds\n")
    removed = stocked("-f", "json", "checkpoint", "set-ttl", PATH, "--remove")
    assert removed.code == 0
    assert json.loads(removed.out) == {"tinker_path": PATH, "ttl_seconds": None}
    assert stocked.rest.calls == [
        ("set_checkpoint_ttl_from_tinker_path", PATH, 3600),
        ("set_checkpoint_ttl_from_tinker_path", PATH, None),
    ]


@pytest.mark.parametrize(
    "options", [[], ["--ttl", "5", "--remove"], ["--ttl", "0"], ["--ttl", "x"]]
)
def test_set_ttl_needs_exactly_one_valid_choice(stocked: Cli, options: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        stocked("checkpoint", "set-ttl", PATH, *options)
    assert exit_info.value.code == 2
    assert stocked.rest.calls == []
