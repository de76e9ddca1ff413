"""The tinker.testing pytest plugin: registered with pytest, idle until asked, and its fixtures
(servers, client, faults) as the project's own tests and a user's test file see them."""

from __future__ import annotations

import importlib.metadata
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

import tinker
from tinker import types
from tinker.local import Faults, LocalServer
from tinker.testing import assert_loss_decreases
from tinker.testing.plugin import API_KEY, ServerFactory


def test_the_plugin_is_a_pytest11_entry_point() -> None:
    (entry,) = [e for e in importlib.metadata.entry_points(group="pytest11") if e.name == "tinker"]
    assert entry.value == "tinker.testing.plugin"


def test_training_on_the_test_server_brings_the_loss_down(
    tinker_service_client: tinker.ServiceClient, tinker_server: LocalServer
) -> None:
    assert tinker_service_client.holder.transport.base_url == tinker_server.url
    trainer = tinker_service_client.create_lora_training_client("tinker-local/tiny", rank=4, seed=0)
    tokens = trainer.get_tokenizer().encode("the plugin trains", add_special_tokens=False)
    datum = types.Datum(
        model_input=types.ModelInput.from_ints(tokens[:-1]),
        loss_fn_inputs={"target_tokens": tokens[1:], "weights": [1.0] * (len(tokens) - 1)},
    )
    losses = []
    for _ in range(6):
        losses.append(trainer.forward_backward([datum], "cross_entropy"))
        trainer.optim_step(types.AdamParams(learning_rate=1e-2))
    assert assert_loss_decreases([f.result() for f in losses], min_drop=0.05).window == 1


def test_without_the_marker_there_are_no_faults(tinker_faults: Faults | None) -> None:
    assert tinker_faults is None


@pytest.mark.tinker_faults("rest.5xx=1")
def test_the_marker_injects_its_faults_into_the_test_server(
    tinker_server: LocalServer, tinker_faults: Faults | None
) -> None:
    assert tinker_faults is not None
    with (
        tinker.ServiceClient(
            base_url=tinker_server.url, api_key=API_KEY, max_retries=0, submit_retry_seconds=0.01
        ) as service,
        pytest.raises(tinker.InternalServerError),
    ):
        service.get_server_capabilities()
    assert tinker_faults.injected["rest.503"] >= 1


STARTED: list[LocalServer] = []  # the servers of the next test, checked by the one after it


def test_the_factory_starts_servers_with_serve_arguments_and_closes_them(
    tinker_server_factory: ServerFactory,
) -> None:
    first = tinker_server_factory(api_key="s3cret", faults="train.5xx=0.5")
    second = tinker_server_factory()
    assert first.url != second.url and first.data_dir != second.data_dir
    with pytest.raises(tinker.AuthenticationError):
        _ = tinker.ServiceClient(base_url=first.url, api_key="wrong", max_retries=0).session_id
    STARTED.extend([first, second])


def test_the_factorys_servers_were_closed_after_the_previous_test() -> None:
    assert len(STARTED) == 2 and all(server.closed for server in STARTED)


USER_TESTS = """
import sys
import threading

import pytest

import tinker

SEEN = []


def test_nothing_runs_until_a_fixture_is_asked_for(pytestconfig):
    assert pytestconfig.pluginmanager.has_plugin("tinker")
    assert "tinker.local" not in sys.modules and "requests" not in sys.modules
    assert threading.active_count() == 1


def test_shared_server_first(tinker_shared_server):
    SEEN.append(tinker_shared_server)


def test_shared_server_again(tinker_shared_server):
    assert SEEN == [tinker_shared_server] and not tinker_shared_server.closed


@pytest.mark.tinker_faults("train.5xx=0.1")
def test_client(tinker_service_client, tinker_server, tinker_faults):
    SEEN.append((tinker_server, tinker_service_client))
    assert tinker_service_client.session_id  # the session is opened on first use
    assert tinker_faults.injected == {}
    assert tinker_server.data_dir.is_dir()


def test_server_and_client_were_closed():
    server, client = SEEN[-1]
    assert server.closed and client.holder.closed
"""


def test_a_users_test_file_sees_the_fixtures_and_nothing_else(tmp_path: pathlib.Path) -> None:
    (tmp_path / "test_user.py").write_text(textwrap.dedent(USER_TESTS))
    env = {**os.environ, "TINKER_TELEMETRY": "0", "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--strict-markers"]
    command += ["-q", "--rootdir", str(tmp_path), str(tmp_path)]
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "5 passed" in done.stdout
