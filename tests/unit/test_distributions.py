"""A second distribution providing `tinker`: found from metadata, warned about at import (naming
both), silent and cheap when tinker-sync is alone, and reported by `tinker doctor`."""

from __future__ import annotations

import io
import json
import os
import pathlib
import subprocess
import sys
import warnings

import pytest

from tinker import _distributions
from tinker.cli import main
from tinker.cli.context import Context


def _dist_info(site: pathlib.Path, name: str, version: str, **files: str) -> None:
    directory = site / f"{name.replace('-', '_')}-{version}.dist-info"
    directory.mkdir(parents=True)
    (directory / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    )
    for filename, text in files.items():
        (directory / filename.replace("_txt", ".txt")).write_text(text)


@pytest.fixture
def site(tmp_path: pathlib.Path) -> pathlib.Path:
    """A site directory with tinker-sync (editable: no tinker/ files listed) and the cookbook."""
    directory = tmp_path / "site"
    _dist_info(directory, "tinker-sync", "0.1.0", RECORD="__editable__.tinker_sync.pth,,\n")
    _dist_info(directory, "tinker-cookbook", "0.6.1", top_level_txt="tinker_cookbook\n")
    return directory


def _add_official(site: pathlib.Path) -> None:
    _dist_info(
        site,
        "tinker",
        "0.38.0",
        RECORD="tinker/__init__.py,sha256=x,1\ntinker/_client.py,sha256=y,2\n",
    )


def test_tinker_sync_alone_is_no_conflict(site: pathlib.Path) -> None:
    found = _distributions.claimants([str(site)])
    assert found == [_distributions.Claimant("tinker-sync", "0.1.0", str(site))]
    assert _distributions.conflict_message(found, "/x/tinker") is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _distributions.warn_if_shared([str(site)])


def test_the_official_sdk_beside_tinker_sync_is_named_with_both(site: pathlib.Path) -> None:
    elsewhere = site.parent / "user-site"
    _add_official(elsewhere)

    found = _distributions.claimants([str(site), str(elsewhere)])

    assert [(c.name, c.version) for c in found] == [("tinker-sync", "0.1.0"), ("tinker", "0.38.0")]
    with pytest.warns(UserWarning) as caught:
        _distributions.warn_if_shared([str(site), str(elsewhere)])
    assert len(caught) == 1
    message = str(caught[0].message)
    assert f"tinker-sync 0.1.0 (in {site})" in message
    assert f"tinker 0.38.0 (in {elsewhere})" in message
    assert "pip uninstall tinker" in message


def test_a_distribution_owning_tinker_by_top_level_counts(site: pathlib.Path) -> None:
    _dist_info(site, "tinker-fork", "2.0", top_level_txt="tinker\n")
    names = sorted(c.name for c in _distributions.claimants([str(site)]))
    assert names == ["tinker-fork", "tinker-sync"]


def _run(code: str, site: pathlib.Path) -> subprocess.CompletedProcess[str]:
    environ = dict(os.environ, PYTHONPATH=str(site), PYTHONWARNINGS="default")
    return subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=60
    )


def test_import_warns_once_naming_both(site: pathlib.Path) -> None:
    _add_official(site)
    result = _run("import tinker, tinker.types", site)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("UserWarning") == 1
    assert "tinker 0.38.0" in result.stderr and "tinker-sync" in result.stderr


def test_import_without_the_official_sdk_is_silent_and_skips_importlib_metadata(
    site: pathlib.Path,
) -> None:
    result = _run("import sys, tinker; print('importlib.metadata' in sys.modules)", site)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
    assert result.stderr == ""


def _doctor(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["doctor", *argv], context=Context(stdout=out, stderr=io.StringIO()))
    return code, out.getvalue()


def test_doctor_reports_versions_directories_and_libraries(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    monkeypatch.setenv("TINKER_API_KEY", "tml-secret-doctor")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("TINKER_LOCAL_DATA_DIR", str(tmp_path / "data"))
    code, text = _doctor()
    assert code == 0
    assert "tml-secret-doctor" not in text
    assert str(tmp_path / "hub") in text and str(tmp_path / "data") in text
    assert "Distributions providing 'tinker'" in text and "tinker-sync" in text
    assert "transformers" in text and "torch" in text

    code, text = _doctor("-f", "json")
    report = json.loads(text)
    assert code == 0 and report["conflict"] is None
    assert report["api_key"] == "set"
    assert report["hugging_face_cache"] == str(tmp_path / "hub")
    assert set(report["optional_libraries"]) >= {"torch", "transformers", "protobuf"}


def test_doctor_fails_on_a_conflict(site: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _add_official(site)
    monkeypatch.setattr(sys, "path", [str(site), *sys.path])
    code, text = _doctor()
    assert code == 1
    assert "PROBLEM: the import package 'tinker' is provided by" in text
    assert "tinker 0.38.0" in text
