from __future__ import annotations

import io
import subprocess
import sys
import time

import pytest
from cli_fakes import Cli, FakeClients, FakeRest, TtyBuffer
from support.fake_service import FakeService, Reply

from tinker import errors
from tinker.cli import main
from tinker.cli.context import Context


def _status(kind: type[errors.APIStatusError], code: int) -> errors.APIStatusError:
    return kind(f"Error code: {code} - boom", status_code=code)


@pytest.mark.parametrize(
    ("exc", "headline"),
    [
        (_status(errors.NotFoundError, 404), "Resource not found"),
        (_status(errors.AuthenticationError, 401), "Authentication failed"),
        (_status(errors.PermissionDeniedError, 403), "Permission denied"),
        (_status(errors.BadRequestError, 400), "Invalid request"),
        (_status(errors.UnprocessableEntityError, 422), "Invalid data provided"),
        (_status(errors.RateLimitError, 429), "Rate limit exceeded"),
        (_status(errors.InternalServerError, 503), "Internal server error"),
        (_status(errors.APIStatusError, 418), "API error (status 418)"),
        (errors.APITimeoutError("Request timed out."), "Request timeout"),
        (errors.APIConnectionError(), "Connection failed"),
    ],
)
def test_api_errors_map_to_friendly_messages(cli: Cli, exc: BaseException, headline: str) -> None:
    cli.rest.errors["get_training_run"] = exc
    result = cli("run", "info", "run-1")
    assert result.code == 1
    assert result.out == ""
    assert result.err == f"Error: {headline}\n  {exc}\n"
    assert cli.clients.closed


def test_unexpected_errors_say_so_with_the_type(cli: Cli) -> None:
    cli.rest.errors["list_sessions"] = RuntimeError("kaput")
    result = cli("session", "list")
    assert (result.code, result.err) == (
        1,
        "Error: Unexpected error occurred\n  RuntimeError: kaput\n",
    )


def test_ctrl_c_exits_130(cli: Cli) -> None:
    cli.rest.errors["list_sessions"] = KeyboardInterrupt()
    result = cli("session", "list")
    assert result.code == 130
    assert result.err == "\nInterrupted.\n"


def _run_with_stderr(stderr: io.StringIO, rest: FakeRest, *argv: str) -> int:
    ctx = Context(stdout=io.StringIO(), stderr=stderr, interactive=False)
    return main(list(argv), client_factory=FakeClients(rest), context=ctx)


def test_traceback_only_on_a_terminal_or_with_debug_logging(
    monkeypatch: pytest.MonkeyPatch, rest: FakeRest
) -> None:
    monkeypatch.delenv("TINKER_LOG", raising=False)
    rest.errors["get_session"] = RuntimeError("kaput")
    plain, tty, debug = io.StringIO(), TtyBuffer(), io.StringIO()
    assert _run_with_stderr(plain, rest, "session", "info", "s") == 1
    assert _run_with_stderr(tty, rest, "session", "info", "s") == 1
    monkeypatch.setenv("TINKER_LOG", "debug")
    assert _run_with_stderr(debug, rest, "session", "info", "s") == 1
    assert "Traceback" not in plain.getvalue()
    for stream in (tty, debug):
        assert stream.getvalue().startswith("Traceback (most recent call last):")
        assert stream.getvalue().endswith(
            "RuntimeError: kaput\nError: Unexpected error occurred\n  RuntimeError: kaput\n"
        )


def test_the_api_key_is_never_printed(monkeypatch: pytest.MonkeyPatch, rest: FakeRest) -> None:
    monkeypatch.setenv("TINKER_API_KEY", "tml-from-env")
    monkeypatch.setenv("TINKER_LOG", "debug")
    rest.errors["get_session"] = errors.AuthenticationError(
        "Error code: 401 - bad key tml-from-env / tml-explicit", status_code=401
    )
    err = TtyBuffer()
    assert _run_with_stderr(err, rest, "--api-key", "tml-explicit", "session", "info", "s") == 1
    text = err.getvalue()
    assert "Error: Authentication failed" in text
    assert "tml-from-env" not in text and "tml-explicit" not in text
    assert "bad key *** / ***" in text


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=60)


def test_module_entry_point_and_light_startup() -> None:
    from tinker._version import __version__

    result = _python("-m", "tinker.cli", "version")
    assert (result.returncode, result.stdout) == (0, f"tinker {__version__}\n")
    code = (
        "import sys\n"
        "from tinker.cli import main\n"
        "assert main(['version']) == 0\n"
        "heavy = {'requests', 'urllib3', 'numpy', 'cattrs', 'tokenizers', 'safetensors'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    result = _python("-c", code)
    assert result.stdout.splitlines()[-1] == "[]", result.stderr


def test_usage_errors_exit_2_with_argparse_message() -> None:
    result = _python("-m", "tinker.cli", "checkpoint", "frobnicate")
    assert result.returncode == 2
    assert "invalid choice: 'frobnicate'" in result.stderr
    result = _python("-m", "tinker.cli", "version", "--bogus")
    assert result.returncode == 2
    assert "unrecognized arguments: --bogus" in result.stderr


def test_no_traceback_for_the_clis_own_messages(
    monkeypatch: pytest.MonkeyPatch, rest: FakeRest
) -> None:
    monkeypatch.delenv("TINKER_LOG", raising=False)
    err = TtyBuffer()
    assert _run_with_stderr(err, rest, "checkpoint", "info", "tinker://r/weights/x") == 1
    assert err.getvalue() == "Error: checkpoint not found: tinker://r/weights/x\n"


def test_billing_errors_say_so_and_how_to_fix_it(cli: Cli) -> None:
    cli.admin.errors["get_current_checkpoint_storage_usage"] = _status(errors.BillingError, 402)
    result = cli("billing", "checkpoint-storage")
    assert (result.code, result.out) == (1, "")
    assert result.err.splitlines() == [
        "Error: Billing issue",
        "  Error code: 402 - boom",
        "  Hint: Set up billing for your organization in the Tinker console "
        "(https://tinker.thinkingmachines.ai), or ask one of its admins to.",
    ]


def test_a_402_from_the_service_fails_at_once_as_a_billing_issue() -> None:
    """The SDK's pause on 402s is for unattended programs: the CLI's own clients (no client
    factory injected) report it at once."""
    path = "/api/v1/billing/usage/checkpoints/current"
    with FakeService() as http:
        http.script[path].append(Reply(402, {"detail": "billing is not set up"}))
        out, err = io.StringIO(), io.StringIO()
        ctx = Context(stdout=out, stderr=err, interactive=False)
        started = time.monotonic()
        argv = ["billing", "checkpoint-storage", "--base-url", http.url, "--api-key", "tml-k"]
        assert main(argv, context=ctx) == 1
        assert time.monotonic() - started < 5.0
        assert len(http.seen(path)) == 1
    assert out.getvalue() == ""
    lines = err.getvalue().splitlines()
    assert lines[0] == "Error: Billing issue"
    assert "billing is not set up" in lines[1]
    assert lines[2].startswith("  Hint: Set up billing for your organization")
