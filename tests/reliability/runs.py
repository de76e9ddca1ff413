"""Deterministic training and sampling workloads shared by the reliability tests."""

from __future__ import annotations

import contextlib
import pathlib
import sqlite3
from typing import Any

import numpy as np

from tinker import RetryConfig, types
from tinker.local.server.checkpoint_files import CheckpointData, CheckpointFiles
from tinker.local.server.paths import parse_tinker_path
from tinker.local.server.store import DB_FILE

MODEL = "tinker-local/tiny"
VOCAB = 256  # byte tokens of tinker-local/tiny
ADAM = types.AdamParams(learning_rate=5e-3)


def batch(step: int, size: int = 4, length: int = 12) -> list[types.Datum]:
    """The fixed batch of `step`: random byte sequences seeded by the step number."""
    rng = np.random.default_rng(step)
    data = []
    for _ in range(size):
        tokens = rng.integers(0, VOCAB, size=length + 1).tolist()
        data.append(
            types.Datum(
                model_input=types.ModelInput.from_ints(tokens[:-1]),
                loss_fn_inputs={"weights": [1.0] * length, "target_tokens": tokens[1:]},
            )
        )
    return data


def train(trainer: Any, first: int, last: int) -> list[float]:
    """Steps [first, last): every forward_backward and optim_step submitted before any wait."""
    futures = []
    for step in range(first, last):
        futures.append(trainer.forward_backward(batch(step), "cross_entropy"))
        futures.append(trainer.optim_step(ADAM))
    results = [future.result(timeout=120) for future in futures]
    return [float(fb.metrics["loss:sum"]) for fb in results[::2]]


def checkpoint_tensors(server: Any, tinker_path: str) -> dict[str, np.ndarray]:
    """Adapter and optimizer tensors of a checkpoint of an in-process server."""
    return _tensors(
        server.store.read_checkpoint(parse_tinker_path(tinker_path), with_optimizer=True)
    )


def checkpoint_on_disk(data_dir: pathlib.Path, tinker_path: str) -> dict[str, np.ndarray]:
    """Adapter and optimizer tensors of a checkpoint, read from a data directory (read-only, so
    a server of another process may be running on it)."""
    ref = parse_tinker_path(tinker_path)
    uri = f"file:{data_dir / DB_FILE}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        row = db.execute(
            "SELECT directory FROM checkpoints WHERE run_id = ? AND kind = ? AND name = ?",
            (ref.run_id, ref.kind, ref.name),
        ).fetchone()
    assert row is not None, f"{tinker_path} has no row"
    return _tensors(CheckpointFiles(data_dir).read(row[0], ref, with_optimizer=True))


def _tensors(data: CheckpointData) -> dict[str, np.ndarray]:
    tensors = {f"adapter/{k}": v for k, v in data.adapter.items()}
    tensors.update({f"optimizer/{k}": v for k, v in (data.optimizer or {}).items()})
    return tensors


def assert_bit_identical(left: dict[str, np.ndarray], right: dict[str, np.ndarray]) -> None:
    """Same names, dtypes, shapes and bytes."""
    assert sorted(left) == sorted(right)
    for name, value in left.items():
        other = right[name]
        assert value.dtype == other.dtype and value.shape == other.shape, name
        assert value.tobytes() == other.tobytes(), f"{name} differs"


FAST_RETRY = RetryConfig(retry_delay_base=0.01, retry_delay_max=0.05, progress_timeout=120.0)


def fast_sampler(client: Any, **kwargs: Any) -> Any:
    """A sampling client with short sample-level retries and a 50 ms shared 429 back-off."""
    sampler = client.create_sampling_client(retry_config=FAST_RETRY, **kwargs)
    sampler._runtime.sample_limiter.backoff_seconds = 0.05
    return sampler


def sample_tokens(sampler: Any, count: int, max_tokens: int = 8) -> list[list[int]]:
    """`count` concurrent samples with per-request seeds; the tokens of each, in order."""
    futures = [
        sampler.sample(
            types.ModelInput.from_ints([65 + i % 26, 66, 67]),
            1,
            types.SamplingParams(max_tokens=max_tokens, temperature=1.0, seed=i),
        )
        for i in range(count)
    ]
    return [list(future.result(timeout=120).sequences[0].tokens) for future in futures]
