"""The local server's endpoints: parse the body (server.bodies), call the engine, answer.

One handler per endpoint of the Tinker API below /api/v1 (ROUTES), plus the archive download
link. Bodies, query and path parameters all pass server.bodies and server.validation: a value
beyond a limit is a 400 naming the field, a body that does not fit its request model a 422, a
semantically bad one (unknown model, bad name) a 400. Bodies are parsed leniently (missing
`type`, explicit nulls, unknown fields ignored).
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Callable, Mapping, Sequence

import attrs
import numpy as np

from tinker import types
from tinker.local.server import responses, settings, validation
from tinker.local.server.bodies import parse, parse_object, query_int, structure
from tinker.local.server.engine import Engine
from tinker.local.server.http import Endpoint, Request, Response, json_response
from tinker.local.server.http_errors import BadRequest, MethodNotAllowed, NotFound, Unprocessable
from tinker.local.server.paths import CheckpointRef, checkpoint_ref, is_valid_run_id
from tinker.local.server.runs import DatumInput
from tinker.local.server.samplers import SampleSpec
from tinker.local.server.store import RunRow

Handler = Callable[..., Response]  # (request, params=...)
_RUN = r"(?P<run>[^/]+)"
_CKPT = r"(?P<ckpt>[^/]+/[^/]+)"
_RUN_CKPTS = f"training_runs/{_RUN}/checkpoints"

# method, path below /api/v1 (a regex), endpoint name = handler method, fault-injection family
ROUTES: tuple[tuple[str, str, str, str], ...] = (
    ("POST", "create_session", "create_session", "session"),
    ("POST", "session_heartbeat", "session_heartbeat", "session"),
    ("POST", "create_sampling_session", "create_sampling_session", "session"),
    ("GET", "get_server_capabilities", "get_server_capabilities", "rest"),
    ("GET", "healthz", "healthz", "rest"),
    ("POST", "create_model", "create_model", "train"),
    ("POST", "get_info", "get_info", "train"),
    ("POST", "forward", "forward", "train"),
    ("POST", "forward_backward", "forward_backward", "train"),
    ("POST", "optim_step", "optim_step", "train"),
    ("POST", "save_weights", "save_weights", "train"),
    ("POST", "load_weights", "load_weights", "train"),
    ("POST", "save_weights_for_sampler", "save_weights_for_sampler", "train"),
    ("POST", "unload_model", "unload_model", "train"),
    ("POST", "asample", "asample", "sample"),
    ("POST", "retrieve_future", "retrieve_future", "poll"),
    ("POST", "telemetry", "telemetry", "telemetry"),
    ("POST", "client/config", "client_config", "session"),
    ("POST", "weights_info", "weights_info", "rest"),
    ("GET", "training_runs", "list_training_runs", "rest"),
    ("GET", f"training_runs/{_RUN}", "get_training_run", "rest"),
    ("GET", _RUN_CKPTS, "list_checkpoints", "rest"),
    ("DELETE", f"{_RUN_CKPTS}/{_CKPT}", "delete_checkpoint", "rest"),
    ("GET", f"{_RUN_CKPTS}/{_CKPT}/archive", "checkpoint_archive", "rest"),
    ("POST", f"{_RUN_CKPTS}/{_CKPT}/publish", "publish_checkpoint", "rest"),
    ("DELETE", f"{_RUN_CKPTS}/{_CKPT}/publish", "unpublish_checkpoint", "rest"),
    ("PUT", f"{_RUN_CKPTS}/{_CKPT}/ttl", "set_checkpoint_ttl", "rest"),
    ("GET", "checkpoints", "list_user_checkpoints", "rest"),
    ("GET", "sessions", "list_sessions", "rest"),
    ("GET", "sessions/(?P<session>[^/]+)", "get_session", "rest"),
    ("GET", "samplers/(?P<sampler>[^/]+)", "get_sampler", "rest"),
    ("GET", "archives/(?P<token>[A-Za-z0-9_-]+)", "archive_download", "rest"),
)
# Reachable without the API key: health checks and signed (token) archive links.
PUBLIC = frozenset({"healthz", "archive_download"})
# The field each path parameter holds (server.validation checks it like a body field).
PATH_FIELDS = {
    "run": "training_run_id",
    "ckpt": "checkpoint_id",
    "session": "session_id",
    "sampler": "sampler_id",
    "token": "request_id",
}


@attrs.frozen
class _Route:
    method: str
    pattern: re.Pattern[str]
    name: str
    family: str
    public: bool
    handler: Handler


class Routes:
    """Router and handlers of every endpoint, bound to one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._routes = [
            _Route(
                method,
                re.compile(f"/api/v1/{path}"),
                name,
                family,
                name in PUBLIC,
                getattr(self, name),
            )
            for method, path, name, family in ROUTES
        ]

    def resolve(self, method: str, path: str) -> Endpoint:
        """Match a route; NotFound for unknown paths, MethodNotAllowed for a wrong method."""
        allowed: list[str] = []
        for route in self._routes:
            match = route.pattern.fullmatch(path)
            if match is None:
                continue
            if route.method != method:
                allowed.append(route.method)
                continue
            return Endpoint(route.name, route.family, route.public, _bind(route, match))
        if allowed:
            raise MethodNotAllowed("Method Not Allowed", allowed=tuple(sorted(set(allowed))))
        raise NotFound("Not Found")

    # sessions

    def create_session(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST create_session: a new session id."""
        body = parse_object(request)
        body["tags"] = body.get("tags") or []  # missing or null: none
        body["sdk_version"] = body.get("sdk_version") or "unknown"
        body.setdefault("user_metadata", None)
        req = structure(body, types.CreateSessionRequest)
        session_id = self.engine.sessions.create(req.tags, req.user_metadata, req.sdk_version)
        return json_response(
            200, types.CreateSessionResponse(type="create_session", session_id=session_id)
        )

    def session_heartbeat(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST session_heartbeat: keep a session alive."""
        req = parse(request, types.SessionHeartbeatRequest)
        self.engine.sessions.require(req.session_id)
        return json_response(200, types.SessionHeartbeatResponse(type="session_heartbeat"))

    def create_sampling_session(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST create_sampling_session: a sampler on a base model or checkpoint."""
        req = parse(request, types.CreateSamplingSessionRequest)
        sampler_id = self.engine.samplers.create_session(
            req.session_id, req.sampling_session_seq_id, req.base_model, req.model_path
        )
        answer = types.CreateSamplingSessionResponse(
            type="create_sampling_session", sampling_session_id=sampler_id
        )
        return json_response(200, answer)

    def get_server_capabilities(self, request: Request, params: Mapping[str, str]) -> Response:
        """GET get_server_capabilities: the local models."""
        models = [types.SupportedModel(model_name=name) for name in self.engine.model_names()]
        return json_response(200, types.GetServerCapabilitiesResponse(supported_models=models))

    def healthz(self, request: Request, params: Mapping[str, str]) -> Response:
        """GET healthz."""
        return json_response(200, types.HealthResponse(status="ok"))

    def client_config(self, request: Request, params: Mapping[str, str]) -> Response:
        """Feature flags of newer SDKs: plain API-key auth and the JSON forward paths."""
        parse_object(request)
        return json_response(200, responses.CLIENT_CONFIG)

    def telemetry(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST telemetry: accepted and dropped (the local server keeps no telemetry)."""
        parse_object(request)
        return json_response(200, types.TelemetryResponse(status="accepted"))

    # training

    def create_model(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST create_model (future): a new LoRA training run."""
        req = parse(request, types.CreateModelRequest)
        lora = req.lora_config or types.LoraConfig(rank=settings.DEFAULT_LORA_RANK)
        submitted = self.engine.runs.create_model(
            req.session_id, req.model_seq_id, req.base_model, lora, req.user_metadata
        )
        return json_response(200, submitted)

    def get_info(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST get_info: model facts, including the tokenizer directory."""
        req = parse(request, types.GetInfoRequest)
        return json_response(200, self.engine.runs.get_info(req.model_id))

    def forward(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST forward (future): loss and outputs, no gradients."""
        req = parse(request, types.ForwardRequest)
        return self._forward(req.model_id, req.seq_id, req.forward_input, backward=False)

    def forward_backward(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST forward_backward (future): loss, outputs, accumulated gradients."""
        req = parse(request, types.ForwardBackwardRequest)
        return self._forward(req.model_id, req.seq_id, req.forward_backward_input, backward=True)

    def _forward(
        self, model_id: str, seq_id: int | None, batch: types.ForwardBackwardInput, backward: bool
    ) -> Response:
        data = [_datum(index, datum) for index, datum in enumerate(batch.data)]
        config = None if batch.loss_fn_config is None else dict(batch.loss_fn_config)
        submitted = self.engine.runs.forward(
            model_id, seq_id, data, str(batch.loss_fn), config, backward=backward
        )
        return json_response(200, submitted)

    def optim_step(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST optim_step (future): apply Adam to the accumulated gradients."""
        req = parse(request, types.OptimStepRequest)
        return json_response(
            200, self.engine.runs.optim_step(req.model_id, req.seq_id, req.adam_params)
        )

    def save_weights(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST save_weights (future): a training checkpoint."""
        req = parse(request, types.SaveWeightsRequest)
        return json_response(
            200,
            self.engine.runs.save_weights(req.model_id, req.seq_id, req.path, req.ttl_seconds),
        )

    def load_weights(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST load_weights (future): weights (and optimizer state) from a checkpoint."""
        req = parse(request, types.LoadWeightsRequest)
        return json_response(
            200,
            self.engine.runs.load_weights(req.model_id, req.seq_id, req.path, bool(req.optimizer)),
        )

    def save_weights_for_sampler(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST save_weights_for_sampler (future): named or ephemeral form."""
        req = parse(request, types.SaveWeightsForSamplerRequest)
        submitted = self.engine.runs.save_weights_for_sampler(
            req.model_id, req.seq_id, req.path, req.sampling_session_seq_id, req.ttl_seconds
        )
        return json_response(200, submitted)

    def unload_model(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST unload_model (future): free a training run's memory."""
        req = parse(request, types.UnloadModelRequest)
        return json_response(200, self.engine.runs.unload_model(req.model_id))

    # sampling and futures

    def asample(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST asample (future): sample continuations of a prompt."""
        req = parse(request, types.SampleRequest)
        sampling = req.sampling_params
        spec = SampleSpec(
            prompt=_tokens(req.prompt, "prompt"),
            num_samples=req.num_samples,
            max_tokens=sampling.max_tokens,
            temperature=float(sampling.temperature),
            top_k=sampling.top_k,
            top_p=float(sampling.top_p),
            stop=_stop(sampling.stop),
            seed=sampling.seed,
            prompt_logprobs=bool(req.prompt_logprobs),
            topk_prompt_logprobs=req.topk_prompt_logprobs,
        )
        submitted = self.engine.samplers.sample(
            req.sampling_session_id,
            req.seq_id,
            spec,
            base_model=req.base_model,
            model_path=req.model_path,
            idempotency_key=request.headers.get("x-idempotency-key"),
        )
        return json_response(200, submitted)

    def retrieve_future(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST retrieve_future: long-poll; 408 try_again while still pending."""
        req = parse(request, types.FutureRetrieveRequest)
        body = self.engine.retrieve(req.request_id)
        if body is None:
            return json_response(408, responses.try_again(req.request_id))
        return Response(200, body)

    # REST: runs, checkpoints, sessions, samplers

    def weights_info(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST weights_info: base model and rank of a checkpoint."""
        body = parse_object(request)
        path = body.get("tinker_path")
        if not isinstance(path, str):
            raise Unprocessable("weights_info needs a string field 'tinker_path'.")
        return json_response(200, self.engine.weights_info(path))

    def list_training_runs(self, request: Request, params: Mapping[str, str]) -> Response:
        """GET training_runs: a page of runs with a cursor."""
        limit, offset = _page(request, default_limit=20)
        rows, total = self.engine.store.list_runs(limit, offset)
        page = types.TrainingRunsResponse(
            training_runs=[self._training_run(row) for row in rows],
            cursor=types.Cursor(offset=offset, limit=limit, total_count=total),
        )
        return json_response(200, page)

    def get_training_run(self, request: Request, params: Mapping[str, str]) -> Response:
        """GET training_runs/{id}."""
        return json_response(200, self._training_run(self._run_row(params["run"])))

    def list_checkpoints(self, request: Request, params: Mapping[str, str]) -> Response:
        """GET training_runs/{id}/checkpoints, newest first."""
        run = self._run_row(params["run"])
        limit, offset = _page(request, default_limit=settings.MAX_PAGE)
        rows, total = self.engine.store.list_checkpoints(run.run_id, limit, offset)
        return json_response(200, responses.checkpoints_page(rows, total, limit, offset))

    def list_user_checkpoints(self, request: Request, params: Mapping[str, str]) -> Response:
        """GET checkpoints: every run's checkpoints, newest first, with a cursor."""
        limit, offset = _page(request, default_limit=100)
        rows, total = self.engine.store.list_checkpoints(None, limit, offset)
        return json_response(200, responses.checkpoints_page(rows, total, limit, offset))

    def delete_checkpoint(self, request: Request, params: Mapping[str, str]) -> Response:
        """DELETE a checkpoint (204)."""
        self.engine.delete_checkpoint(_ref(params))
        return Response(204)

    def publish_checkpoint(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST .../publish (204; publishing twice is fine)."""
        self.engine.set_public(_ref(params), True)
        return Response(204)

    def unpublish_checkpoint(self, request: Request, params: Mapping[str, str]) -> Response:
        """DELETE .../publish (204; unpublishing twice is fine)."""
        self.engine.set_public(_ref(params), False)
        return Response(204)

    def set_checkpoint_ttl(self, request: Request, params: Mapping[str, str]) -> Response:
        """PUT .../ttl (newer SDKs): expire after ttl_seconds, or never (null)."""
        ttl = parse_object(request).get("ttl_seconds")
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int)):
            raise Unprocessable(f"ttl_seconds must be an integer or null, got {ttl!r}.")
        self.engine.set_ttl(_ref(params), ttl)
        return Response(204)

    def checkpoint_archive(self, request: Request, params: Mapping[str, str]) -> Response:
        """GET .../archive: 302 to a short-lived download link, with Expires."""
        token, expires = self.engine.archive_token(_ref(params))
        headers = (
            ("Location", f"{request.base_url}/api/v1/archives/{token}"),
            ("Expires", email.utils.formatdate(expires, usegmt=True)),
        )
        return Response(302, headers=headers)

    def archive_download(self, request: Request, params: Mapping[str, str]) -> Response:
        """GET archives/{token}: the tar behind a download link (no API key needed)."""
        ref, archive = self.engine.archive(params["token"])
        file_name = f"{ref.name}.tar"
        return Response(
            200,
            archive,
            content_type="application/x-tar",
            headers=(("Content-Disposition", f'attachment; filename="{file_name}"'),),
        )

    def list_sessions(self, request: Request, params: Mapping[str, str]) -> Response:
        """GET sessions: a page of session ids."""
        limit, offset = _page(request, default_limit=20)
        rows = self.engine.store.list_sessions(limit, offset)
        sessions = [row.session_id for row in rows]
        return json_response(200, types.ListSessionsResponse(sessions=sessions))

    def get_session(self, request: Request, params: Mapping[str, str]) -> Response:
        """GET sessions/{id}: its training runs and samplers."""
        session_id = params["session"]
        if self.engine.store.get_session(session_id) is None:
            raise NotFound(f"Session {session_id!r} not found.")
        answer = types.GetSessionResponse(
            training_run_ids=self.engine.store.runs_of_session(session_id),
            sampler_ids=self.engine.store.samplers_of_session(session_id),
        )
        return json_response(200, answer)

    def get_sampler(self, request: Request, params: Mapping[str, str]) -> Response:
        """GET samplers/{id}."""
        row = self.engine.samplers.get(params["sampler"])
        answer = types.GetSamplerResponse(
            sampler_id=row.sampler_id, base_model=row.base_model, model_path=row.model_path
        )
        return json_response(200, answer)

    def _run_row(self, run_id: str) -> RunRow:
        row = self.engine.store.get_run(run_id) if is_valid_run_id(run_id) else None
        if row is None:
            raise NotFound(f"Training run {run_id!r} not found.")
        return row

    def _training_run(self, row: RunRow) -> types.TrainingRun:
        store = self.engine.store
        last = store.latest_checkpoint(row.run_id, "weights")
        last_sampler = store.latest_checkpoint(row.run_id, "sampler_weights")
        return responses.training_run(row, last, last_sampler)


def _bind(route: _Route, match: re.Match[str]) -> Callable[[Request], Response]:
    """The route's handler with its path parameters, checked when the request is handled."""
    params = match.groupdict()

    def handle(request: Request) -> Response:
        for name, value in params.items():
            validation.check_field(PATH_FIELDS[name], value)
        return route.handler(request, params=params)

    return handle


def _tokens(model_input: types.ModelInput, where: str) -> list[int]:
    tokens: list[int] = []
    for chunk in model_input.chunks:
        if not isinstance(chunk, types.EncodedTextChunk):
            raise BadRequest(
                f"{where}: {type(chunk).__name__} chunks are not supported by the local text "
                "models; send token chunks only."
            )
        tokens.extend(int(token) for token in chunk.tokens)
    return tokens


def _stop(value: str | Sequence[str] | Sequence[int] | None) -> str | list[str] | list[int] | None:
    if value is None or isinstance(value, str):
        return value
    items: list[object] = list(value)
    strings = [item for item in items if isinstance(item, str)]
    ints = [item for item in items if isinstance(item, int) and not isinstance(item, bool)]
    if len(strings) == len(items):
        return strings
    if len(ints) == len(items):
        return ints
    raise BadRequest("sampling_params.stop must be a string, a list of strings or a list of ints.")


def _datum(index: int, datum: types.Datum) -> DatumInput:
    tokens = np.asarray(_tokens(datum.model_input, f"datum {index}"), dtype=np.int64)
    inputs: dict[str, np.ndarray] = {}
    for key, tensor in datum.loss_fn_inputs.items():
        with np.errstate(over="ignore"):  # values beyond float32 become inf, refused below
            array = tensor.to_numpy()
        if key == "target_tokens":
            if array.dtype.kind not in "iu":
                raise BadRequest(f"datum {index}: target_tokens must be int64, got {tensor.dtype}.")
            inputs[key] = array.astype(np.int64)
        else:
            inputs[key] = array.astype(np.float32)
            if not np.isfinite(inputs[key]).all():
                raise BadRequest(
                    f"datum {index}: loss_fn_inputs[{key!r}] holds values beyond the float32 range."
                )
    return DatumInput(tokens, inputs)


def _page(request: Request, *, default_limit: int) -> tuple[int, int]:
    """`limit` (at most MAX_PAGE) and `offset` of a list endpoint."""
    limit = query_int(request, "limit", default_limit)
    return min(limit, settings.MAX_PAGE), query_int(request, "offset", 0)


def _ref(params: Mapping[str, str]) -> CheckpointRef:
    return checkpoint_ref(params["run"], params["ckpt"])
