"""A new user's first hour: small programs of the kinds users write (plain scripts, spawn
workers, legacy `concurrent.futures` code, a type-checked project), run as users run them,
asserting clean exits, prompt interrupts, errors that say what to do, and types that catch
typos."""

from __future__ import annotations

import concurrent.futures
import logging
import os
import pathlib
import pickle
import pydoc
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from typing import Any

import pytest

import tinker
from tinker import types
from tinker.errors import APIConnectionError, NotFoundError, RequestFailedError

from .processes import ServerProcess
from .runs import ADAM, MODEL, batch, train

# A script's exit (after its last line ran) may take this long, with at most this much noise.
EXIT_SECONDS = 3.0
PROLOGUE = """\
import sys, time
import tinker
from tinker import types

PROMPT = types.ModelInput.from_ints([65, 66, 67])
LONG = types.SamplingParams(max_tokens=250)


def datum(length=32):
    tokens = list(range(1, length + 2))
    return types.Datum(
        model_input=types.ModelInput.from_ints(tokens[:-1]),
        loss_fn_inputs={"weights": [1.0] * length, "target_tokens": tokens[1:]},
    )


def done():
    print("LAST LINE", flush=True)
"""


def script_env(tmp_path: pathlib.Path) -> dict[str, str]:
    """A user's environment: telemetry left on, the embedded server's data in `tmp_path`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TINKER_", "PYTEST_"))
    }
    env["TINKER_LOCAL_DATA_DIR"] = str(tmp_path / "local")
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    return env


def start_script(tmp_path: pathlib.Path, body: str) -> subprocess.Popen[str]:
    path = tmp_path / "user_script.py"
    path.write_text(PROLOGUE + textwrap.dedent(body))
    return subprocess.Popen(
        [sys.executable, str(path)],
        cwd=tmp_path,
        env=script_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish_after_last_line(process: subprocess.Popen[str]) -> tuple[float, int, str, str]:
    """Wait for the script's last line, then for its exit: (seconds between them, rc, out, err)."""
    assert process.stdout is not None
    first = process.stdout.readline()
    reached = time.monotonic()
    out, err = process.communicate(timeout=60)
    return time.monotonic() - reached, process.returncode, first + out, err


def log_lines(stderr: str) -> list[str]:
    """stderr without the user's own traceback (the lines from 'Traceback' to the exception)."""
    lines = stderr.splitlines()
    if "Traceback (most recent call last):" not in lines:
        return lines
    start = lines.index("Traceback (most recent call last):")
    end = start + 1
    while end < len(lines) and (lines[end].startswith(" ") or lines[end].startswith("^")):
        end += 1
    return lines[:start] + lines[end + 1 :]


# -- 1 and 7: exit, interrupt ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected_rc", "user_error"),
    [
        pytest.param(
            """
            client = tinker.ServiceClient(base_url="local")
            sampler = client.create_sampling_client(base_model="tinker-local/tiny")
            pending = sampler.sample(PROMPT, 1, LONG)
            done()
            """,
            0,
            None,
            id="pending-sample-without-close",
        ),
        pytest.param(
            """
            with tinker.ServiceClient(base_url="local") as client:
                sampler = client.create_sampling_client(base_model="tinker-local/tiny")
                pending = [sampler.sample(PROMPT, 1, LONG) for _ in range(4)]
                done()
            """,
            0,
            None,
            id="pending-samples-inside-with",
        ),
        pytest.param(
            """
            client = tinker.ServiceClient(base_url="local")
            trainer = client.create_lora_training_client(base_model="tinker-local/tiny", rank=4)
            pending = [trainer.forward_backward([datum(200)], "cross_entropy") for _ in range(20)]
            pending.append(trainer.optim_step(types.AdamParams(learning_rate=1e-3)))
            done()
            raise RuntimeError("a bug in the user's script")
            """,
            1,
            "RuntimeError: a bug in the user's script",
            id="pending-training-then-an-exception",
        ),
    ],
)
def test_a_script_ending_with_work_pending_exits_at_once_with_one_line(
    tmp_path: pathlib.Path, body: str, expected_rc: int, user_error: str | None
) -> None:
    elapsed, rc, out, err = finish_after_last_line(start_script(tmp_path, body))
    assert out.startswith("LAST LINE"), err
    assert rc == expected_rc, err
    assert elapsed < EXIT_SECONDS, err
    noise = log_lines(err)
    assert len(noise) == 1, err
    assert "pending" in noise[0] and noise[0].endswith("failed with ClientClosedError"), err
    assert err.count("Traceback") == (0 if user_error is None else 1), err
    if user_error is not None:
        assert user_error in err
    assert "telemetry" not in err.lower()  # telemetry stayed on and said nothing


def test_ctrl_c_during_a_local_result_exits_promptly(tmp_path: pathlib.Path) -> None:
    process = start_script(
        tmp_path,
        """
        client = tinker.ServiceClient(base_url="local")
        trainer = client.create_lora_training_client(base_model="tinker-local/tiny", rank=4)
        pending = [trainer.forward_backward([datum(200)], "cross_entropy") for _ in range(100)]
        done()
        pending[-1].result()
        """,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "LAST LINE\n"
    time.sleep(0.3)  # inside result()
    interrupted = time.monotonic()
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=60)
    assert time.monotonic() - interrupted < EXIT_SECONDS, err
    assert process.returncode == -signal.SIGINT, err
    assert "KeyboardInterrupt" in err and err.count("Traceback") == 1, err
    noise = log_lines(err)
    assert len(noise) == 1 and noise[0].endswith("failed with ClientClosedError"), err


def test_the_server_logs_one_line_when_a_client_dies_mid_request(
    make_server: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    server = make_server()
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    caplog.set_level(logging.DEBUG, logger="tinker.local")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            b"POST /api/v1/asample HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"prompt": '
        )
        time.sleep(0.2)
        # the process dies: its socket is reset, not closed in order
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not [
        r for r in caplog.records if "went away" in r.message or "ended" in r.message
    ]:
        time.sleep(0.05)
    about_it = [r for r in caplog.records if "127.0.0.1" in r.getMessage()]
    assert len(about_it) == 1, [r.getMessage() for r in caplog.records]
    assert about_it[0].exc_info is None and about_it[0].levelno <= logging.INFO
    assert "reset" in about_it[0].getMessage().lower()


# -- 2: a killed server ------------------------------------------------------------------------

# Short bounds: a server that does not answer for 2 s is gone.
DEAD_SERVER_BOUNDS = {"timeout": 2.0, "max_retries": 1, "submit_retry_seconds": 2.0}


def _submitted(trainer: Any, steps: int) -> list[Any]:
    futures = []
    for step in range(steps):
        futures.append(trainer.forward_backward(batch(step, size=8, length=64), "cross_entropy"))
        futures.append(trainer.optim_step(ADAM))
    return futures


@pytest.mark.usefixtures("fast_backoff")
def test_result_after_the_server_was_killed_names_the_url_the_loss_and_the_way_back(
    tmp_path: pathlib.Path, processes: list[ServerProcess], make_client: Callable[..., Any]
) -> None:
    server = ServerProcess(tmp_path / "data")
    processes.append(server)
    trainer = make_client(server.url, **DEAD_SERVER_BOUNDS).create_lora_training_client(
        base_model=MODEL, rank=4
    )
    pending = _submitted(trainer, 10)
    server.kill()
    started = time.monotonic()
    with pytest.raises(APIConnectionError) as error:
        pending[-1].result(timeout=60)
    elapsed = time.monotonic() - started
    assert elapsed < 15  # by the bound, not one bound per pending operation (40 s)
    message = str(error.value)
    print(f"dead server: the last of 20 pending operations failed after {elapsed:.1f} s: {message}")
    assert server.url in message
    # not sent yet when the server died, or sent and then polled in vain
    assert "it was not sent, so it did not run." in message or "its result is lost." in message
    assert "create_training_client_from_state_with_optimizer" in message


@pytest.mark.usefixtures("fast_backoff")
def test_a_result_lost_to_a_restart_says_to_resume_from_a_checkpoint(
    tmp_path: pathlib.Path, processes: list[ServerProcess], make_client: Callable[..., Any]
) -> None:
    first = ServerProcess(tmp_path / "data")
    processes.append(first)
    client = make_client(first.url, timeout=5.0, submit_retry_seconds=60.0)
    trainer = client.create_lora_training_client(base_model=MODEL, rank=4)
    pending = _submitted(trainer, 10)
    while not any(future.request_id for future in pending):
        time.sleep(0.01)
    polled = next(future for future in pending if future.request_id)
    first.kill()
    processes.append(ServerProcess(tmp_path / "data", port=first.port))
    with pytest.raises(NotFoundError) as error:
        polled.result(timeout=60)
    message = str(error.value)
    assert first.url in message and "restarted" in message and "lost" in message
    assert "Resume from your last checkpoint" in message
    assert "create_training_client_from_state_with_optimizer" in message


# -- 3: spawn workers share the parent's embedded server -----------------------------------------


def test_a_sampler_of_saved_weights_works_in_a_spawn_worker(tmp_path: pathlib.Path) -> None:
    process = start_script(
        tmp_path,
        """
        import multiprocessing


        def work(sampler):
            import tinker.local

            params = types.SamplingParams(max_tokens=6, seed=3)
            result = sampler.sample(PROMPT, 1, params).result(timeout=60)
            return list(result.sequences[0].tokens), tinker.local._shared is None


        if __name__ == "__main__":
            client = tinker.ServiceClient(base_url="local")
            trainer = client.create_lora_training_client(base_model="tinker-local/tiny", rank=4)
            trainer.forward_backward([datum()], "cross_entropy")
            trainer.optim_step(types.AdamParams(learning_rate=0.05))
            sampler = trainer.save_weights_and_get_sampling_client("for-workers")
            here = sampler.sample(PROMPT, 1, types.SamplingParams(max_tokens=6, seed=3))
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                there, no_server_of_its_own = pool.apply(work, (sampler,))
            print(list(here.result().sequences[0].tokens) == there, no_server_of_its_own)
            client.close()
        """,
    )
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert out.split() == ["True", "True"], err


# -- 4: types that catch typos, seen from outside the repository --------------------------------


def test_mypy_outside_the_repository_rejects_a_typo_in_a_loss_name(tmp_path: pathlib.Path) -> None:
    assert (pathlib.Path(tinker.__file__).parent / "py.typed").is_file()
    user = tmp_path / "user_code.py"
    user.write_text(
        textwrap.dedent(
            """
            import tinker
            from tinker import types


            def step(client: tinker.ServiceClient, data: list[types.Datum]) -> None:
                trainer = client.create_lora_training_client(base_model="m", rank=8)
                trainer.forward_backward(data, "cross_entropy").result()
                trainer.forward_backward(data, "cross_entropyy").result()
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MYPYPATH")}
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", user.name],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = checked.stdout + checked.stderr
    assert checked.returncode == 1, report
    errors = [line for line in report.splitlines() if ": error:" in line]
    assert len(errors) == 1, report  # tinker was found, and only the typo is wrong
    assert errors[0].startswith("user_code.py:9: error:")
    assert "\"Literal['cross_entropyy']\"" in errors[0] and "cross_entropy" in errors[0]


# -- 5: the timeout of result() on every supported Python ---------------------------------------


def test_result_timeout_is_caught_as_concurrent_futures_and_builtin_timeout() -> None:
    future: tinker.APIFuture[int] = tinker.APIFuture()
    with pytest.raises(concurrent.futures.TimeoutError):
        future.result(timeout=0.01)
    with pytest.raises(TimeoutError):
        future.result(timeout=0.01)
    try:
        future.result(timeout=0)
    except concurrent.futures.TimeoutError as caught:  # legacy code's spelling, on 3.10 too
        assert isinstance(caught, TimeoutError)
        assert str(caught) == "no result within 0s"


# -- 6: a refused connection --------------------------------------------------------------------


def closed_port() -> int:
    """A loopback port where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_refused_connection_fails_at_once_naming_the_url() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    with pytest.raises(APIConnectionError) as error:
        service = tinker.ServiceClient(base_url=url, api_key="tml-refused-0123456789")
        service.create_lora_training_client(base_model=MODEL, rank=4).result(timeout=30)
    assert time.monotonic() - started < 5.0  # the connect timeout, not the 60 s read timeout
    assert str(error.value).startswith(f"Cannot connect to {url}/api/v1/client/config: ")
    assert "refused" in str(error.value)


def test_the_cli_reports_a_refused_connection_naming_the_url(tmp_path: pathlib.Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    env = {**script_env(tmp_path), "TINKER_API_KEY": "tml-refused-0123456789"}
    started = time.monotonic()
    cli = subprocess.run(
        [sys.executable, "-m", "tinker.cli", "--base-url", url, "run", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert time.monotonic() - started < 10.0
    assert cli.returncode != 0
    assert url in cli.stderr and "refused" in cli.stderr, cli.stderr
    assert "Traceback" not in cli.stderr and "tml-refused" not in cli.stderr


# -- 9: errors that say what to do, exports, pickling, help --------------------------------------


def test_a_failed_request_says_what_failed_without_debug_text(
    make_server: Callable[..., Any], make_client: Callable[..., Any]
) -> None:
    trainer = make_client(make_server().url).create_lora_training_client(base_model=MODEL, rank=4)
    bad = types.Datum(
        model_input=types.ModelInput.from_ints([1, 2]),
        loss_fn_inputs={"weights": [1.0, 1.0], "target_tokens": [300_000, 2]},
    )
    with pytest.raises(RequestFailedError) as error:
        trainer.forward_backward([bad], "cross_entropy").result(timeout=60)
    message = str(error.value)
    assert message.startswith("ForwardBackward request ")
    assert message.endswith(
        " failed: datum 0: target_tokens[0] = 300000 is outside the vocabulary (0..259)"
    )
    assert "self." not in message and "model_cls" not in message


def test_sampling_an_unsaved_path_says_to_save_first(
    make_server: Callable[..., Any], make_client: Callable[..., Any]
) -> None:
    client = make_client(make_server().url)
    with pytest.raises(NotFoundError) as error:
        client.create_sampling_client(
            model_path="tinker://nothing/sampler_weights/never-saved"
        ).result(timeout=30)
    message = str(error.value)
    assert message.startswith("No sampler weights at tinker://nothing/sampler_weights/never-saved")
    assert "save_weights_for_sampler(name)" in message


def test_client_closed_error_is_exported() -> None:
    from tinker._workers import ClientClosedError

    assert tinker.ClientClosedError is ClientClosedError
    assert "ClientClosedError" in tinker.__all__
    assert issubclass(ClientClosedError, tinker.TinkerError)


def test_a_pickled_training_client_continues_in_the_copy_and_the_original_stops(
    make_server: Callable[..., Any], make_client: Callable[..., Any]
) -> None:
    client = make_client(make_server().url)
    reference = train(client.create_lora_training_client(base_model=MODEL, rank=4, seed=5), 0, 5)
    trainer = client.create_lora_training_client(base_model=MODEL, rank=4, seed=5)
    losses = train(trainer, 0, 2)
    copy = pickle.loads(pickle.dumps(trainer))
    assert copy.model_id == trainer.model_id
    with pytest.raises(tinker.TinkerError) as error:
        trainer.forward_backward(batch(9), "cross_entropy")
    assert str(error.value).startswith(f"this TrainingClient of {trainer.model_id} was pickled")
    losses += train(copy, 2, 4)
    moved_on = pickle.loads(pickle.dumps(copy))  # a copy moves on the same way
    with pytest.raises(tinker.TinkerError):
        copy.optim_step(ADAM)
    losses += train(moved_on, 4, 5)
    assert losses == reference  # one run, continued in order by each holder in turn


def test_help_of_forward_backward_is_a_full_docstring() -> None:
    text = pydoc.render_doc(tinker.TrainingClient.forward_backward, renderer=pydoc.plaintext)
    assert len(text.splitlines()) >= 15
    for needle in ("cross_entropy", "importance_sampling", "target_tokens", "optim_step"):
        assert needle in text
