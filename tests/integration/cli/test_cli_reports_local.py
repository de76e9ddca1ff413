"""The report commands (`billing usage`, `billing checkpoint-storage`, `session export-trace`,
`run list --columns`) against tinker.local, through the real SDK clients, on the pytest
plugin's server."""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import re
import urllib.request

import attrs
import pytest
from cli_outcome import Outcome, run_cli

import tinker
from tinker import types
from tinker.local import LocalServer
from tinker.testing.plugin import API_KEY

BASE_MODEL = "tinker-local/tiny"
TEXT = list(b"the cat sat on the mat.")


@attrs.frozen
class Trained:
    url: str
    session_id: str
    run_id: str
    checkpoint_path: str
    tokens: int


def _datum() -> types.Datum:
    targets = TEXT[1:]
    return types.Datum(
        model_input=types.ModelInput.from_ints(TEXT[:-1]),
        loss_fn_inputs={"target_tokens": targets, "weights": [1.0] * len(targets)},
    )


@pytest.fixture
def trained(tinker_server: LocalServer, tinker_service_client: tinker.ServiceClient) -> Trained:
    """One forward_backward and one saved checkpoint in a session of the plugin's server."""
    trainer = tinker_service_client.create_lora_training_client(base_model=BASE_MODEL, rank=4)
    trainer.forward_backward([_datum()], "cross_entropy").result()
    path = trainer.save_state("first").result().path
    session_id = tinker_service_client.holder.session_id
    return Trained(tinker_server.url, session_id, trainer.model_id, path, len(TEXT) - 1)


def _cli(trained: Trained, *argv: str) -> Outcome:
    return run_cli(trained.url, API_KEY, argv)


def _this_and_the_last_hour() -> tuple[str, str]:
    """From the start of the previous hour to the start of the next: the fixture's events
    are in it even when the hour turned after they were recorded."""
    hour = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
    start, end = hour - dt.timedelta(hours=1), hour + dt.timedelta(hours=1)
    return start.strftime("%Y-%m-%dT%H:%MZ"), end.strftime("%Y-%m-%dT%H:%MZ")


def test_billing_usage_reports_the_sessions_tokens_and_checkpoints(trained: Trained) -> None:
    start, end = _this_and_the_last_hour()
    report = _cli(trained, "-f", "json", "billing", "usage", start, end)
    assert report.code == 0, report.err
    payload = report.json()
    assert payload["cost_data_through"] is not None
    mine = [e for e in payload["data"] if e["session_id"] == trained.session_id]
    kinds = {e["event_info"]["type"]: e["event_info"] for e in mine}
    assert kinds["training"]["token_count"] == trained.tokens
    assert kinds["checkpoint"]["count"] == 1
    assert {e["base_model"] for e in mine} == {BASE_MODEL}
    assert trained.session_id in payload["sessions"]

    csv_text = _cli(trained, "billing", "usage", start, end, "--csv", "-").out.splitlines()
    assert csv_text[0].startswith("bucket_start,bucket_end,base_model,")
    assert any(f",{trained.session_id}," in line and ",training," in line for line in csv_text)

    table = _cli(trained, "billing", "usage", start, end)
    assert table.code == 0, table.err
    assert f"{trained.tokens} tokens" in table.out
    assert table.out.splitlines()[-1].startswith("Estimated cost: 0.0000 USD (data through ")


def test_billing_checkpoint_storage_counts_the_saved_checkpoint(trained: Trained) -> None:
    report = _cli(trained, "-f", "json", "billing", "checkpoint-storage")
    assert report.code == 0, report.err
    (row,) = report.json()["data"]
    assert row["checkpoint_count"] == 1 and row["size_bytes"] > 0
    project = row["project_id"]
    table = _cli(trained, "billing", "checkpoint-storage", "--project-id", project)
    assert table.out.splitlines()[0].startswith("Checkpoint storage of project ")
    assert table.out.splitlines()[3].split()[0] == project
    other = _cli(trained, "-f", "json", "billing", "checkpoint-storage", "--project-id", "none")
    assert other.json()["data"] == []


def test_session_export_trace_downloads_what_the_url_serves(
    trained: Trained, tmp_path: pathlib.Path
) -> None:
    target = tmp_path / "trace.pftrace"
    done = _cli(trained, "session", "export-trace", trained.session_id, "-o", str(target))
    assert done.code == 0, done.err
    assert done.out.splitlines()[2].endswith(str(target))
    events = json.loads(target.read_bytes())["traceEvents"]
    assert f"checkpoint {trained.checkpoint_path} saved" in [e["name"] for e in events]

    url = _cli(trained, "session", "export-trace", trained.session_id, "--url-only")
    assert url.code == 0, url.err
    assert url.out.count("\n") == 1 and url.out.startswith(trained.url)
    with urllib.request.urlopen(url.out.strip(), timeout=30) as response:
        assert response.read() == target.read_bytes()

    again = _cli(trained, "session", "export-trace", trained.session_id, "-o", str(target))
    assert again.code == 1 and "already exists (use --force to replace it)" in again.err


def test_run_list_columns(trained: Trained) -> None:
    listed = _cli(trained, "run", "list", "-c", "id,checkpoint,status,model")
    assert listed.code == 0, listed.err
    headers = re.split(r"\s{2,}", listed.out.splitlines()[1])
    assert headers == ["Run ID", "Last Checkpoint", "Status", "Base Model"]
    row = next(line for line in listed.out.splitlines() if line.startswith(trained.run_id))
    assert row.split() == [trained.run_id, "weights/first", "OK", BASE_MODEL]
