"""SQLite store and checkpoint files: persistence across reopen, ordering, bit-exact tensors."""

from __future__ import annotations

import io
import json
import pathlib
import tarfile

import numpy as np
import pytest

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
    data = store.files.read(ref, with_optimizer=True)
    for name, array in tensors.items():
        assert data.adapter[name].dtype == array.dtype
        assert data.adapter[name].tobytes() == array.tobytes()
    assert data.adapter_config == {"r": 4}
    assert data.optimizer is not None and data.optimizer["m"].tolist() == [7]
    assert store.files.read(ref, with_optimizer=False).optimizer is None
    store.close()


def test_saving_the_same_name_replaces_it_without_leftovers(tmp_path: pathlib.Path) -> None:
    store = Store(tmp_path)
    ref = CheckpointRef(RUN, "sampler_weights", "s")
    store.save_checkpoint(ref, {"x": np.zeros(2, np.float32)}, {}, None, when=1.0, expires_at=None)
    store.save_checkpoint(ref, {"x": np.ones(2, np.float32)}, {}, None, when=2.0, expires_at=None)
    assert store.files.read(ref, with_optimizer=False).adapter["x"].tolist() == [1.0, 1.0]
    siblings = sorted(p.name for p in store.files.directory(ref).parent.iterdir())
    assert siblings == ["s"]
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
    directory = store.files.directory(ref)
    assert store.delete_checkpoint(ref) is True
    assert not directory.exists()
    assert store.delete_checkpoint(ref) is False
    with pytest.raises(NotFound):
        store.files.read(ref, with_optimizer=False)
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
    with tarfile.open(fileobj=io.BytesIO(store.files.archive(ref))) as tar:
        assert sorted(tar.getnames()) == [
            "adapter_config.json",
            "adapter_model.safetensors",
            "checkpoint_complete",
        ]
        config = tar.extractfile("adapter_config.json")
        assert config is not None and json.load(config) == {"lora_alpha": 32, "r": 4}
    store.close()
