"""Credential sources and `tinker.auth`: the stored default key, the credential command (run
only when it stands in for a key, its output sent only on the handshake and the exchange), and
the one-request access check with its exception mapping."""

from __future__ import annotations

import base64
import json
import pathlib
import socket
import sys
from collections.abc import Iterator

import pytest
from support.fake_service import FakeService, Reply

import tinker
from tinker.config import ClientConfig
from tinker.errors import (
    APIConnectionError,
    AuthenticationError,
    BillingError,
    InternalServerError,
    TinkerError,
)

CAPABILITIES = "/api/v1/get_server_capabilities"


@pytest.fixture(autouse=True)
def home(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """A home directory of its own, and no credential in the environment."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("TINKER_API_KEY", "TINKER_BASE_URL", "TINKER_CREDENTIAL_CMD"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _store(home: pathlib.Path, content: object) -> None:
    directory = home / ".tinker"
    directory.mkdir(exist_ok=True)
    text = content if isinstance(content, str) else json.dumps(content)
    (directory / "credentials.json").write_text(text)


STORED = {
    "version": 1,
    "default": "7",
    "keys": {
        "7": {"type": "manual", "key": "tml-stored", "name": "laptop"},
        "8": {"type": "manual", "key": "tml-other", "name": "old"},
    },
}


def test_the_token_is_the_env_key_else_the_stored_default(
    home: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tinker.auth.get_tinker_token() is None
    _store(home, STORED)
    assert tinker.auth.get_tinker_token() == "tml-stored"
    monkeypatch.setenv("TINKER_API_KEY", "tml-env")
    assert tinker.auth.get_tinker_token() == "tml-env"


@pytest.mark.parametrize(
    "content",
    ["{not json", [], {"default": None, "keys": {}}, {"default": "9", "keys": STORED["keys"]}],
)
def test_an_unusable_credentials_file_gives_no_token(home: pathlib.Path, content: object) -> None:
    _store(home, content)
    assert tinker.auth.get_tinker_token() is None
    assert tinker.auth.tinker_has_credentials() is False


def test_a_credential_command_counts_without_being_run(
    home: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = home / "ran"
    monkeypatch.setenv("TINKER_CREDENTIAL_CMD", f"touch {marker}; echo tml-x")
    assert tinker.auth.tinker_has_credentials() is True
    assert tinker.auth.get_tinker_token() is None
    assert not marker.exists()


def test_the_config_falls_back_to_the_stored_key_and_an_argument_wins(home: pathlib.Path) -> None:
    _store(home, STORED)
    assert ClientConfig.from_env(environ={}).api_key == "tml-stored"
    assert ClientConfig.from_env(environ={"TINKER_API_KEY": "tml-env"}).api_key == "tml-env"
    assert ClientConfig.from_env(environ={}, api_key="tml-arg").api_key == "tml-arg"
    command = ClientConfig.from_env(environ={"TINKER_CREDENTIAL_CMD": "echo tml-c"})
    assert (command.api_key, command.credential_command) == (None, "echo tml-c")
    assert "echo" not in repr(command)


def test_without_any_credential_the_message_names_every_source() -> None:
    with pytest.raises(TinkerError) as caught:
        ClientConfig.from_env(environ={})
    message = str(caught.value)
    assert "api_key=" in message and "TINKER_API_KEY" in message
    assert "credentials.json" in message and "TINKER_CREDENTIAL_CMD" in message


def _jwt(subject: str) -> str:
    claims = {"sub": subject, "org_id": "o", "exp": 10**10, "iat": 0}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJIUzI1NiJ9.{payload}.sig"


@pytest.fixture
def jwt_service() -> Iterator[FakeService]:
    with FakeService(session_id="SC", client_config={"pjwt_auth_enabled": True}) as svc:
        svc.direct("POST", "/api/v1/auth/token", lambda _body: {"jwt": _jwt("u")})
        yield svc


def _command(home: pathlib.Path, output: str) -> str:
    """A credential command printing `output` and counting its runs in a file."""
    script = home / "credential.py"
    count = home / "runs"
    script.write_text(
        "import pathlib, sys\n"
        f"p = pathlib.Path({str(count)!r})\n"
        "p.write_text(str(int(p.read_text()) + 1 if p.exists() else 1))\n"
        f"print({output!r})\n"
    )
    return f"{sys.executable} {script}"


def test_a_command_authenticates_the_handshake_and_the_exchange_only(
    home: pathlib.Path, jwt_service: FakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TINKER_CREDENTIAL_CMD", _command(home, "tml-from-command"))
    service = tinker.ServiceClient(base_url=jwt_service.url, telemetry=False)
    try:
        assert service.holder is not None
        keys = {r.path: r.headers.get("X-API-Key") for r in jwt_service.requests}
    finally:
        service.close()
    assert keys["/api/v1/client/config"] == "tml-from-command"
    assert keys["/api/v1/auth/token"] == "tml-from-command"
    assert keys["/api/v1/create_session"] == _jwt("u")
    assert (home / "runs").read_text() == "2"  # once per credential fetch


def test_a_command_alone_is_refused_by_a_server_without_jwt_auth(
    home: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TINKER_CREDENTIAL_CMD", _command(home, "tml-from-command"))
    with FakeService(client_config={"pjwt_auth_enabled": False}) as svc:
        service = tinker.ServiceClient(base_url=svc.url, telemetry=False)
        with pytest.raises(TinkerError, match="used only by servers with JWT auth"):
            assert service.holder is not None
        service.close()
        assert [r.path for r in svc.requests] == ["/api/v1/client/config"]


@pytest.mark.parametrize(
    ("command", "message"),
    [("exit 3", "exited with status 3"), ("true", "printed nothing")],
)
def test_a_failing_command_is_a_tinker_error_without_its_output(
    jwt_service: FakeService, monkeypatch: pytest.MonkeyPatch, command: str, message: str
) -> None:
    monkeypatch.setenv("TINKER_CREDENTIAL_CMD", command)
    service = tinker.ServiceClient(base_url=jwt_service.url, telemetry=False)
    with pytest.raises(TinkerError, match=message):
        assert service.holder is not None
    service.close()
    assert jwt_service.requests == []


# -- raise_if_tinker_not_accessible --------------------------------------------------------


def test_an_accepted_credential_costs_one_request(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeService() as svc:
        svc.direct("GET", CAPABILITIES, lambda _body: {"supported_models": []})
        monkeypatch.setenv("TINKER_BASE_URL", svc.url)
        monkeypatch.setenv("TINKER_API_KEY", "tml-good")
        assert tinker.auth.raise_if_tinker_not_accessible() is None
        assert [(r.method, r.path) for r in svc.requests] == [("GET", CAPABILITIES)]
        assert svc.requests[0].headers["X-API-Key"] == "tml-good"


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AuthenticationError), (402, BillingError), (500, InternalServerError)],
)
def test_a_refusal_is_raised_after_one_attempt(
    monkeypatch: pytest.MonkeyPatch, status: int, error: type[Exception]
) -> None:
    with FakeService() as svc:
        svc.direct("GET", CAPABILITIES, lambda _body: Reply(status, {"detail": "no"}))
        monkeypatch.setenv("TINKER_BASE_URL", svc.url)
        monkeypatch.setenv("TINKER_API_KEY", "tml-refused")
        with pytest.raises(error) as caught:
            tinker.auth.raise_if_tinker_not_accessible()
        assert len(svc.requests) == 1  # no retries, no billing pause
        assert "tml-refused" not in str(caught.value)


def test_no_credential_is_a_tinker_error_and_nothing_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with FakeService() as svc:
        monkeypatch.setenv("TINKER_BASE_URL", svc.url)
        with pytest.raises(TinkerError, match="No API key"):
            tinker.auth.raise_if_tinker_not_accessible()
        assert svc.requests == []


def test_an_unreachable_service_is_a_connection_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("TINKER_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("TINKER_API_KEY", "tml-k")
    with pytest.raises(APIConnectionError):
        tinker.auth.raise_if_tinker_not_accessible()


def test_other_failures_come_wrapped_in_a_tinker_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINKER_BASE_URL", "ftp://nowhere")
    monkeypatch.setenv("TINKER_API_KEY", "tml-k")
    with pytest.raises(TinkerError, match="could not check access to Tinker: ValueError"):
        tinker.auth.raise_if_tinker_not_accessible()


def test_an_expired_token_given_as_the_key_is_refused_before_sending() -> None:
    expired = (
        "eyJhbGciOiJIUzI1NiJ9."
        + base64.urlsafe_b64encode(json.dumps({"sub": "u", "exp": 1000}).encode())
        .decode()
        .rstrip("=")
        + ".sig"
    )
    with FakeService() as svc:
        rest = tinker.RestClient(base_url=svc.url, api_key=expired)
        with pytest.raises(
            TinkerError, match="api_key is a token \\(JWT\\) that has expired"
        ) as caught:
            rest.list_sessions().result(timeout=10)
        assert svc.requests == []
        assert expired not in str(caught.value)


# -- the credentials file's reader and writer ------------------------------------------------


def test_a_rewrite_keeps_records_and_fields_it_does_not_know(home: pathlib.Path) -> None:
    from tinker._credential_file import StoredKey, read_credentials, write_credentials

    foreign = {"type": "sso", "key": "tml-sso", "expires": 5, "details": {"x": None, "y": 1}}
    _store(home, {"version": 1, "default": None, "keys": {"3": foreign}})
    added = StoredKey(key_id="9", type="manual", key="tml-new", name="n", note=None)
    write_credentials(read_credentials().with_default(added))
    assert json.loads((home / ".tinker" / "credentials.json").read_text()) == {
        "version": 1,
        "default": "9",
        "keys": {
            "3": {"type": "sso", "key": "tml-sso", "expires": 5, "details": {"y": 1}},
            "9": {"type": "manual", "key": "tml-new", "name": "n"},
        },
    }
    assert tinker.auth.get_tinker_token() == "tml-new"
    assert "tml-new" not in repr(added)


def test_a_file_of_another_format_version_is_not_rewritten_but_its_key_is_used(
    home: pathlib.Path,
) -> None:
    from tinker._credential_file import CredentialsFileError, read_credentials

    _store(home, {**STORED, "version": 2})
    with pytest.raises(CredentialsFileError, match="has format version 2; this SDK reads and"):
        read_credentials()
    assert tinker.auth.get_tinker_token() == "tml-stored"


def test_an_unwritable_directory_is_a_clear_error(home: pathlib.Path) -> None:
    from tinker._credential_file import Credentials, CredentialsFileError, write_credentials

    (home / ".tinker").write_text("a file where the directory belongs")
    with pytest.raises(CredentialsFileError, match="cannot be written \\(FileExistsError\\)"):
        write_credentials(Credentials())


def test_a_failed_replace_leaves_the_old_file_and_no_temporary_one(
    home: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from tinker._credential_file import Credentials, CredentialsFileError, write_credentials

    _store(home, STORED)
    before = (home / ".tinker" / "credentials.json").read_text()

    def refuse(source: str, target: str) -> None:
        raise PermissionError("read-only")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(CredentialsFileError, match="cannot be written \\(PermissionError\\)"):
        write_credentials(Credentials())
    assert os.listdir(home / ".tinker") == ["credentials.json"]
    assert (home / ".tinker" / "credentials.json").read_text() == before
