"""SQLite store and checkpoint files: persistence across reopen, ordering, bit-exact tensors."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import pathlib
import sqlite3
import tarfile

import numpy as np
import pytest
from safetensors.numpy import save

from tinker.local.server.http_errors import NotFound
from tinker.local.server.paths import CheckpointRef
from tinker.local.server.store import RunRow, SamplerRow, SessionRow, Store

RUN = "sess-1:train:0"


def _tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    weird = np.array([np.nan, -0.0, np.inf, 1e-45, -3.4e38], dtype=np.float32)
    return {
        "a.lora_A.weight": rng.standard_normal((4, 8)).astype(np.float32),
        "a.lora_B.weight": weird,
        "step": np.array([7], dtype=np.int64),
    }


def _run(run_id: str = RUN, created: float = 1.0) -> RunRow:
    return RunRow(
        run_id,
        "sess-1",
        0,
        "tinker-local/tiny",
        8,
        3,
        True,
        False,
        True,
        {"k": "v"},
        created,
        created,
    )


def test_rows_survive_reopening_the_database(tmp_path: pathlib.Path) -> None:
    store = Store(tmp_path)
    store.add_session(SessionRow("sess-1", 1.0, 1.0, ["t"], {"who": "me"}, "0.1.0", None))
    store.add_run(_run())
    store.add_sampler(
        SamplerRow("sess-1:sample:0", "sess-1", "tinker-local/tiny", None, "base", 2.0)
    )
    store.close()

    again = Store(tmp_path)
    session = again.get_session("sess-1")
    assert session is not None and session.tags == ["t"] and session.user_metadata == {"who": "me"}
    assert again.get_run(RUN) == _run()
    assert again.runs_of_session("sess-1") == [RUN]
    assert again.samplers_of_session("sess-1") == ["sess-1:sample:0"]
    assert again.get_sampler("nope") is None
    again.close()


def test_checkpoint_round_trip_is_bit_exact(tmp_path: pathlib.Path) -> None:
    store = Store(tmp_path)
    ref = CheckpointRef(RUN, "weights", "ckpt1")
    tensors = _tensors()
    row = store.save_checkpoint(
        ref, tensors, {"r": 4}, {"m": tensors["step"]}, when=5.0, expires_at=None
    )
    assert row.size_bytes is not None and row.size_bytes > 0
    data = store.read_checkpoint(ref, with_optimizer=True)
    for name, array in tensors.items():
        assert data.adapter[name].dtype == array.dtype
        assert data.adapter[name].tobytes() == array.tobytes()
    assert data.adapter_config == {"r": 4}
    assert data.optimizer is not None and data.optimizer["m"].tolist() == [7]
    assert store.read_checkpoint(ref, with_optimizer=False).optimizer is None
    store.close()


def test_saving_the_same_name_replaces_it_without_leftovers(tmp_path: pathlib.Path) -> None:
    store = Store(tmp_path)
    ref = CheckpointRef(RUN, "sampler_weights", "s")
    store.save_checkpoint(ref, {"x": np.zeros(2, np.float32)}, {}, None, when=1.0, expires_at=None)
    store.save_checkpoint(ref, {"x": np.ones(2, np.float32)}, {}, None, when=2.0, expires_at=None)
    assert store.read_checkpoint(ref, with_optimizer=False).adapter["x"].tolist() == [1.0, 1.0]
    row = store.get_checkpoint(ref)
    assert row is not None
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == [row.directory]
    assert list((tmp_path / "staging").iterdir()) == []
    assert store.list_checkpoints(RUN, 10, 0)[1] == 1
    store.close()


def test_listing_is_newest_first_with_totals_and_publish_flags(tmp_path: pathlib.Path) -> None:
    store = Store(tmp_path)
    tiny = {"x": np.zeros(1, np.float32)}
    for index, run in enumerate([RUN, "sess-1:train:1", RUN]):
        ref = CheckpointRef(run, "weights", f"c{index}")
        store.save_checkpoint(ref, tiny, {}, None, when=10.0 + index, expires_at=None)
    rows, total = store.list_checkpoints(None, 2, 0)
    assert total == 3
    assert [r.ref.name for r in rows] == ["c2", "c1"]
    rows, total = store.list_checkpoints(RUN, 10, 0)
    assert total == 2 and [r.ref.name for r in rows] == ["c2", "c0"]
    assert store.latest_checkpoint(RUN, "weights") == rows[0]
    assert store.set_public(rows[0].ref, True) is True
    reread = store.get_checkpoint(rows[0].ref)
    assert reread is not None and reread.public is True
    assert store.set_public(CheckpointRef(RUN, "weights", "missing"), True) is False
    store.close()


def test_delete_removes_row_and_files(tmp_path: pathlib.Path) -> None:
    store = Store(tmp_path)
    ref = CheckpointRef(RUN, "weights", "gone")
    store.save_checkpoint(ref, {"x": np.zeros(1, np.float32)}, {}, None, when=1.0, expires_at=None)
    row = store.get_checkpoint(ref)
    assert row is not None
    directory = tmp_path / "checkpoints" / row.directory
    assert (directory / "checkpoint_complete").is_file()
    assert store.delete_checkpoint(ref) is True
    assert not directory.exists()
    assert store.delete_checkpoint(ref) is False
    with pytest.raises(NotFound):
        store.read_checkpoint(ref, with_optimizer=False)
    store.close()


def test_expired_checkpoints_are_reported(tmp_path: pathlib.Path) -> None:
    store = Store(tmp_path)
    tiny = {"x": np.zeros(1, np.float32)}
    keep = CheckpointRef(RUN, "weights", "keep")
    old = CheckpointRef(RUN, "weights", "old")
    store.save_checkpoint(keep, tiny, {}, None, when=1.0, expires_at=None)
    store.save_checkpoint(old, tiny, {}, None, when=1.0, expires_at=50.0)
    assert store.expired_checkpoints(49.0) == []
    assert store.expired_checkpoints(51.0) == [old]
    store.close()


def test_archive_holds_exactly_the_three_files(tmp_path: pathlib.Path) -> None:
    store = Store(tmp_path)
    ref = CheckpointRef(RUN, "weights", "arch")
    tensors = _tensors()
    store.save_checkpoint(
        ref, tensors, {"r": 4, "lora_alpha": 32}, {"m": tensors["step"]}, when=1.0, expires_at=None
    )
    with tarfile.open(fileobj=io.BytesIO(store.checkpoint_archive(ref))) as tar:
        assert sorted(tar.getnames()) == [
            "adapter_config.json",
            "adapter_model.safetensors",
            "checkpoint_complete",
        ]
        config = tar.extractfile("adapter_config.json")
        assert config is not None and json.load(config) == {"lora_alpha": 32, "r": 4}
    store.close()


def test_names_that_once_shared_a_directory_never_share_files(tmp_path: pathlib.Path) -> None:
    store = Store(tmp_path)
    colon = CheckpointRef("s:train:0", "weights", "c")
    underscore = CheckpointRef("s_train_0", "weights", "c")
    store.save_checkpoint(colon, {"x": np.ones(2, np.float32)}, {}, None, when=1, expires_at=None)
    assert store.delete_checkpoint(underscore) is False  # no row: nothing is touched
    store.save_checkpoint(
        underscore, {"x": np.zeros(2, np.float32)}, {}, None, when=2, expires_at=None
    )
    first, second = store.get_checkpoint(colon), store.get_checkpoint(underscore)
    assert first is not None and second is not None and first.directory != second.directory
    assert store.delete_checkpoint(underscore) is True
    assert store.read_checkpoint(colon, with_optimizer=False).adapter["x"].tolist() == [1.0, 1.0]
    store.close()


def test_opening_removes_staging_and_unreferenced_versions_only(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(tmp_path)
    ref = CheckpointRef(RUN, "weights", "kept")
    store.save_checkpoint(ref, _tensors(), {"r": 4}, None, when=1.0, expires_at=None)
    store.close()
    (tmp_path / "staging" / "0123abcd").mkdir()
    (tmp_path / "staging" / "0123abcd" / "adapter_model.safetensors").write_bytes(b"partial")
    orphan = tmp_path / "checkpoints" / f"sess-1_train_0_weights_gone.{'a' * 32}"
    orphan.mkdir()
    (orphan / "checkpoint_complete").write_bytes(b"")
    foreign = tmp_path / "checkpoints" / "notes"  # not a version directory: left alone
    foreign.mkdir()

    with caplog.at_level(logging.INFO, logger="tinker.local"):
        again = Store(tmp_path)
    assert "removed 2 directories of interrupted checkpoint saves or deletes" in caplog.text
    assert list((tmp_path / "staging").iterdir()) == []
    assert not orphan.exists() and foreign.exists()
    row = again.get_checkpoint(ref)
    assert row is not None and (tmp_path / "checkpoints" / row.directory).is_dir()
    assert again.read_checkpoint(ref, with_optimizer=False).adapter_config == {"r": 4}
    again.close()


def test_a_version_1_data_directory_keeps_its_checkpoints(tmp_path: pathlib.Path) -> None:
    legacy = tmp_path / "checkpoints" / "sess-1_train_0" / "weights" / "old"
    legacy.mkdir(parents=True)
    (legacy / "adapter_model.safetensors").write_bytes(save({"x": np.arange(3, dtype=np.float32)}))
    (legacy / "adapter_config.json").write_text('{"r": 2}')
    (legacy / "checkpoint_complete").write_bytes(b"")
    with contextlib.closing(sqlite3.connect(tmp_path / "tinker-local.sqlite3")) as db:
        db.execute(
            "CREATE TABLE checkpoints (run_id TEXT NOT NULL, kind TEXT NOT NULL, "
            "name TEXT NOT NULL, created_at REAL NOT NULL, size_bytes INTEGER, "
            "public INTEGER NOT NULL DEFAULT 0, expires_at REAL, "
            "PRIMARY KEY (run_id, kind, name))"
        )
        db.execute(
            "INSERT INTO checkpoints VALUES ('sess-1:train:0', 'weights', 'old', 1, 9, 0, NULL)"
        )
        db.execute("PRAGMA user_version=1")
        db.commit()

    store = Store(tmp_path)
    ref = CheckpointRef(RUN, "weights", "old")
    assert store.read_checkpoint(ref, with_optimizer=False).adapter["x"].tolist() == [0, 1, 2]
    assert legacy.is_dir()  # a version 1 directory is not debris
    assert store.delete_checkpoint(ref) is True
    assert not legacy.exists()
    store.close()


def test_a_version_2_database_gains_the_columns_of_version_3(tmp_path: pathlib.Path) -> None:
    with contextlib.closing(sqlite3.connect(tmp_path / "tinker-local.sqlite3")) as db:
        db.executescript(
            "CREATE TABLE sessions (session_id TEXT PRIMARY KEY, created_at REAL NOT NULL, "
            "last_seen_at REAL NOT NULL, tags TEXT NOT NULL, user_metadata TEXT, "
            "sdk_version TEXT, expired_at REAL);"
            "CREATE TABLE training_runs (run_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, "
            "model_seq_id INTEGER NOT NULL, base_model TEXT NOT NULL, lora_rank INTEGER NOT NULL, "
            "seed INTEGER, train_mlp INTEGER NOT NULL, train_attn INTEGER NOT NULL, "
            "train_unembed INTEGER NOT NULL, user_metadata TEXT, created_at REAL NOT NULL, "
            "last_request_at REAL NOT NULL, corrupted INTEGER NOT NULL DEFAULT 0);"
            "CREATE TABLE samplers (sampler_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, "
            "base_model TEXT NOT NULL, model_path TEXT, source TEXT NOT NULL, "
            "created_at REAL NOT NULL);"
            "INSERT INTO sessions VALUES ('s', 1, 1, '[]', NULL, '0.5.1', NULL);"
            "INSERT INTO training_runs VALUES "
            "('s:train:0', 's', 0, 'tinker-local/tiny', 4, 1, 1, 1, 1, NULL, 1, 1, 0);"
            "INSERT INTO samplers VALUES ('s:sample:0', 's', 'tinker-local/tiny', NULL, 'base', 1);"
            "PRAGMA user_version=2;"
        )
    store = Store(tmp_path)
    session = store.get_session("s")
    assert session is not None and session.finished_at is None and session.display_name is None
    run = store.get_run("s:train:0")
    assert run is not None and run.lora_rank == 4 and run.optimizer_config is None
    assert store.join_sampler("s:sample:0") == 1 and store.join_sampler("s:sample:0") == 2
    assert store.finish_session("s", "success", None, 2.0) is True
    assert store.finish_session("s", "errored", "late", 3.0) is False
    finished = store.get_session("s")
    assert finished is not None and (finished.finish_reason, finished.finish_detail) == (
        "success",
        None,
    )
    store.close()
