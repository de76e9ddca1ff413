"""A stand-in `huggingface_hub` module that records what `tinker checkpoint push-hf` asks of the
Hub: no network. Install it with `install_fake_hub(monkeypatch)`; the module's `hub` attribute
is the FakeHub holding the calls and, for each upload, the files the folder held at the time."""

from __future__ import annotations

import pathlib
import sys
import types
from typing import Any

import pytest

HUB_URL = "https://huggingface.co"


class RepoUrl(str):
    """Like huggingface_hub.RepoUrl: the URL, with the full repository id."""

    repo_id: str


class CommitInfo(str):
    """Like huggingface_hub.CommitInfo: the commit URL, with the pull request's URL."""

    pr_url: str | None


class FakeHub:
    """What the Hub was asked: `calls` as (method, kwargs); `uploaded` the files of each
    uploaded folder (relative path -> bytes); `errors[method]` makes that method raise."""

    def __init__(self, user: str = "alice") -> None:
        self.user = user
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.uploaded: list[dict[str, bytes]] = []
        self.folders: list[pathlib.Path] = []
        self.errors: dict[str, BaseException] = {}

    def record(self, method: str, **kwargs: Any) -> None:
        self.calls.append((method, kwargs))
        if method in self.errors:
            raise self.errors[method]

    def full_id(self, repo_id: str) -> str:
        return repo_id if "/" in repo_id else f"{self.user}/{repo_id}"


def _api_class(hub: FakeHub) -> type:
    class HfApi:
        def whoami(self) -> dict[str, Any]:
            hub.record("whoami")
            return {"type": "user", "name": hub.user}

        def create_repo(self, repo_id: str, **kwargs: Any) -> RepoUrl:
            hub.record("create_repo", repo_id=repo_id, **kwargs)
            url = RepoUrl(f"{HUB_URL}/{hub.full_id(repo_id)}")
            url.repo_id = hub.full_id(repo_id)
            return url

        def create_branch(self, repo_id: str, **kwargs: Any) -> None:
            hub.record("create_branch", repo_id=repo_id, **kwargs)

        def upload_folder(self, **kwargs: Any) -> CommitInfo:
            root = pathlib.Path(kwargs["folder_path"])
            hub.folders.append(root)
            hub.record("upload_folder", **kwargs)
            hub.uploaded.append(
                {
                    p.relative_to(root).as_posix(): p.read_bytes()
                    for p in sorted(root.rglob("*"))
                    if p.is_file()
                }
            )
            repo_id = kwargs["repo_id"]
            info = CommitInfo(f"{HUB_URL}/{repo_id}/commit/0123abc")
            info.pr_url = f"{HUB_URL}/{repo_id}/discussions/1" if kwargs.get("create_pr") else None
            return info

    return HfApi


def install_fake_hub(monkeypatch: pytest.MonkeyPatch, user: str = "alice") -> FakeHub:
    """Put a fake `huggingface_hub` in sys.modules for this test; returns its recorder."""
    hub = FakeHub(user)
    module = types.ModuleType("huggingface_hub")
    module.HfApi = _api_class(hub)  # type: ignore[attr-defined]
    module.hub = hub  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "huggingface_hub", module)
    return hub
