"""SIGKILL at every step of saving, overwriting and deleting a checkpoint, then restart.

The server kills itself at a named step (TINKER_LOCAL_CRASH_AT, server.crash_points) of the
N-th save or the first delete. After a restart on the same data directory every checkpoint
that was acknowledged loads with the tensors it was saved with, the interrupted operation
either happened entirely or not at all (decided by whether its row was committed), and
neither the staging area nor the checkpoint directory holds anything no row names.
"""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np
import pytest
import requests

from tinker.local import EngineConfig, serve
from tinker.local.server import crash_points
from tinker.local.server.paths import parse_tinker_path
from tinker.local.server.store import Store

from .processes import ServerProcess
from .runs import MODEL, assert_bit_identical
from .target import poll

SAVE_POINTS = [point for point in crash_points.POINTS if point.startswith("save.")]
DELETE_POINTS = [point for point in crash_points.POINTS if point.startswith("delete.")]
COMMITTED = SAVE_POINTS.index("save.committed")
TOKENS = [72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100]


class Run:
    """A training run on a server, driven over raw HTTP (no client retries to blur a crash)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()
        session = self.post("create_session", {"tags": [], "sdk_version": "0"})["session_id"]
        self.session_id = session
        self.model_id = self.run(
            "create_model",
            {
                "session_id": session,
                "model_seq_id": 0,
                "base_model": MODEL,
                "lora_config": {"rank": 4},
            },
        )["model_id"]
        self.seq = 0

    def post(self, endpoint: str, body: Any) -> Any:
        response = self.http.post(f"{self.url}/api/v1/{endpoint}", json=body, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def run(self, endpoint: str, body: Any) -> Any:
        result = poll(self.http, self.url, self.post(endpoint, body)["request_id"])
        assert "error" not in result, result
        return result

    def op(self, endpoint: str, **body: Any) -> Any:
        self.seq += 1
        return self.run(endpoint, {"model_id": self.model_id, "seq_id": self.seq, **body})

    def save(self, name: str) -> str:
        return str(self.op("save_weights", path=name)["path"])

    def train_step(self) -> None:
        length = len(TOKENS)
        inputs = {
            "target_tokens": {"data": [*TOKENS[1:], 0], "dtype": "int64", "shape": [length]},
            "weights": {"data": [1.0] * length, "dtype": "float32", "shape": [length]},
        }
        datum = {"model_input": {"chunks": [{"tokens": TOKENS}]}, "loss_fn_inputs": inputs}
        batch = {"data": [datum], "loss_fn": "cross_entropy"}
        self.op("forward_backward", forward_backward_input=batch)
        self.op("optim_step", adam_params={"learning_rate": 0.05})

    def delete(self, name: str) -> None:
        route = f"training_runs/{self.model_id}/checkpoints/weights/{name}"
        self.http.delete(f"{self.url}/api/v1/{route}", timeout=30)


def _crash(process: ServerProcess, action: Any) -> None:
    """Run `action`, which the server must not survive; check it died by its own SIGKILL."""
    with pytest.raises(requests.ConnectionError):
        action()
    assert process.process.wait(timeout=30) == -9


def _after_restart(data_dir: pathlib.Path, model_id: str) -> dict[str, dict[str, Any]]:
    """Restart on the data directory; every listed checkpoint's tensors, by name, after checking
    that each loads into a new training run and that no debris is left."""
    config = EngineConfig(long_poll_seconds=0.5, session_idle_seconds=None)
    with serve(data_dir=data_dir, config=config) as server:
        assert list((data_dir / "staging").iterdir()) == []
        rows, _ = server.store.list_checkpoints(model_id, 100, 0)
        on_disk = {entry.name for entry in (data_dir / "checkpoints").iterdir()}
        assert on_disk == {row.directory for row in rows}
        loaded = Run(server.url)
        tensors = {}
        for row in rows:
            path = row.ref.tinker_path
            assert loaded.op("load_weights", path=path, optimizer=True) == {"path": path}
            data = server.store.read_checkpoint(parse_tinker_path(path), with_optimizer=True)
            tensors[row.ref.name] = {
                **data.adapter,
                **{f"opt/{k}": v for k, v in (data.optimizer or {}).items()},
            }
        return tensors


def _differ(left: dict[str, Any], right: dict[str, Any]) -> bool:
    return any(left[name].tobytes() != right[name].tobytes() for name in left)


@pytest.mark.parametrize("point", SAVE_POINTS)
@pytest.mark.parametrize("kind", ["new", "overwrite"])
def test_a_crash_while_saving_loses_no_acknowledged_checkpoint(
    tmp_path: pathlib.Path, processes: list[ServerProcess], point: str, kind: str
) -> None:
    # Saves: A and A0 (the same state), a training step, R (new), A again (overwrite).
    crashing_save = 3 if kind == "new" else 4
    env = {crash_points.ENV: f"{point}:{crashing_save}"}
    server = ServerProcess(tmp_path, env=env)
    processes.append(server)
    run = Run(server.url)
    run.save("A")
    run.save("A0")
    run.train_step()
    if kind == "new":
        _crash(server, lambda: run.save("R"))
    else:
        run.save("R")
        _crash(server, lambda: run.save("A"))

    tensors = _after_restart(tmp_path, run.model_id)
    committed = SAVE_POINTS.index(point) >= COMMITTED
    expected = ["A", "A0", "R"] if kind == "overwrite" or committed else ["A", "A0"]
    assert sorted(tensors) == expected
    if "R" in tensors:  # trained since A0: the versions can be told apart
        assert _differ(tensors["A0"], tensors["R"])
    replaced = kind == "overwrite" and committed
    assert_bit_identical(tensors["A"], tensors["R" if replaced else "A0"])


@pytest.mark.parametrize("point", DELETE_POINTS)
def test_a_crash_while_deleting_leaves_no_debris(
    tmp_path: pathlib.Path, processes: list[ServerProcess], point: str
) -> None:
    server = ServerProcess(tmp_path, env={crash_points.ENV: point})
    processes.append(server)
    run = Run(server.url)
    run.save("A")
    run.save("B")
    _crash(server, lambda: run.delete("A"))
    assert sorted(_after_restart(tmp_path, run.model_id)) == ["B"]


def test_every_crash_point_is_reached_by_a_save_and_a_delete(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reached: list[str] = []
    monkeypatch.setattr(crash_points, "reached", reached.append)
    store = Store(tmp_path)
    ref = parse_tinker_path("tinker://s:train:0/weights/c")
    for _ in range(2):  # a new save, then an overwrite
        store.save_checkpoint(ref, {"x": np.ones(3, np.float32)}, {}, None, when=1, expires_at=None)
    store.delete_checkpoint(ref)
    store.close()
    assert reached == [*SAVE_POINTS, *SAVE_POINTS, *DELETE_POINTS]
