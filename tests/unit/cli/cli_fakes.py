"""An in-memory stand-in for the SDK clients, injected into the CLI through its client factory."""

from __future__ import annotations

import datetime as dt
import io
from concurrent.futures import Future
from typing import Any

from tinker.cli.context import Connection
from tinker.types import (
    Checkpoint,
    CheckpointArchiveUrlResponse,
    CheckpointsListResponse,
    Cursor,
    GetSessionResponse,
    ListSessionsResponse,
    SampledSequence,
    SampleResponse,
    TrainingRun,
    TrainingRunsResponse,
)


def ago(**delta: float) -> dt.datetime:
    """A moment `delta` before now (taken at the call, so long test runs stay exact)."""
    return dt.datetime.now(dt.timezone.utc) - dt.timedelta(**delta)


def checkpoint(run: str, kind: str, name: str, **fields: Any) -> Checkpoint:
    prefix = "weights" if kind == "training" else "sampler_weights"
    fields.setdefault("time", ago(minutes=5))
    return Checkpoint(
        checkpoint_id=f"{prefix}/{name}",
        checkpoint_type=kind,
        tinker_path=f"tinker://{run}/{prefix}/{name}",
        **fields,
    )


def _done(value: Any) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_result(value)
    return future


def _failed(exc: BaseException) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_exception(exc)
    return future


class FakeRest:
    """RestClient double: serves canned data, records calls, fails on request."""

    def __init__(self) -> None:
        self.runs: list[TrainingRun] = []
        self.checkpoints: dict[str, list[Checkpoint]] = {}
        self.sessions: dict[str, GetSessionResponse] = {}
        self.archive_url = "http://127.0.0.1:1/never"
        self.errors: dict[str, BaseException] = {}
        self.calls: list[tuple[Any, ...]] = []

    def _answer(self, method: str, args: tuple[Any, ...], value: Any) -> Future[Any]:
        self.calls.append((method, *args))
        if method in self.errors:
            return _failed(self.errors[method])
        return _done(value)

    def _all_checkpoints(self) -> list[Checkpoint]:
        found = [c for cs in self.checkpoints.values() for c in cs]
        return sorted(found, key=lambda c: c.time, reverse=True)

    def list_training_runs(self, limit: int = 20, offset: int = 0) -> Future[Any]:
        page = self.runs[offset : offset + limit]
        cursor = Cursor(offset=offset, limit=limit, total_count=len(self.runs))
        response = TrainingRunsResponse(training_runs=page, cursor=cursor)
        return self._answer("list_training_runs", (limit, offset), response)

    def get_training_run(self, training_run_id: str) -> Future[Any]:
        match = [r for r in self.runs if r.training_run_id == training_run_id]
        return self._answer("get_training_run", (training_run_id,), match[0] if match else None)

    def list_checkpoints(self, training_run_id: str) -> Future[Any]:
        response = CheckpointsListResponse(
            checkpoints=list(self.checkpoints.get(training_run_id, []))
        )
        return self._answer("list_checkpoints", (training_run_id,), response)

    def list_user_checkpoints(self, limit: int = 100, offset: int = 0) -> Future[Any]:
        everything = self._all_checkpoints()
        response = CheckpointsListResponse(
            checkpoints=everything[offset : offset + limit],
            cursor=Cursor(offset=offset, limit=limit, total_count=len(everything)),
        )
        return self._answer("list_user_checkpoints", (limit, offset), response)

    def get_checkpoint_archive_url_from_tinker_path(self, tinker_path: str) -> Future[Any]:
        response = CheckpointArchiveUrlResponse(
            url=self.archive_url, expires=ago(minutes=-15)
        )
        return self._answer("get_checkpoint_archive_url_from_tinker_path", (tinker_path,), response)

    def delete_checkpoint_from_tinker_path(self, tinker_path: str) -> Future[Any]:
        return self._answer("delete_checkpoint_from_tinker_path", (tinker_path,), None)

    def publish_checkpoint_from_tinker_path(self, tinker_path: str) -> Future[Any]:
        return self._answer("publish_checkpoint_from_tinker_path", (tinker_path,), None)

    def unpublish_checkpoint_from_tinker_path(self, tinker_path: str) -> Future[Any]:
        return self._answer("unpublish_checkpoint_from_tinker_path", (tinker_path,), None)

    def set_checkpoint_ttl_from_tinker_path(
        self, tinker_path: str, ttl_seconds: int | None
    ) -> Future[Any]:
        return self._answer("set_checkpoint_ttl_from_tinker_path", (tinker_path, ttl_seconds), None)

    def list_sessions(self, limit: int = 20, offset: int = 0) -> Future[Any]:
        page = list(self.sessions)[offset : offset + limit]
        return self._answer("list_sessions", (limit, offset), ListSessionsResponse(sessions=page))

    def get_session(self, session_id: str) -> Future[Any]:
        return self._answer("get_session", (session_id,), self.sessions.get(session_id))


class FakeClients:
    """The injected client source: hands out one FakeRest, remembers the connection."""

    def __init__(self, rest: FakeRest, service: Any = None) -> None:
        self.rest = rest
        self.service = service
        self.connection: Connection | None = None
        self.closed = False

    def __call__(self, connection: Connection) -> FakeClients:
        self.connection = connection
        return self

    def rest_client(self) -> FakeRest:
        return self.rest

    def service_client(self) -> Any:
        return self.service

    def close(self) -> None:
        self.closed = True


class TtyBuffer(io.StringIO):
    """A captured stream that claims to be a terminal (progress bars, tracebacks)."""

    def isatty(self) -> bool:
        return True


class CharTokenizer:
    """One token per character (its code point): easy to check by eye."""

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return [ord(ch) for ch in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(chr(i) for i in ids)


class FakeSampler:
    """SamplingClient double: answers each sample call with canned sequences."""

    def __init__(self, sequences: list[SampledSequence]) -> None:
        self.sequences = sequences
        self.calls: list[dict[str, Any]] = []

    def get_tokenizer(self) -> CharTokenizer:
        return CharTokenizer()

    def sample(self, prompt: Any, num_samples: int, sampling_params: Any) -> Future[Any]:
        self.calls.append(
            {"prompt": prompt, "num_samples": num_samples, "sampling_params": sampling_params}
        )
        return _done(SampleResponse(sequences=self.sequences[:num_samples]))


class FakeService:
    """ServiceClient double: hands out one FakeSampler and records how it was asked for."""

    def __init__(self, sampler: FakeSampler) -> None:
        self.sampler = sampler
        self.created: list[dict[str, Any]] = []

    def create_sampling_client(self, **kwargs: Any) -> FakeSampler:
        self.created.append(kwargs)
        return self.sampler
