"""The CLI suite's adapters over the shared fake service (tests/support/fake_service.py).

The CLI gets real SDK clients talking to the fake service, which serves canned training runs,
checkpoints, sessions and samples. The adapters record each call the CLI makes and can fail a
named call with any exception (without a request), so that the CLI's error handling is tested
too; everything else goes over the wire.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import types
from concurrent.futures import Future
from typing import Any

import attrs
from support.fake_service import FakeService, Recorded, Reply

from tinker import _wire
from tinker.cli import main
from tinker.cli.context import Connection, Context
from tinker.types import (
    BillingUsageResponse,
    Checkpoint,
    CheckpointsListResponse,
    CurrentCheckpointStorageUsageResponse,
    Cursor,
    GetSessionResponse,
    ListSessionsResponse,
    SampledSequence,
    SampleResponse,
    TrainingRun,
    TrainingRunsResponse,
)

API_KEY = "tml-cli-tests"
CHECKPOINT = r"/api/v1/training_runs/([^/]+)/checkpoints/(.+)"


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


def _json(model: Any) -> Any:
    """A model as the service sends it: every field, in JSON."""
    return _wire.dump_model(model, mode="json")


def _page(request: Recorded, default_limit: int) -> tuple[int, int]:
    params = request.params
    return int(params.get("limit", default_limit)), int(params.get("offset", 0))


def _failed(exc: BaseException) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_exception(exc)
    return future


class SdkSession:
    """One real ServiceClient on the fake service, made on first use and closed at the end."""

    def __init__(self, http: FakeService) -> None:
        self.http = http
        self._service: Any = None

    def service(self) -> Any:
        if self._service is None:
            from tinker.service_client import ServiceClient

            self._service = ServiceClient(api_key=API_KEY, base_url=self.http.url, telemetry=False)
        return self._service

    def close(self) -> None:
        if self._service is not None:
            self._service.close()


class FakeRest:
    """The CLI's RestClient: a real one, on `runs`, `checkpoints` and `sessions` served by the
    fake service; `calls` records each call, `errors[name]` fails that call."""

    def __init__(self, sdk: SdkSession) -> None:
        self.sdk = sdk
        self.runs: list[TrainingRun] = []
        self.checkpoints: dict[str, list[Checkpoint]] = {}
        self.sessions: dict[str, GetSessionResponse] = {}
        self.archive_url = "http://127.0.0.1:1/never"
        # The trace export answers a signed URL of the fake, serving `trace` (None: 404).
        self.trace: bytes | None = b""
        self.trace_url = f"{sdk.http.url}/signed/trace.pftrace?signature=s3cret"
        self.errors: dict[str, BaseException] = {}
        self.refusals: dict[str, Reply] = {}  # tinker path -> the answer to deleting it
        self.calls: list[tuple[Any, ...]] = []
        self._serve(sdk.http)

    def _serve(self, http: FakeService) -> None:
        http.route("GET", r"/api/v1/training_runs", self._list_runs)
        http.route("GET", r"/api/v1/training_runs/([^/]+)", self._get_run)
        http.route("GET", r"/api/v1/training_runs/([^/]+)/checkpoints", self._run_checkpoints)
        http.route("GET", r"/api/v1/checkpoints", self._user_checkpoints)
        http.route("GET", CHECKPOINT + "/archive", self._archive)
        http.route("DELETE", CHECKPOINT, self._delete)
        for method, suffix in (("POST", "/publish"), ("DELETE", "/publish")):
            http.route(method, CHECKPOINT + re.escape(suffix), lambda *_: Reply(200, None))
        http.route("PUT", CHECKPOINT + "/ttl", lambda *_: Reply(200, None))
        http.route("GET", r"/api/v1/sessions", self._list_sessions)
        http.route("GET", r"/api/v1/sessions/([^/]+)", self._get_session)
        http.route("GET", r"/api/v1/sessions/([^/]+)/trace_export", self._trace_export)
        http.route("GET", r"/signed/trace.pftrace", self._trace_file)

    # -- what the service answers --------------------------------------------------------------

    def _list_runs(self, request: Recorded) -> Any:
        limit, offset = _page(request, 20)
        cursor = Cursor(offset=offset, limit=limit, total_count=len(self.runs))
        page = self.runs[offset : offset + limit]
        return _json(TrainingRunsResponse(training_runs=page, cursor=cursor))

    def _get_run(self, _request: Recorded, run_id: str) -> Any:
        match = [r for r in self.runs if r.training_run_id == run_id]
        return _json(match[0]) if match else Reply(404, {"detail": "no such run"})

    def _run_checkpoints(self, _request: Recorded, run_id: str) -> Any:
        found = list(self.checkpoints.get(run_id, []))
        return _json(CheckpointsListResponse(checkpoints=found))

    def _user_checkpoints(self, request: Recorded) -> Any:
        limit, offset = _page(request, 100)
        everything = sorted(
            (c for cs in self.checkpoints.values() for c in cs),
            key=lambda c: c.time,
            reverse=True,
        )
        cursor = Cursor(offset=offset, limit=limit, total_count=len(everything))
        page = everything[offset : offset + limit]
        return _json(CheckpointsListResponse(checkpoints=page, cursor=cursor))

    def _delete(self, _request: Recorded, run_id: str, checkpoint_id: str) -> Reply:
        """Deletes the checkpoint when it is listed (a path not listed is deleted too: the
        service need not say), unless `refusals` names another answer."""
        path = f"tinker://{run_id}/{checkpoint_id}"
        if path in self.refusals:
            return self.refusals[path]
        kept = [c for c in self.checkpoints.get(run_id, []) if c.tinker_path != path]
        if run_id in self.checkpoints:
            self.checkpoints[run_id] = kept
        return Reply(200, None)

    def _archive(self, *_: Any) -> Reply:
        return Reply(302, None, {"Location": self.archive_url})

    def _list_sessions(self, request: Recorded) -> Any:
        limit, offset = _page(request, 20)
        return _json(ListSessionsResponse(sessions=list(self.sessions)[offset : offset + limit]))

    def _get_session(self, _request: Recorded, session_id: str) -> Any:
        found = self.sessions.get(session_id)
        return _json(found) if found is not None else Reply(404, {"detail": "no such session"})

    def _trace_export(self, _request: Recorded, session_id: str) -> Any:
        if session_id not in self.sessions:
            return Reply(404, {"detail": "no such session"})
        return {"status": "ready", "url": self.trace_url, "error": None}

    def _trace_file(self, request: Recorded) -> Reply:
        if self.trace is None or request.params.get("signature") != "s3cret":
            return Reply(404, None, raw=b"gone")
        return Reply(200, None, {"Content-Type": "application/octet-stream"}, raw=self.trace)

    # -- what the CLI calls ----------------------------------------------------------------------

    def _call(self, method: str, *args: Any) -> Future[Any]:
        self.calls.append((method, *args))
        if method in self.errors:
            return _failed(self.errors[method])
        future: Future[Any] = getattr(self.sdk.service().create_rest_client(), method)(*args)
        return future

    def list_training_runs(self, limit: int = 20, offset: int = 0) -> Future[Any]:
        return self._call("list_training_runs", limit, offset)

    def get_training_run(self, training_run_id: str) -> Future[Any]:
        return self._call("get_training_run", training_run_id)

    def list_checkpoints(self, training_run_id: str) -> Future[Any]:
        return self._call("list_checkpoints", training_run_id)

    def list_user_checkpoints(self, limit: int = 100, offset: int = 0) -> Future[Any]:
        return self._call("list_user_checkpoints", limit, offset)

    def get_checkpoint_archive_url_from_tinker_path(self, tinker_path: str) -> Future[Any]:
        return self._call("get_checkpoint_archive_url_from_tinker_path", tinker_path)

    def delete_checkpoint_from_tinker_path(self, tinker_path: str) -> Future[Any]:
        return self._call("delete_checkpoint_from_tinker_path", tinker_path)

    def publish_checkpoint_from_tinker_path(self, tinker_path: str) -> Future[Any]:
        return self._call("publish_checkpoint_from_tinker_path", tinker_path)

    def unpublish_checkpoint_from_tinker_path(self, tinker_path: str) -> Future[Any]:
        return self._call("unpublish_checkpoint_from_tinker_path", tinker_path)

    def set_checkpoint_ttl_from_tinker_path(
        self, tinker_path: str, ttl_seconds: int | None
    ) -> Future[Any]:
        return self._call("set_checkpoint_ttl_from_tinker_path", tinker_path, ttl_seconds)

    def list_sessions(self, limit: int = 20, offset: int = 0) -> Future[Any]:
        return self._call("list_sessions", limit, offset)

    def get_session(self, session_id: str) -> Future[Any]:
        return self._call("get_session", session_id)

    def export_session_trace(self, session_id: str) -> Future[Any]:
        return self._call("export_session_trace", session_id)


class FakeAdmin:
    """The CLI's AdminClient: a real one, on `usage` and `storage` served by the fake service;
    `calls` records each call, `errors[name]` fails that call."""

    def __init__(self, sdk: SdkSession) -> None:
        self.sdk = sdk
        self.usage = BillingUsageResponse(data=[])
        self.storage = CurrentCheckpointStorageUsageResponse(data=[])
        self.errors: dict[str, BaseException] = {}
        self.calls: list[tuple[Any, ...]] = []
        sdk.http.route("GET", r"/api/v1/billing/usage/events", lambda _: _json(self.usage))
        sdk.http.route(
            "GET", r"/api/v1/billing/usage/checkpoints/current", lambda _: _json(self.storage)
        )

    def _call(self, method: str, *args: Any) -> Future[Any]:
        from tinker import AdminClient

        self.calls.append((method, *args))
        if method in self.errors:
            return _failed(self.errors[method])
        future: Future[Any] = getattr(AdminClient(self.sdk.service().holder), method)(*args)
        return future

    def get_billing_usage(self, starting_on: Any, ending_before: Any) -> Future[Any]:
        return self._call("get_billing_usage", starting_on, ending_before)

    def get_current_checkpoint_storage_usage(self, project_id: str | None) -> Future[Any]:
        return self._call("get_current_checkpoint_storage_usage", project_id)


def serve_external_files(
    rest: FakeRest, monkeypatch: Any, files: dict[str, bytes]
) -> dict[str, str]:
    """Give `rest` a get_external_weights_urls that names `files` with signed URLs the fake
    service serves; returns the URLs by name (change them to change what is listed)."""
    http = rest.sdk.http
    urls = {name: f"{http.url}/signed/{index}?sig=SECRET" for index, name in enumerate(files)}
    blobs = list(files.values())
    http.route("GET", r"/signed/(\d+)", lambda _r, i: Reply(200, raw=blobs[int(i)]))

    def get_external_weights_urls(tinker_path: str) -> Future[Any]:
        rest.calls.append(("get_external_weights_urls", tinker_path))
        future: Future[Any] = Future()
        expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
        future.set_result(types.SimpleNamespace(urls=dict(urls), expires=expires))
        return future

    monkeypatch.setattr(rest, "get_external_weights_urls", get_external_weights_urls, raising=False)
    return urls


class FakeClients:
    """The injected client source: hands out one FakeRest, remembers the connection."""

    def __init__(self, rest: FakeRest, service: Any = None) -> None:
        self.rest = rest
        self.admin = FakeAdmin(rest.sdk)
        self.service = service
        self.connection: Connection | None = None
        self.closed = False

    def __call__(self, connection: Connection) -> FakeClients:
        self.connection = connection
        return self

    def rest_client(self) -> FakeRest:
        return self.rest

    def admin_client(self) -> FakeAdmin:
        return self.admin

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
    """The CLI's SamplingClient: a real one whose samples the fake service answers with
    `sequences`; `calls` records each sample call; its tokenizer is CharTokenizer."""

    def __init__(self, sdk: SdkSession, sequences: list[SampledSequence]) -> None:
        self.sequences = sequences
        self.calls: list[dict[str, Any]] = []
        self.client: Any = None
        sdk.http.future("/api/v1/asample", self._answer)
        sdk.http.direct(
            "POST",
            "/api/v1/create_sampling_session",
            lambda b: {"sampling_session_id": f"S:sample:{b['sampling_session_seq_id']}"},
        )
        sdk.http.route(
            "GET",
            "/api/v1/samplers/(.+)",
            lambda _request, sampler_id: {"sampler_id": sampler_id, "base_model": "base/model"},
        )

    def _answer(self, body: Any) -> Any:
        return _json(SampleResponse(sequences=self.sequences[: body["num_samples"]]))

    def get_tokenizer(self) -> CharTokenizer:
        return CharTokenizer()

    def sample(self, prompt: Any, num_samples: int, sampling_params: Any) -> Future[Any]:
        self.calls.append(
            {"prompt": prompt, "num_samples": num_samples, "sampling_params": sampling_params}
        )
        future: Future[Any] = self.client.sample(prompt, num_samples, sampling_params)
        return future


class FakeServiceClient:
    """The CLI's ServiceClient: real sampling clients, handed out as the one FakeSampler;
    `created` records how they were asked for."""

    def __init__(self, sdk: SdkSession, sampler: FakeSampler) -> None:
        self.sdk = sdk
        self.sampler = sampler
        self.created: list[dict[str, Any]] = []

    def create_sampling_client(self, **kwargs: Any) -> FakeSampler:
        self.created.append(kwargs)
        self.sampler.client = self.sdk.service().create_sampling_client(**kwargs)
        return self.sampler


@attrs.define
class Result:
    code: int
    out: str
    err: str


@attrs.define
class Cli:
    """Runs `tinker ...` in-process against the fakes, capturing output."""

    clients: FakeClients
    prompts: list[str] = attrs.field(factory=list)

    @property
    def rest(self) -> FakeRest:
        return self.clients.rest

    @property
    def admin(self) -> FakeAdmin:
        return self.clients.admin

    def __call__(
        self, *argv: str, interactive: bool = False, answer: str | BaseException = "y"
    ) -> Result:
        out, err = io.StringIO(), io.StringIO()

        def prompt(text: str) -> str:
            self.prompts.append(text)
            if isinstance(answer, BaseException):
                raise answer
            return answer

        ctx = Context(stdout=out, stderr=err, prompt=prompt, interactive=interactive)
        code = main(list(argv), client_factory=self.clients, context=ctx)
        return Result(code, out.getvalue(), err.getvalue())
