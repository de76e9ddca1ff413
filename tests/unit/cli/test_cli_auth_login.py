"""`tinker auth login` and `logout`: the credentials file they leave (exact contents and modes),
the requests they send to `auth/apikey/me` (with `responses`), the key never shown, the key from
a hidden prompt or from standard input, the console links (OSC-8 on a terminal only)."""

from __future__ import annotations

import io
import json
import os
import pathlib
import socket
import stat
from typing import Any

import attrs
import pytest
import responses

from tinker.cli import main
from tinker.cli.context import Context

SERVICE = "http://tinker.test"
ME = f"{SERVICE}/api/v1/auth/apikey/me"
KEY = "tml-pasted-secret"
RECORD = {
    "key_id": 42,
    "name": "tinker-cli-laptop",
    "note": None,
    "details": {"org_details": {"name": "Acme"}, "user_details": {"email": "ada@acme.test"}},
}
CONSOLE = "https://tinker.thinkingmachines.ai"
NEW_KEY_URL = (
    f"{CONSOLE}/keys?new_key=true&key_name=tinker-cli-{socket.gethostname().split('.')[0]}"
)


class Terminal(io.StringIO):
    """Captured output that claims to be a terminal."""

    def isatty(self) -> bool:
        return True


@attrs.frozen
class Outcome:
    code: int
    out: str
    err: str
    prompts: list[str]


@pytest.fixture(autouse=True)
def home(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """A home directory of its own, the fake service as the default URL, no key in the env."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("TINKER_BASE_URL", SERVICE)
    for name in ("TINKER_API_KEY", "TINKER_CREDENTIAL_CMD"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def service() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def run_tinker(
    *argv: str,
    stdin: str | None = None,
    typed: str = KEY,
    stdout: io.StringIO | None = None,
) -> Outcome:
    """Run the CLI: with `stdin` the key is piped in, else typed at the hidden prompt."""
    out, err, prompts = stdout or io.StringIO(), io.StringIO(), []

    def secret(text: str) -> str:
        prompts.append(text)
        return typed

    ctx = Context(
        stdout=out,
        stderr=err,
        stdin=io.StringIO(stdin or ""),
        interactive=stdin is None,
        secret_prompt=secret,
    )
    code = main(list(argv), context=ctx)
    return Outcome(code, out.getvalue(), err.getvalue(), prompts)


def credentials(home: pathlib.Path) -> Any:
    return json.loads((home / ".tinker" / "credentials.json").read_text())


def store(home: pathlib.Path, content: Any) -> pathlib.Path:
    directory = home / ".tinker"
    directory.mkdir(mode=0o700, exist_ok=True)
    path = directory / "credentials.json"
    path.write_text(json.dumps(content))
    return path


def test_login_checks_the_key_and_stores_it_as_the_default(
    home: pathlib.Path, service: Any
) -> None:
    service.get(ME, json=RECORD)
    outcome = run_tinker("auth", "login")
    assert outcome.code == 0, outcome.err
    path = home / ".tinker" / "credentials.json"
    assert outcome.out.splitlines() == [
        f"Create an API key in the Tinker console: {NEW_KEY_URL}",
        "Logged in as ada@acme.test (organization Acme).",
        f'Stored the key "tinker-cli-laptop" (id 42) as the default in {path}.',
    ]
    assert outcome.prompts == ["API key (input hidden): "]
    assert KEY not in outcome.out + outcome.err
    assert credentials(home) == {
        "version": 1,
        "default": "42",
        "keys": {
            "42": {  # the null note is left out
                "type": "manual",
                "key": KEY,
                "name": "tinker-cli-laptop",
                "details": RECORD["details"],
            }
        },
    }
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(path.parent) == ["credentials.json"]  # no temporary file left behind
    (call,) = service.calls
    assert (call.request.method, call.request.url) == ("GET", ME)
    assert call.request.headers["X-API-Key"] == KEY
    assert call.request.req_kwargs["timeout"] == 30


def test_the_new_key_link_is_a_hyperlink_on_a_terminal_only(service: Any) -> None:
    service.get(ME, json=RECORD)
    shown = run_tinker("auth", "login", stdout=Terminal())
    assert shown.code == 0, shown.err
    osc8 = f"\x1b]8;;{NEW_KEY_URL}\x1b\\{NEW_KEY_URL}\x1b]8;;\x1b\\"
    assert shown.out.splitlines()[0] == f"Create an API key in the Tinker console: {osc8}"


def test_login_refuses_while_a_default_key_is_stored(home: pathlib.Path, service: Any) -> None:
    stored = {"version": 1, "default": 7, "keys": {"7": {"type": "manual", "key": "tml-old"}}}
    path = store(home, stored)
    outcome = run_tinker("auth", "login")
    assert outcome.code == 1
    assert outcome.err == (
        f"Error: Already logged in: the default key id 7 is stored in {path}; "
        "run `tinker auth logout` first\n"
    )
    assert (outcome.out, outcome.prompts, len(service.calls)) == ("", [], 0)
    assert credentials(home) == stored


def test_a_refused_key_is_reported_with_the_detail_and_nothing_is_stored(
    home: pathlib.Path, service: Any
) -> None:
    service.get(ME, status=401, json={"detail": f"Unknown API key {KEY}"})
    outcome = run_tinker("auth", "login")
    assert outcome.code == 1
    assert outcome.err == "Error: The service answered HTTP 401: Unknown API key ***\n"
    assert KEY not in outcome.out + outcome.err
    assert not (home / ".tinker").exists()


def test_an_answer_without_detail_is_reported_by_its_status(
    home: pathlib.Path, service: Any
) -> None:
    service.get(ME, status=503, body="<html>busy</html>")
    outcome = run_tinker("auth", "login", stdin=KEY)
    assert outcome.err == "Error: The service answered HTTP 503: Service Unavailable\n"
    assert not (home / ".tinker").exists()


def test_the_key_can_come_from_standard_input(home: pathlib.Path, service: Any) -> None:
    service.get(ME, json=RECORD)
    outcome = run_tinker("auth", "login", stdin=f"  {KEY}\n")
    assert outcome.code == 0, outcome.err
    assert outcome.prompts == []
    assert "console" not in outcome.out  # no link to follow in a script
    assert service.calls[0].request.headers["X-API-Key"] == KEY
    assert credentials(home)["keys"]["42"]["key"] == KEY


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("\n", "No API key on standard input: pipe the key in, or run tinker auth login in a "),
        (f"{KEY}\n{KEY}\n", "The API key contains spaces or control characters; give the key"),
    ],
)
def test_a_missing_or_malformed_key_is_refused_before_sending(
    home: pathlib.Path, service: Any, stdin: str, message: str
) -> None:
    outcome = run_tinker("auth", "login", stdin=stdin)
    assert outcome.code == 1
    assert outcome.err.startswith(f"Error: {message}")
    assert KEY not in outcome.err
    assert (len(service.calls), (home / ".tinker").exists()) == (0, False)


def test_an_empty_prompt_answer_is_no_key(service: Any) -> None:
    outcome = run_tinker("auth", "login", typed="  ")
    assert (outcome.code, outcome.err, len(service.calls)) == (1, "Error: No API key entered\n", 0)


def test_login_does_not_take_the_key_from_the_command_line(service: Any) -> None:
    outcome = run_tinker("auth", "login", "--api-key", KEY)
    assert outcome.code == 1
    assert "not from --api-key" in outcome.err and KEY not in outcome.err
    assert len(service.calls) == 0


def test_login_and_logout_use_the_base_url_option(home: pathlib.Path, service: Any) -> None:
    other = "https://other.test/prefix"
    service.get(f"{other}/api/v1/auth/apikey/me", json=RECORD)
    assert run_tinker("auth", "login", "--base-url", other, stdin=KEY).code == 0
    service.delete(f"{other}/api/v1/auth/apikey/me", status=204)
    stored = credentials(home)
    stored["keys"]["42"]["type"] = "generated"
    store(home, stored)
    assert run_tinker("auth", "logout", "--base-url", other).code == 0
    assert [(c.request.method, c.request.url) for c in service.calls] == [
        ("GET", f"{other}/api/v1/auth/apikey/me"),
        ("DELETE", f"{other}/api/v1/auth/apikey/me"),
    ]


def test_login_in_json_mode_prints_one_object_and_the_link_on_stderr(
    home: pathlib.Path, service: Any
) -> None:
    service.get(ME, json=RECORD)
    outcome = run_tinker("auth", "login", "--format", "json")
    assert outcome.code == 0, outcome.err
    assert json.loads(outcome.out) == {
        "email": "ada@acme.test",
        "organization": "Acme",
        "key_id": "42",
        "key_name": "tinker-cli-laptop",
        "credentials_file": str(home / ".tinker" / "credentials.json"),
    }
    assert outcome.err == f"Create an API key in the Tinker console: {NEW_KEY_URL}\n"


def test_login_says_when_the_environment_key_takes_precedence(
    service: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TINKER_API_KEY", "tml-from-env")
    service.get(ME, json=RECORD)
    outcome = run_tinker("auth", "login", stdin=KEY)
    assert outcome.code == 0
    assert outcome.err == (
        "Note: TINKER_API_KEY is set; clients use it instead of the stored key.\n"
    )
    assert service.calls[0].request.headers["X-API-Key"] == KEY


def test_a_broken_credentials_file_is_named_and_left_alone(
    home: pathlib.Path, service: Any
) -> None:
    directory = home / ".tinker"
    directory.mkdir()
    path = directory / "credentials.json"
    path.write_text("{not json")
    outcome = run_tinker("auth", "login", stdin=KEY)
    assert outcome.code == 1
    assert outcome.err == f"Error: the credentials file {path} is not valid JSON\n"
    assert path.read_text() == "{not json"
    assert len(service.calls) == 0


# -- logout -------------------------------------------------------------------------------

OTHER = {"type": "manual", "key": "tml-other", "name": "old", "vendor_field": [1]}


def _logged_in(home: pathlib.Path, kind: str) -> pathlib.Path:
    return store(
        home,
        {
            "version": 1,
            "default": "42",
            "keys": {
                "42": {"type": kind, "key": KEY, "name": "cli", "details": RECORD["details"]},
                "8": OTHER,
            },
        },
    )


def test_logout_of_a_pasted_key_removes_it_and_links_to_its_deletion(
    home: pathlib.Path, service: Any
) -> None:
    path = _logged_in(home, "manual")
    outcome = run_tinker("auth", "logout")
    assert outcome.code == 0, outcome.err
    assert outcome.out.splitlines() == [
        f'Logged out: removed the key "cli" (id 42) from {path}.',
        f"The key works until you delete it in the Tinker console: {CONSOLE}/keys/42",
    ]
    assert len(service.calls) == 0  # a pasted key is not revoked from here
    assert credentials(home) == {"version": 1, "default": None, "keys": {"8": OTHER}}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    on_terminal = _logged_in(home, "manual")
    shown = run_tinker("auth", "logout", stdout=Terminal())
    url = f"{CONSOLE}/keys/42"
    assert shown.out.splitlines()[1].endswith(f"\x1b]8;;{url}\x1b\\{url}\x1b]8;;\x1b\\")
    assert on_terminal.exists()


def test_logout_of_a_generated_key_revokes_it_on_the_service(
    home: pathlib.Path, service: Any
) -> None:
    path = _logged_in(home, "generated")
    service.delete(ME, status=204)
    outcome = run_tinker("auth", "logout", "-f", "json")
    assert outcome.code == 0, outcome.err
    assert json.loads(outcome.out) == {
        "key_id": "42",
        "key_name": "cli",
        "type": "generated",
        "revoked": True,
        "delete_url": None,
        "credentials_file": str(path),
    }
    (call,) = service.calls
    assert (call.request.method, call.request.url) == ("DELETE", ME)
    assert call.request.headers["X-API-Key"] == KEY
    assert call.request.req_kwargs["timeout"] == 30
    assert credentials(home)["keys"] == {"8": OTHER}


def test_a_failed_revocation_warns_and_still_logs_out(home: pathlib.Path, service: Any) -> None:
    path = _logged_in(home, "generated")
    service.delete(ME, status=500, json={"detail": "revocation is down"})
    outcome = run_tinker("auth", "logout")
    assert outcome.code == 0
    assert outcome.err == (
        "Warning: the key was not revoked on the service: "
        "The service answered HTTP 500: revocation is down\n"
    )
    assert outcome.out.splitlines() == [
        f'Logged out: removed the key "cli" (id 42) from {path}.',
        f"The key works until you delete it in the Tinker console: {CONSOLE}/keys/42",
    ]
    assert credentials(home)["default"] is None


def test_logout_without_a_default_key_says_so(home: pathlib.Path, service: Any) -> None:
    outcome = run_tinker("auth", "logout")
    path = home / ".tinker" / "credentials.json"
    assert outcome.code == 1
    assert outcome.err == f"Error: Not logged in: no default key is stored in {path}\n"
    assert not path.exists()
    store(home, {"version": 1, "default": None, "keys": {"8": OTHER}})
    assert run_tinker("auth", "logout").code == 1
    assert credentials(home)["keys"] == {"8": OTHER}


def test_logout_then_login_again(home: pathlib.Path, service: Any) -> None:
    _logged_in(home, "manual")
    assert run_tinker("auth", "logout").code == 0
    service.get(ME, json=RECORD)
    assert run_tinker("auth", "login", stdin=KEY).code == 0
    stored = credentials(home)
    assert (stored["default"], sorted(stored["keys"])) == ("42", ["42", "8"])


def test_a_default_record_without_a_key_is_named(home: pathlib.Path, service: Any) -> None:
    store(home, {"version": 1, "default": "7", "keys": {"7": {"type": "manual", "name": "x"}}})
    for command in ("login", "logout"):
        outcome = run_tinker("auth", command, stdin=KEY)
        assert (outcome.code, outcome.err) == (
            1,
            "Error: the credentials file's record of key '7' has no key\n",
        )
    assert len(service.calls) == 0
