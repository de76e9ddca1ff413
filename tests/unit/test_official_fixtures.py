"""The committed captures of the official SDKs (tests/fixtures/official-*) are whole and clean.

Every call listed in an index has its file and every file is listed; each request names its
method, path and headers; no credential from the capture run was committed (only placeholders);
and the facts the wire tests rely on hold in the files themselves (0.38: forward_backward is
protobuf and its polls ask for protobuf; JWT mode: every request after the exchange carries it).
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures"
DIRECTORIES = sorted(FIXTURES.glob("official-*"))


def requests_of(directory: pathlib.Path) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path in sorted((directory / "calls").glob("*.json")):
        fixture = json.loads(path.read_text())
        for mode, requests in fixture["modes"].items():
            found.extend((fixture["call"], mode, request) for request in requests)
    return found


def test_both_sdk_versions_are_captured() -> None:
    assert [d.name for d in DIRECTORIES] == ["official-0.38", "official-0.5.1"]


@pytest.mark.parametrize("directory", DIRECTORIES, ids=lambda d: d.name)
def test_index_and_files_agree(directory: pathlib.Path) -> None:
    index = json.loads((directory / "index.json").read_text())
    files = {p.stem for p in (directory / "calls").glob("*.json")}
    assert sorted(files) == sorted(index["calls"])
    assert len(index["calls"]) == len(set(index["calls"]))
    for label in index["calls"]:
        fixture = json.loads((directory / "calls" / f"{label}.json").read_text())
        assert fixture["call"] == label
        assert fixture["sdk"] == index["sdk"]
        assert set(fixture["modes"]) <= set(index["modes"])
    assert (directory / "README.md").exists()


@pytest.mark.parametrize("directory", DIRECTORIES, ids=lambda d: d.name)
def test_no_credential_was_committed(directory: pathlib.Path) -> None:
    for path in [*directory.rglob("*.json"), directory / "README.md"]:
        text = path.read_text()
        assert "tml-" not in text, path
        assert "eyJ" not in text, path
    for call, mode, request in requests_of(directory):
        assert request["headers"]["x-api-key"] in ("<api_key>", "<jwt>"), (call, mode)


def test_038_forward_backward_is_protobuf_and_its_polls_ask_for_protobuf() -> None:
    requests = requests_of(FIXTURES / "official-0.38")
    submits = [r for _, _, r in requests if r["path"] == "/api/v1/forward_backward"]
    assert submits
    for request in submits:
        assert request["headers"]["content-type"] == "application/x-protobuf"
        assert request["body"]["protobuf"]["message"] == "tinker_public.ForwardBackwardRequest"
    polls = [
        r
        for _, _, r in requests
        if r["headers"].get("x-tinker-request-type") in ("Forward", "ForwardBackward", "Sample")
    ]
    assert polls and all(r["headers"]["accept"] == "application/x-protobuf" for r in polls)


def test_038_jwt_mode_sends_the_jwt_everywhere_but_on_config_and_exchange() -> None:
    for call, mode, request in requests_of(FIXTURES / "official-0.38"):
        if mode != "features" or request["path"] in ("/api/v1/client/config", "/api/v1/auth/token"):
            assert request["headers"]["x-api-key"] == "<api_key>", call
        else:
            assert request["headers"]["x-api-key"] == "<jwt>", (call, request["path"])
