"""Every CLI command against a real embedded server, over real HTTP, through the real SDK."""

from __future__ import annotations

import io
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import attrs
import pytest
from cli_outcome import Outcome, run_cli

import tinker
from tinker.cli import main
from tinker.cli.context import Context
from tinker.cli.render import format_timestamp
from tinker.local import serve

API_KEY = "tml-cli-integration"
BASE_MODEL = "tinker-local/tiny"
TTL = 7 * 24 * 3600
# In `run info`, a run whose session still sends heartbeats: "Active" where the SDK can search
# sessions for their state, else "OK" (state unknown); never "Active" once the session ended.
_SEARCHES = hasattr(tinker.RestClient, "search_sessions")
_LIVE = "Active" if _SEARCHES else "OK"


@attrs.frozen
class World:
    url: str
    session_id: str
    run_id: str
    training_path: str
    sampler_path: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with serve(data_dir=tmp_path_factory.mktemp("server"), api_key=API_KEY) as server:
        service = tinker.ServiceClient(base_url=server.url, api_key=API_KEY)
        try:
            trainer = service.create_lora_training_client(base_model=BASE_MODEL, rank=4)
            training_path = trainer.save_state("first").result().path
            sampler_path = trainer.save_weights_for_sampler("s1", ttl_seconds=TTL).result().path
            session_id = service.holder.session_id
            yield World(server.url, session_id, trainer.model_id, training_path, sampler_path)
        finally:
            service.close()


def tinker_cli(world: World, *argv: str, api_key: str = API_KEY, answer: str = "y") -> Outcome:
    return run_cli(world.url, api_key, argv, answer=answer)


def test_run_list_and_info(world: World) -> None:
    table = tinker_cli(world, "run", "list")
    assert table.code == 0, table.err
    assert table.out.splitlines()[1].split() == [
        "Run", "ID", "Base", "Model", "LoRA", "Last", "Update", "Status"
    ]  # fmt: skip
    row = next(line for line in table.out.splitlines() if line.startswith(world.run_id))
    assert BASE_MODEL in row and "Rank 4" in row and row.endswith("OK")

    runs = tinker_cli(world, "-f", "json", "run", "list", "--limit", "0").json()["runs"]
    assert world.run_id in [run["training_run_id"] for run in runs]

    info = tinker_cli(world, "run", "info", world.run_id, "-f", "json").json()
    assert info["training_run_id"] == world.run_id
    assert info["base_model"] == BASE_MODEL
    assert info["lora_rank"] == 4
    assert info["last_checkpoint"]["tinker_path"] == world.training_path
    assert info["last_sampler_checkpoint"]["tinker_path"] == world.sampler_path
    text = tinker_cli(world, "run", "info", world.run_id).out
    assert f"  Path                    {world.training_path}" in text.splitlines()


def test_checkpoint_list_and_info(world: World) -> None:
    listed = tinker_cli(world, "-f", "json", "checkpoint", "list", "--run-id", world.run_id).json()
    assert listed["run_id"] == world.run_id
    by_path = {c["tinker_path"]: c for c in listed["checkpoints"]}
    assert by_path[world.training_path]["checkpoint_type"] == "training"
    assert by_path[world.sampler_path]["checkpoint_type"] == "sampler"
    assert by_path[world.training_path]["size_bytes"] > 0

    everything = tinker_cli(world, "-f", "json", "checkpoint", "list", "--limit", "0").json()
    assert {world.training_path, world.sampler_path} <= {
        c["tinker_path"] for c in everything["checkpoints"]
    }
    table = tinker_cli(world, "checkpoint", "list", "--run-id", world.run_id)
    assert table.out.splitlines()[0] == f"2 checkpoints for training run {world.run_id}"

    info = tinker_cli(world, "checkpoint", "info", world.sampler_path)
    assert info.code == 0, info.err
    lines = info.out.splitlines()
    assert "Type             sampler" in lines
    assert f"Training Run ID  {world.run_id}" in lines
    expires = by_path[world.sampler_path]["expires_at"]
    assert expires is not None and by_path[world.training_path]["expires_at"] is None
    assert lines[-1] == f"Expires          {format_timestamp(expires)}"


def test_publish_and_unpublish(world: World) -> None:
    def public() -> bool:
        found = tinker_cli(world, "-f", "json", "checkpoint", "info", world.training_path)
        return bool(found.json()["public"])

    assert not public()
    assert tinker_cli(world, "checkpoint", "publish", world.training_path).code == 0
    assert public()
    assert tinker_cli(world, "checkpoint", "unpublish", world.training_path).code == 0
    assert not public()


def test_download_extracts_the_checkpoint_files(world: World, tmp_path: pathlib.Path) -> None:
    result = tinker_cli(
        world, "-f", "json", "checkpoint", "download", world.sampler_path, "-o", str(tmp_path)
    )
    assert result.code == 0, result.err
    payload = result.json()
    destination = pathlib.Path(payload["destination"])
    expected = world.sampler_path[len("tinker://") :].replace("/", "_").replace(":", "_")
    assert destination == tmp_path / expected  # no ':' in the folder name
    assert payload["file_size_bytes"] > 0
    names = {p.name for p in destination.rglob("*") if p.is_file()}
    assert any(name.endswith(".safetensors") for name in names), names
    assert sorted(p.name for p in tmp_path.iterdir()) == [destination.name]

    again = tinker_cli(world, "checkpoint", "download", world.sampler_path, "-o", str(tmp_path))
    assert again.code == 1 and "already exists" in again.err


def test_sessions(world: World) -> None:
    sessions = tinker_cli(world, "-f", "json", "session", "list", "--limit", "100").json()
    assert world.session_id in sessions["sessions"]
    info = tinker_cli(world, "-f", "json", "session", "info", world.session_id).json()
    assert world.run_id in info["training_run_ids"]


def test_sample_from_base_model_and_from_saved_weights(world: World) -> None:
    base = tinker_cli(
        world, "-f", "json", "sample", "--base-model", BASE_MODEL, "--prompt", "Hello",
        "--max-tokens", "5", "--seed", "3", "--num-samples", "2",
    )  # fmt: skip
    assert base.code == 0, base.err
    samples = base.json()["samples"]
    assert len(samples) == 2
    for sample in samples:
        assert 1 <= len(sample["tokens"]) <= 5
        assert len(sample["logprobs"]) == len(sample["tokens"])
        assert sample["stop_reason"] in ("length", "stop")

    saved = tinker_cli(
        world, "sample", "--model-path", world.sampler_path, "--prompt-tokens", "1,2,3",
        "--max-tokens", "4", "--seed", "3",
    )  # fmt: skip
    assert saved.code == 0, saved.err


def test_errors_exit_1_with_friendly_messages(world: World) -> None:
    missing = tinker_cli(world, "run", "info", "no-such-run")
    assert missing.code == 1
    assert missing.err.startswith("Error: Resource not found")

    wrong_key = tinker_cli(world, "session", "list", api_key="tml-wrong-key")
    assert wrong_key.code == 1
    assert wrong_key.err.startswith("Error: Authentication failed")
    assert "tml-wrong-key" not in wrong_key.err


def _sessions(world: World) -> list[str]:
    listed = tinker_cli(world, "-f", "json", "session", "list", "--limit", "1000")
    assert listed.code == 0, listed.err
    sessions: list[str] = listed.json()["sessions"]
    return sessions


def test_read_only_commands_create_no_session(world: World) -> None:
    before = _sessions(world)
    for argv in (
        ("run", "list"),
        ("run", "info", world.run_id),
        ("checkpoint", "list"),
        ("checkpoint", "list", "--run-id", world.run_id),
        ("checkpoint", "info", world.sampler_path),
        ("session", "info", world.session_id),
        ("checkpoint", "set-ttl", world.sampler_path, "--ttl", str(TTL)),
    ):
        outcome = tinker_cli(world, *argv)
        assert outcome.code == 0, (argv, outcome.err)
    assert _sessions(world) == before


def test_a_run_whose_session_ended_is_not_active(world: World) -> None:
    with tinker.ServiceClient(base_url=world.url, api_key=API_KEY) as service:
        ended = service.create_lora_training_client(base_model=BASE_MODEL, rank=4).model_id
    table = tinker_cli(world, "run", "list", "--limit", "0").out.splitlines()
    status = {line.split()[0]: line.split()[-1] for line in table[3:]}
    assert status[world.run_id] == status[ended] == "OK"  # run list: failed or not
    info = tinker_cli(world, "run", "info", ended).out.splitlines()
    assert ("Status                    " + ("Ended" if _SEARCHES else "OK")) in info
    live = tinker_cli(world, "run", "info", world.run_id).out.splitlines()
    assert ("Status                    " + _LIVE) in live


def test_delete_runs_last(world: World) -> None:
    declined = tinker_cli(world, "checkpoint", "delete", world.training_path, answer="n")
    assert declined.out.splitlines()[-1] == "Deletion cancelled."
    assert tinker_cli(world, "checkpoint", "info", world.training_path).code == 0

    deleted = tinker_cli(world, "checkpoint", "delete", world.training_path, "--yes")
    assert (deleted.code, deleted.err) == (0, "")
    gone = tinker_cli(world, "checkpoint", "info", world.training_path)
    assert gone.code == 1
    assert gone.err == f"Error: checkpoint not found: {world.training_path}\n"


def _cli_process(*argv: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tinker.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )


def test_base_url_local_uses_an_in_process_server(tmp_path: pathlib.Path) -> None:
    env = {"TINKER_LOCAL_DATA_DIR": str(tmp_path), "TINKER_API_KEY": ""}
    process = _cli_process("--base-url", "local", "-f", "json", "session", "list", env=env)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    # a fresh data dir, and REST commands open no session of their own
    assert json.loads(out)["sessions"] == []


def test_a_refused_connection_names_the_url_at_once() -> None:
    """Refused means nothing listens: reported on the first attempt, not after the SDK's
    5-minute whole-call retries (30 s is only a bound for a loaded machine)."""
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    code = main(
        ["--base-url", url, "--api-key", API_KEY, "run", "list"],
        context=Context(stdout=out, stderr=err),
    )
    assert time.monotonic() - started < 30
    assert (code, out.getvalue()) == (1, "")
    assert err.getvalue().startswith("Error: Connection failed")
    assert f"{url}/api/v1/training_runs" in err.getvalue()
    assert "connection refused" in err.getvalue()


def test_a_closed_stdout_ends_quietly() -> None:
    """`tinker ... | head` where head has exited: no BrokenPipeError, status 0."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "tinker.cli", "doctor", "-f", "json"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (0, "")


def test_local_serve_runs_until_ctrl_c(tmp_path: pathlib.Path) -> None:
    argv = ["local", "serve", "--port", "0", "--data-dir", str(tmp_path), "--api-key", API_KEY]
    process = _cli_process(*argv, env={})
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("Tinker local server: http://127.0.0.1:"), first
        url = first.split(": ", 1)[1].strip()
        listed = tinker_cli(World(url, "", "", "", ""), "-f", "json", "run", "list")
        assert (listed.code, listed.json()) == (0, {"runs": []})
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
        assert process.returncode == 130
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("protocol", ["both,jwt_auth=on", "both"])
def test_auth_whoami_reads_the_access_token(tmp_path: pathlib.Path, protocol: str) -> None:
    with serve(data_dir=tmp_path, api_key=API_KEY, protocol=protocol) as server:
        world = World(server.url, "", "", "", "")
        outcome = tinker_cli(world, "auth", "whoami", "-f", "json")
    if protocol == "both":  # no JWT auth: a plain API key names nobody
        assert outcome.code == 1
        assert "this server does not use JWT auth" in outcome.err
        assert API_KEY not in outcome.err
        return
    assert outcome.code == 0, outcome.err
    assert outcome.json() == {
        "email": None,
        "user": "tml:user:local",
        "organization": "tml:organization:local",
    }


def test_auth_status_says_whether_the_server_accepts_the_key(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TINKER_API_KEY", raising=False)
    monkeypatch.delenv("TINKER_CREDENTIAL_CMD", raising=False)
    accepted = tinker_cli(world, "auth", "status")
    assert accepted.code == 0, accepted.err
    assert accepted.out.splitlines() == ["Credentials available: yes", "Tinker accessible: yes"]
    refused = tinker_cli(world, "auth", "status", "-f", "json", api_key="tml-not-the-key")
    assert refused.code == 0, refused.err
    answer = refused.json()
    assert (answer["credentials_available"], answer["accessible"]) == (True, False)
    assert answer["error"].startswith("Authentication failed")
    assert "tml-not-the-key" not in refused.out


def test_login_stores_a_key_the_server_accepts_and_logout_removes_it(
    world: World, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("TINKER_API_KEY", raising=False)
    monkeypatch.delenv("TINKER_CREDENTIAL_CMD", raising=False)

    def run(*argv: str, stdin: str = "") -> Outcome:
        out, err = io.StringIO(), io.StringIO()
        ctx = Context(stdout=out, stderr=err, stdin=io.StringIO(stdin), interactive=False)
        code = main([*argv, "--base-url", world.url], context=ctx)
        return Outcome(code, out.getvalue(), err.getvalue())

    stored = tmp_path / ".tinker" / "credentials.json"
    refused = run("auth", "login", stdin="tml-not-the-key\n")
    assert refused.code == 1
    assert refused.err == (
        "Error: The service answered HTTP 401: Invalid or missing API key (X-API-Key header).\n"
    )
    assert not stored.exists()
    login = run("auth", "login", "-f", "json", stdin=f"{API_KEY}\n")
    assert login.code == 0, login.err
    assert login.json() == {
        "email": "",
        "organization": "local",
        "key_id": "1",
        "key_name": "tinker-local",
        "credentials_file": str(stored),
    }
    assert json.loads(stored.read_text())["keys"]["1"]["key"] == API_KEY
    status = run("auth", "status")  # the stored key, no --api-key
    assert status.out.splitlines() == ["Credentials available: yes", "Tinker accessible: yes"]
    logout = run("auth", "logout")
    assert logout.code == 0, logout.err
    assert (
        logout.out.splitlines()[0]
        == f'Logged out: removed the key "tinker-local" (id 1) from {stored}.'
    )
    assert json.loads(stored.read_text()) == {"version": 1, "default": None, "keys": {}}
    assert run("auth", "status").out.splitlines()[0] == "Credentials available: no"
    piped = subprocess.run(  # a real process reads the key from its standard input
        [sys.executable, "-m", "tinker.cli", "auth", "login", "--base-url", world.url],
        input=f"{API_KEY}\n",
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.splitlines()[0] == "Logged in (organization local)."
    assert API_KEY not in piped.stdout + piped.stderr
    assert json.loads(stored.read_text())["default"] == "1"


def test_model_list_filters_by_name_and_names_the_organization_when_none_match(
    tmp_path: pathlib.Path,
) -> None:
    with serve(data_dir=tmp_path, api_key=API_KEY, protocol="both,jwt_auth=on") as server:
        world = World(server.url, "", "", "", "")
        listed = tinker_cli(world, "model", "list", "TINY")
        as_json = tinker_cli(world, "model", "list", "-f", "json")
        missing = tinker_cli(world, "model", "list", "no-such-model")
    assert listed.code == 0, listed.err
    lines = listed.out.splitlines()
    assert lines[0].split() == ["Model", "Max", "Context", "Trainable", "Sampleable"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert BASE_MODEL in rows and all("tiny" in name.lower() for name in rows)
    assert rows[BASE_MODEL][0].isdigit() and rows[BASE_MODEL][1:] == ["yes", "yes"]
    names = [m["model_name"] for m in as_json.json()]
    assert BASE_MODEL in names and len(names) > 1
    assert missing.code == 1
    assert "no model name contains 'no-such-model' for organization tml:organization:local" in (
        missing.err
    )
