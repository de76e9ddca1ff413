"""The REST endpoints of the 0.38 protocol, from the data directory: exported weights and their
links, copies, projects, session search and status, billing usage (token counts at zero cost),
checkpoint storage, the audit log and session traces."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from typing import Any

import requests

from tinker.local import LocalServer

from .wire_client import WireClient, fwdbwd, sample_body


def _hour(offset: int = 0) -> str:
    start = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
    return (start + dt.timedelta(hours=offset)).isoformat().replace("+00:00", "Z")


def _session(client: WireClient, **extra: Any) -> str:
    body = {
        "tags": [],
        "user_metadata": {"team": "a"},
        "sdk_version": "0.38.0",
        "type": "create_session",
        **extra,
    }
    return str(client.ok("create_session", body)["session_id"])


def test_exported_weights_are_files_behind_links(client: WireClient, server: LocalServer) -> None:
    model_id = client.model(client.session())
    export = {
        "model_id": model_id,
        "path": "hf",
        "seq_id": 1,
        "ttl_seconds": 7200,
        "type": "save_weights_external",
    }
    result = client.run("save_weights_external", export)
    path = f"tinker://{model_id}/external_weights/hf"
    assert result["path"] == path and result["type"] == "save_weights_external"
    urls = client.get(
        f"training_runs/{model_id}/checkpoints/external_weights/hf/external_weights_urls"
    ).json()
    assert sorted(urls["urls"]) == ["adapter_config.json", "adapter_model.safetensors"]
    assert dt.datetime.fromisoformat(urls["expires"].replace("Z", "+00:00")) > dt.datetime.now(
        dt.timezone.utc
    )
    config = requests.get(urls["urls"]["adapter_config.json"], timeout=10)  # no API key needed
    assert config.status_code == 200 and json.loads(config.content)["r"] == 4
    sizes = [len(requests.get(u, timeout=10).content) for u in urls["urls"].values()]
    assert sum(sizes) == result["size_bytes"]
    listed = client.get(f"training_runs/{model_id}/checkpoints").json()["checkpoints"]
    assert {c["tinker_path"]: c["checkpoint_type"] for c in listed}[path] == "external"
    loaded = client.post(
        "create_sampling_session",
        {"session_id": client.session(), "sampling_session_seq_id": 0, "model_path": path},
    )
    assert loaded.status_code == 400 and "exported for other tools" in loaded.text
    encrypted = client.post(
        "save_weights_external", {**export, "seq_id": 2, "age_encryption_recipients": ["age1x"]}
    )
    assert encrypted.status_code == 400 and "age encryption" in encrypted.text
    not_export = client.get(
        f"training_runs/{model_id}/checkpoints/weights/hf/external_weights_urls"
    )
    assert not_export.status_code in (400, 404)


def test_copies_share_the_bytes_of_their_source(client: WireClient, server: LocalServer) -> None:
    model_id = client.model(client.session())
    source = client.run("save_weights", {"model_id": model_id, "path": "orig", "seq_id": 1})["path"]
    body = {"source_path": source, "destination_project_id": "elsewhere", "ttl_seconds": 3600}
    key = {"X-Idempotency-Key": "copy-key-1"}
    first = client.post("copy_weights", body, headers=key).json()["tinker_path"]
    assert client.post("copy_weights", body, headers=key).json()["tinker_path"] == first  # a retry
    assert first != source and first.endswith("/weights/orig")
    other = client.post("copy_weights", body, headers={"X-Idempotency-Key": "copy-key-2"}).json()
    assert other["tinker_path"] != first
    copied = server.store.get_checkpoint(
        server.store.list_checkpoints(first.split("/")[2], 10, 0)[0][0].ref
    )
    original = server.store.get_checkpoint(server.store.list_checkpoints(model_id, 10, 0)[0][0].ref)
    assert copied is not None and original is not None and copied.expires_at is not None
    files = server.data_dir / "checkpoints"
    shared = os.stat(files / copied.directory / "adapter_model.safetensors")
    assert shared.st_ino == os.stat(files / original.directory / "adapter_model.safetensors").st_ino
    run = client.get(f"training_runs/{first.split('/')[2]}").json()
    assert run["base_model"] == "fake/tiny" and run["lora_rank"] == 4
    trained = client.post("forward_backward", fwdbwd(first.split("/")[2], 1))
    assert trained.status_code in (404, 410)  # a copy's run is not trained on
    usage = client.get(
        "billing/usage/checkpoints/current", params={"project_id": "elsewhere"}
    ).json()
    assert [row["checkpoint_count"] for row in usage["data"]] == [2]


def test_session_search_finds_by_name_metadata_status_and_project(client: WireClient) -> None:
    first = _session(client, display_name="Alpha run")
    second = _session(client, display_name="beta run", project_id="p1")
    client.ok(f"sessions/{first}/finish", {"reason": {"type": "errored"}, "detail": "boom"})
    assert (
        client.http.put(
            f"{client.url}/api/v1/sessions/{second}/project", json={"project_id": "p2"}
        ).status_code
        == 200
    )

    def search(**criteria: Any) -> list[str]:
        body = {"user_metadata": {}, "owner": {"type": "own"}, "limit": 50, **criteria}
        return [s["session_id"] for s in client.ok("sessions/search", body)["sessions"]]

    assert search(display_name="RUN alpha") == [first]
    assert search(project_ids=["p2"]) == [second]
    assert search(statuses=[{"type": "client_finished", "reasons": ["errored"]}]) == [first]
    assert search(statuses=[{"type": "active"}], user_metadata={"team": "a"}) == [second]
    assert search(session_id=first, display_name="beta") == [second, first]
    page = client.ok("sessions/search", {"limit": 1, "user_metadata": {"team": "a"}})
    assert [s["session_id"] for s in page["sessions"]] == [second] and page[
        "next_cursor"
    ] is not None
    rest = client.ok(
        "sessions/search",
        {"limit": 1, "user_metadata": {"team": "a"}, "cursor": page["next_cursor"]},
    )
    assert [s["session_id"] for s in rest["sessions"]] == [first] and rest["next_cursor"] is None
    summary = rest["sessions"][0]
    assert summary["status"] == {
        "type": "client_finished",
        "reason": {"type": "errored"},
        "detail": "boom",
    }
    assert summary["display_name"] == "Alpha run" and summary["project_id"] == "default"
    bad = client.post("sessions/search", {"limit": 500})
    assert bad.status_code == 422 and "SessionSearchRequest.limit: must be in [1, 200]" in bad.text
    details = client.get(f"sessions/{second}").json()
    assert (details["display_name"], details["user_metadata"]) == ("beta run", {"team": "a"})
    assert (
        client.http.put(
            f"{client.url}/api/v1/sessions/nope/project", json={"project_id": "x"}
        ).status_code
        == 404
    )


def test_billing_usage_counts_tokens_at_zero_cost(client: WireClient) -> None:
    session_id = _session(client)
    model_id = client.model(session_id)
    client.run("forward_backward", fwdbwd(model_id, 1))  # 3 tokens
    sampler = client.ok(
        "create_sampling_session",
        {"session_id": session_id, "sampling_session_seq_id": 0, "base_model": "fake/tiny"},
    )
    for seq_id in (0, 1):  # the second prompt is a prefix-cache hit in the fake sampler
        client.run(
            "asample", sample_body(sampler["sampling_session_id"], seq_id, [1, 2, 3], num_samples=2)
        )
    client.run("save_weights", {"model_id": model_id, "path": "c", "seq_id": 2})
    usage = client.get(
        "billing/usage/events", params={"starting_on": _hour(), "ending_before": _hour(1)}
    ).json()
    mine = [e for e in usage["data"] if e["session_id"] == session_id]
    totals = {
        (e["event_info"]["type"], e["event_info"].get("cached")): e["event_info"].get(
            "token_count", e["event_info"].get("count")
        )
        for e in mine
    }
    assert totals == {
        ("training", None): 3,
        ("sampling_prefill", False): 3,  # the first prompt once; the second was all cached
        ("sampling_prefill", True): 3 + 3 + 3,  # the second sample of each, and the cached prompt
        ("sampling_sample", None): 2 * 2 * 3,
        ("checkpoint", None): 1,
    }
    assert all(e["estimated_cost_usd"] == 0.0 and e["base_model"] == "fake/tiny" for e in mine)
    assert usage["sessions"][session_id] == {"user_metadata": {"team": "a"}}
    for query, text in (
        ({"starting_on": _hour(), "ending_before": _hour(24 * 15)}, "at most 14 days"),
        ({"starting_on": _hour(2), "ending_before": _hour(3)}, "must not be in the future"),
        (
            {"starting_on": _hour().replace(":00:00", ":30:00"), "ending_before": _hour(1)},
            "full hour",
        ),
        ({"starting_on": "yesterday", "ending_before": _hour(1)}, "not an RFC 3339 datetime"),
    ):
        refused = client.get("billing/usage/events", params=query)
        assert refused.status_code == 400 and text in refused.text, (query, refused.text)
    assert math.isclose(sum(e["event_info"].get("token_count", 0) for e in mine), 3 + 3 + 9 + 12)


def test_the_audit_log_and_traces_tell_what_happened(client: WireClient) -> None:
    session_id = _session(client)
    model_id = client.model(session_id)
    path = client.run("save_weights", {"model_id": model_id, "path": "c", "seq_id": 1})["path"]
    client.post(f"training_runs/{model_id}/checkpoints/weights/c/publish")
    client.delete(f"training_runs/{model_id}/checkpoints/weights/c")
    client.http.put(f"{client.url}/api/v1/sessions/{session_id}/project", json={"project_id": "p"})
    entries = client.get("audit", params={"event_type": "checkpoints"}).json()["entries"]
    mine = [(e["event"], e["tinker_path"]) for e in entries if e.get("tinker_path") == path]
    assert mine == [
        ("checkpoint_created", path),
        ("checkpoint_published", path),
        ("checkpoint_deleted", path),
    ]
    projects = client.get("audit", params={"event_type": "projects", "day": _hour()[:10]}).json()[
        "entries"
    ]
    assert projects[-1]["event_details"] == {"session_id": session_id, "project_id": "p"}
    assert client.get("audit", params={"event_type": "all", "day": "1999-01-01"}).json() == {
        "entries": []
    }
    assert client.get("audit", params={"event_type": "nope"}).status_code == 400
    trace = client.get(f"sessions/{session_id}/trace_export").json()
    assert trace["status"] == "ready" and trace["error"] is None
    events = requests.get(trace["url"], timeout=10).json()["traceEvents"]
    names = [e["name"] for e in events]
    assert names[0] == "session created" and f"training run {model_id} created" in names
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)
