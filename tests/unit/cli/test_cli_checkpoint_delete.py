"""`tinker checkpoint delete`: named paths, or the user's checkpoints selected by --run-id,
--type, --before and --after (combined with AND); one confirmation listing exactly what goes;
failures reported path by path with the others deleted."""

from __future__ import annotations

import datetime as dt
import json
import pathlib

import pytest
from cli_fakes import Cli, checkpoint
from support.fake_service import Reply

from tinker import errors

UTC = dt.timezone.utc
W1 = "tinker://run-1/weights/0001"
S1 = "tinker://run-1/sampler_weights/s1"
W2 = "tinker://run-2/weights/final"
S2 = "tinker://run-2/sampler_weights/s2"
DELETE = "delete_checkpoint_from_tinker_path"


@pytest.fixture
def stocked(cli: Cli) -> Cli:
    """Four checkpoints in two runs; newest first: W2, S2, S1, W1."""
    cli.rest.checkpoints = {
        "run-1": [
            checkpoint("run-1", "training", "0001", size_bytes=3 * 1024**2,
                       time=dt.datetime(2026, 1, 10, 12, 0, tzinfo=UTC)),
            checkpoint("run-1", "sampler", "s1", size_bytes=512,
                       time=dt.datetime(2026, 1, 20, 8, 30, tzinfo=UTC)),
        ],
        "run-2": [
            checkpoint("run-2", "training", "final", time=dt.datetime(2026, 2, 1, tzinfo=UTC)),
            checkpoint("run-2", "sampler", "s2", size_bytes=2048,
                       time=dt.datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC)),
        ],
    }  # fmt: skip
    return cli


def _deleted(cli: Cli) -> list[str]:
    return [call[1] for call in cli.rest.calls if call[0] == DELETE]


def _remaining(cli: Cli) -> set[str]:
    return {c.tinker_path for cs in cli.rest.checkpoints.values() for c in cs}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (["--run-id", "run-1"], [W1, S1]),
        (["--type", "weights"], [W2, W1]),
        (["--type", "sampler_weights"], [S2, S1]),
        (["--before", "2026-01-20T08:30:00Z"], [W1]),  # strictly before
        (["--before", "2026-01-20T09:30+01:00"], [W1]),  # the same moment in another zone
        (["--before", "2026-01-20T08:30:01"], [S1, W1]),  # no zone: UTC
        (["--after", "2026-01-20T08:30Z"], [W2, S2, S1]),  # at or after
        (["--after", "2026-02-01"], [W2]),  # a date alone: midnight UTC
        (["--before", "2026-02-01"], [S2, S1, W1]),
        (["--after", "2026-01-15", "--before", "2026-02-01", "--type", "sampler_weights"],
         [S2, S1]),
        (["--run-id", "run-2", "--type", "sampler_weights", "--before", "2026-02-01"], [S2]),
        (["--run-id", "run-1", "--after", "2026-01-11"], [S1]),
    ],
)  # fmt: skip
def test_filters_select_exactly_and_combine_with_and(
    stocked: Cli, filters: list[str], expected: list[str]
) -> None:
    before = _remaining(stocked)
    result = stocked("checkpoint", "delete", *filters, "-y")
    assert (result.code, result.err) == (0, "")
    assert result.out.splitlines() == [f"Deleted {path}" for path in expected]
    assert _deleted(stocked) == expected
    assert _remaining(stocked) == before - set(expected)
    assert stocked.prompts == []
    listing = [c for c in stocked.rest.calls if c[0] != DELETE]
    if "--run-id" in filters:  # the run's own listing, not the user's pages
        run = filters[filters.index("--run-id") + 1]
        assert listing == [("list_checkpoints", run)]
    else:
        assert listing == [("list_user_checkpoints", 1000, 0)]


def test_every_page_of_the_users_checkpoints_is_searched(cli: Cli) -> None:
    start = dt.datetime(2026, 3, 1, tzinfo=UTC)
    cli.rest.checkpoints = {
        "run-1": [
            checkpoint("run-1", "training", f"{i:04d}", time=start - dt.timedelta(minutes=i))
            for i in range(2100)
        ]
    }
    cutoff = (start - dt.timedelta(minutes=2098)).isoformat()
    result = cli("-f", "json", "checkpoint", "delete", "--before", cutoff, "--yes")
    assert result.code == 0, result.err
    oldest = ["tinker://run-1/weights/2099"]  # on the third page
    assert json.loads(result.out) == {"deleted": oldest}
    assert [c for c in cli.rest.calls if c[0] != DELETE] == [
        ("list_user_checkpoints", 1000, 0),
        ("list_user_checkpoints", 1000, 1000),
        ("list_user_checkpoints", 1000, 2000),
    ]


def test_the_confirmation_lists_exactly_what_goes_and_asks_once(stocked: Cli) -> None:
    result = stocked("checkpoint", "delete", "--type", "weights", interactive=True, answer="y")
    assert result.code == 0, result.err
    assert stocked.prompts == ["Proceed? [y/N]: "]
    assert result.out.splitlines() == [
        "2 checkpoints to delete (3.0 MB and 1 of unknown size):",
        "Path                          Type      Created               Size",
        "----------------------------  --------  --------------------  ------",
        f"{W2}  training  2026-02-01 00:00 UTC  -",
        f"{W1}   training  2026-01-10 12:00 UTC  3.0 MB",
        "WARNING: these 2 checkpoints will be permanently deleted. This cannot be undone.",
        f"Deleted {W2}",
        f"Deleted {W1}",
    ]


def test_named_paths_are_looked_up_for_the_confirmation_once_per_run(stocked: Cli) -> None:
    gone = "tinker://run-1/weights/gone"
    result = stocked("checkpoint", "delete", S1, gone, S2, S1, interactive=True, answer="yes")
    assert result.code == 0, result.err
    assert result.out.splitlines()[:6] == [
        "3 checkpoints to delete (2.5 KB and 1 of unknown size):",
        "Path                               Type     Created               Size",
        "---------------------------------  -------  --------------------  ------",
        f"{S1}  sampler  2026-01-20 08:30 UTC  512 B",
        f"{gone}        -        -                     -",
        f"{S2}  sampler  2026-01-31 23:59 UTC  2.0 KB",
    ]
    assert [c for c in stocked.rest.calls if c[0] != DELETE] == [
        ("list_checkpoints", "run-1"),
        ("list_checkpoints", "run-2"),
    ]
    assert _deleted(stocked) == [S1, gone, S2]


def test_one_known_checkpoint_gets_a_singular_confirmation(stocked: Cli) -> None:
    result = stocked("checkpoint", "delete", W1, interactive=True, answer="n")
    assert result.out.splitlines() == [
        "1 checkpoint to delete (3.0 MB):",
        "Path                         Type      Created               Size",
        "---------------------------  --------  --------------------  ------",
        f"{W1}  training  2026-01-10 12:00 UTC  3.0 MB",
        "WARNING: this checkpoint will be permanently deleted. This cannot be undone.",
        "Deletion cancelled.",
    ]


def test_with_json_output_the_confirmation_goes_to_stderr(stocked: Cli) -> None:
    result = stocked("-f", "json", "checkpoint", "delete", W1, interactive=True, answer="y")
    assert json.loads(result.out) == {"deleted": [W1]}
    assert result.err.splitlines()[0] == "1 checkpoint to delete (3.0 MB):"
    assert "Proceed? [y/N]: " in result.err
    assert stocked.prompts == [""]


@pytest.mark.parametrize("answer", ["n", "", "no", "yess", EOFError()])
def test_declined_deletes_nothing(stocked: Cli, answer: str | BaseException) -> None:
    result = stocked("checkpoint", "delete", "--run-id", "run-1", interactive=True, answer=answer)
    assert result.code == 0
    assert result.out.splitlines()[-1] == "Deletion cancelled."
    assert _deleted(stocked) == []
    assert len(_remaining(stocked)) == 4


def test_with_json_output_a_declined_deletion_answers_an_empty_list(stocked: Cli) -> None:
    result = stocked("-f", "json", "checkpoint", "delete", W1, interactive=True, answer="n")
    assert (result.code, json.loads(result.out)) == (0, {"deleted": []})
    assert result.err.splitlines()[-1] == "Proceed? [y/N]: Deletion cancelled."
    assert _deleted(stocked) == []


@pytest.mark.parametrize("argv", [[W1], ["--type", "weights"]])
def test_without_a_terminal_and_without_yes_nothing_is_deleted(
    stocked: Cli, argv: list[str]
) -> None:
    result = stocked("checkpoint", "delete", *argv, interactive=False)
    assert result.code == 1
    assert result.err == (
        "Error: refusing to delete without confirmation: standard input is not a terminal "
        "(pass --yes to delete anyway)\n"
    )
    assert (stocked.prompts, _deleted(stocked)) == ([], [])
    if argv == [W1]:
        assert stocked.rest.calls == []  # a named path needs no request to refuse


def test_nothing_matched_says_so_and_succeeds(stocked: Cli) -> None:
    result = stocked(
        "checkpoint", "delete", "--run-id", "run-1", "--type", "weights", "--after", "2026-01-11",
        interactive=True,
    )  # fmt: skip
    assert (result.code, result.err) == (0, "")
    assert result.out == (
        "No checkpoints match --run-id run-1 and --type weights and "
        "--after 2026-01-11 00:00 UTC: nothing deleted.\n"
    )
    assert (stocked.prompts, _deleted(stocked)) == ([], [])
    as_json = stocked("-f", "json", "checkpoint", "delete", "--before", "2000-01-01", "-y")
    assert (as_json.code, json.loads(as_json.out)) == (0, {"deleted": []})


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--before", "yesterday"], "--before: 'yesterday' is not an ISO 8601 date or time"),
        (["--after", "2026-13-01"], "--after: '2026-13-01' is not an ISO 8601 date or time"),
        (["--after", "2026-02-01", "--before", "2026-01-01"],
         "--after (2026-02-01 00:00 UTC) must be earlier than --before (2026-01-01 00:00 UTC)"),
        (["--after", "2026-01-01T00:00Z", "--before", "2026-01-01"],
         "--after (2026-01-01 00:00 UTC) must be earlier than --before (2026-01-01 00:00 UTC)"),
        ([W1, "--run-id", "run-1"],
         "give checkpoint paths or filters (--run-id, --type, --before, --after), not both"),
        ([], "name the checkpoints to delete: TINKER_PATH... or --run-id, --type, --before, "
             "--after"),
    ],
)  # fmt: skip
def test_bad_options_are_refused_before_any_request(
    stocked: Cli, argv: list[str], message: str
) -> None:
    result = stocked("checkpoint", "delete", *argv, "-y")
    assert result.code == 1
    assert result.err.startswith(f"Error: {message}")
    assert result.err.count("\n") == 1
    assert stocked.rest.calls == []


def test_an_unknown_type_is_a_usage_error(stocked: Cli) -> None:
    with pytest.raises(SystemExit) as exit_info:
        stocked("checkpoint", "delete", "--type", "training", "-y")
    assert exit_info.value.code == 2
    assert stocked.rest.calls == []


def test_a_partial_failure_is_reported_per_path_and_exits_1(stocked: Cli) -> None:
    stocked.rest.refusals[W1] = Reply(404, {"detail": "no such checkpoint"})
    result = stocked("checkpoint", "delete", "--type", "weights", "-y")
    assert result.code == 1
    assert result.out == f"Deleted {W2}\n"
    err = result.err.splitlines()
    assert len(err) == 2
    assert err[0].startswith(f"  {W1}: Resource not found (")
    assert "no such checkpoint" in err[0]
    assert err[1] == "Error: failed to delete 1 of 2 checkpoints"
    assert _deleted(stocked) == [W2, W1]
    assert _remaining(stocked) == {W1, S1, S2}


def test_a_failure_line_never_shows_the_api_key(
    stocked: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TINKER_API_KEY", "tml-from-the-environment")
    stocked.rest.errors[DELETE] = errors.PermissionDeniedError(
        "key tml-given-on-the-command-line (or tml-from-the-environment) may not delete",
        status_code=403,
    )
    result = stocked("checkpoint", "delete", W1, "-y", "--api-key", "tml-given-on-the-command-line")
    assert result.code == 1
    assert result.err.splitlines() == [
        f"  {W1}: Permission denied (key *** (or ***) may not delete)",
        "Error: failed to delete 1 of 1 checkpoints",
    ]


def test_a_failure_line_never_shows_the_stored_key(
    stocked: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("TINKER_API_KEY", raising=False)
    stored = {"type": "manual", "key": "tml-stored-by-login", "name": "cli"}
    (tmp_path / ".tinker").mkdir()
    (tmp_path / ".tinker" / "credentials.json").write_text(
        json.dumps({"version": 1, "default": "7", "keys": {"7": stored}})
    )
    stocked.rest.errors[DELETE] = errors.PermissionDeniedError(
        "key tml-stored-by-login may not delete", status_code=403
    )
    result = stocked("checkpoint", "delete", W1, "-y")
    assert result.err.splitlines()[0] == f"  {W1}: Permission denied (key *** may not delete)"


def test_failures_of_every_path_are_reported_together(stocked: Cli) -> None:
    stocked.rest.errors[DELETE] = errors.NotFoundError(
        "Error code: 404 - no such checkpoint", status_code=404
    )
    result = stocked("-f", "json", "checkpoint", "delete", "--yes", W1, W2)
    assert (result.code, json.loads(result.out)) == (1, {"deleted": []})
    assert result.err.splitlines() == [
        f"  {W1}: Resource not found (Error code: 404 - no such checkpoint)",
        f"  {W2}: Resource not found (Error code: 404 - no such checkpoint)",
        "Error: failed to delete 2 of 2 checkpoints",
    ]
