"""The local server's endpoints: parse the body (server.bodies), call the engine, answer.

One handler per endpoint of the Tinker API below /api/v1 (ROUTES), plus the archive download
link. Each route belongs to a protocol era ("both", "0.5.1" or "0.38"); a route of an era the
server does not speak (server.protocol) is a 404, and a server speaking only 0.5.1 refuses
protobuf and compressed bodies (415). Bodies, query and path parameters all pass server.bodies
and server.validation: a value beyond a limit is a 400 naming the field, a body that does not
fit its request model a 422, a semantically bad one (unknown model, bad name) a 400. JSON
bodies are parsed leniently (missing `type`, defaults sent or not, explicit nulls, unknown
fields ignored), as both eras send them. Results of forward/forward_backward and samples are
protobuf for polls whose Accept asks for it (JSON otherwise); a large result is first
announced by size to polls that allow it (`allow_metadata_only`).
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from tinker import _wire, types
from tinker._wire import proto
from tinker._wire.proto import messages
from tinker.local.server import api_keys, batches, reports, responses, settings, validation
from tinker.local.server.accounting import PROJECTS
from tinker.local.server.bodies import (
    media_type,
    parse,
    parse_object,
    query_int,
    structure,
)
from tinker.local.server.engine import Engine
from tinker.local.server.futures import Completion, Target
from tinker.local.server.http import Endpoint, Request, Response, json_response
from tinker.local.server.http_errors import (
    BadRequest,
    MethodNotAllowed,
    NotFound,
    Unprocessable,
    UnsupportedMediaType,
)
from tinker.local.server.paths import CheckpointRef, checkpoint_ref, is_valid_run_id
from tinker.local.server.protocol import NEW, OLD, ProtocolOptions
from tinker.local.server.runs import CheckpointSource
from tinker.local.server.samplers import SampleSpec
from tinker.local.server.store import RunRow
from tinker.local.server.tokens import TokenAuthority

Handler = Callable[..., Response]  # (request, params=...)
_RUN = r"(?P<run>[^/]+)"
_CKPT = r"(?P<ckpt>[^/]+/[^/]+)"
_RUN_CKPTS = f"training_runs/{_RUN}/checkpoints"
_SESSION = "sessions/(?P<session>[^/]+)"
_BOTH = "both"

# method, path below /api/v1 (a regex), endpoint name = handler method, fault-injection
# family, protocol era
ROUTES: tuple[tuple[str, str, str, str, str], ...] = (
    ("POST", "client/config", "client_config", "session", NEW),
    ("POST", "client/dynamic_config", "dynamic_config", "session", NEW),
    ("POST", "auth/token", "auth_token", "session", NEW),
    ("GET", "auth/apikey/me", "api_key_info", "rest", NEW),
    ("DELETE", "auth/apikey/me", "revoke_api_key", "rest", NEW),
    ("POST", "create_session", "create_session", "session", _BOTH),
    ("POST", "session_heartbeat", "session_heartbeat", "session", _BOTH),
    ("POST", f"{_SESSION}/finish", "finish_session", "session", NEW),
    ("POST", "create_sampling_session", "create_sampling_session", "session", _BOTH),
    ("POST", "join_sampling_session", "join_sampling_session", "session", NEW),
    ("GET", "get_server_capabilities", "get_server_capabilities", "rest", _BOTH),
    ("GET", "healthz", "healthz", "rest", _BOTH),
    ("POST", "create_model", "create_model", "train", _BOTH),
    ("POST", "get_info", "get_info", "train", _BOTH),
    ("POST", "forward", "forward", "train", OLD),
    ("POST", "forward_backward", "forward_backward", "train", _BOTH),
    ("POST", "optim_step", "optim_step", "train", _BOTH),
    ("POST", "save_weights", "save_weights", "train", _BOTH),
    ("POST", "load_weights", "load_weights", "train", _BOTH),
    ("POST", "save_weights_for_sampler", "save_weights_for_sampler", "train", _BOTH),
    ("POST", "save_weights_external", "save_weights_external", "train", NEW),
    ("POST", "unload_model", "unload_model", "train", OLD),
    ("POST", "create_custom_loss", "create_custom_loss", "train", NEW),
    ("POST", "copy_weights", "copy_weights", "train", NEW),
    ("POST", "asample", "asample", "sample", _BOTH),
    ("POST", "retrieve_future", "retrieve_future", "poll", _BOTH),
    ("POST", "retrieve_futures", "retrieve_futures", "poll", NEW),
    ("POST", "cancel_future", "cancel_future", "poll", NEW),
    ("POST", "telemetry", "telemetry", "telemetry", _BOTH),
    ("POST", "weights_info", "weights_info", "rest", _BOTH),
    ("GET", "training_runs", "list_training_runs", "rest", _BOTH),
    ("GET", f"training_runs/{_RUN}", "get_training_run", "rest", _BOTH),
    ("GET", _RUN_CKPTS, "list_checkpoints", "rest", _BOTH),
    ("DELETE", f"{_RUN_CKPTS}/{_CKPT}", "delete_checkpoint", "rest", _BOTH),
    ("GET", f"{_RUN_CKPTS}/{_CKPT}/archive", "checkpoint_archive", "rest", OLD),
    ("POST", f"{_RUN_CKPTS}/{_CKPT}/publish", "publish_checkpoint", "rest", _BOTH),
    ("DELETE", f"{_RUN_CKPTS}/{_CKPT}/publish", "unpublish_checkpoint", "rest", _BOTH),
    ("PUT", f"{_RUN_CKPTS}/{_CKPT}/ttl", "set_checkpoint_ttl", "rest", _BOTH),
    ("GET", f"{_RUN_CKPTS}/{_CKPT}/external_weights_urls", "external_weights_urls", "rest", NEW),
    ("GET", "checkpoints", "list_user_checkpoints", "rest", _BOTH),
    ("GET", "sessions", "list_sessions", "rest", _BOTH),
    ("GET", _SESSION, "get_session", "rest", _BOTH),
    ("POST", "sessions/search", "search_sessions", "rest", NEW),
    ("PUT", f"{_SESSION}/project", "assign_session_project", "rest", NEW),
    ("GET", f"{_SESSION}/trace_export", "export_session_trace", "rest", NEW),
    ("GET", "billing/usage/events", "billing_usage", "rest", NEW),
    ("GET", "billing/usage/checkpoints/current", "storage_usage", "rest", NEW),
    ("GET", "audit", "audit_log", "rest", NEW),
    ("GET", "samplers/(?P<sampler>[^/]+)", "get_sampler", "rest", _BOTH),
    ("GET", "archives/(?P<token>[A-Za-z0-9_-]+)", "archive_download", "rest", _BOTH),
)
# Reachable without the API key: health checks and signed (token) download links.
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
    """Router and handlers of every endpoint of the spoken eras, bound to one engine.

    `tokens` is the authority of JWT auth when it is on (then auth/token issues tokens and
    client/config says so)."""

    def __init__(
        self,
        engine: Engine,
        protocol: ProtocolOptions | None = None,
        tokens: TokenAuthority | None = None,
    ) -> None:
        self.engine = engine
        self.protocol = protocol or ProtocolOptions()
        self.tokens = tokens
        self._routes = [
            _Route(
                method,
                re.compile(f"/api/v1/{path}"),
                name,
                family,
                name in PUBLIC,
                getattr(self, name),
            )
            for method, path, name, family, era in ROUTES
            if self.protocol.speaks(era)
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
            return Endpoint(route.name, route.family, route.public, self._bind(route, match))
        if allowed:
            raise MethodNotAllowed("Method Not Allowed", allowed=tuple(sorted(set(allowed))))
        raise NotFound("Not Found")

    def _bind(self, route: _Route, match: re.Match[str]) -> Callable[[Request], Response]:
        """The route's handler with its path parameters, checked when the request is handled
        (and, on a server speaking only 0.5.1, with its body formats)."""
        params = match.groupdict()
        only_json = not self.protocol.speaks(NEW)

        def handle(request: Request) -> Response:
            if only_json and (
                media_type(request) == proto.CONTENT_TYPE or "content-encoding" in request.headers
            ):
                raise UnsupportedMediaType(
                    "This server speaks the 0.5.1 protocol only: send JSON bodies, uncompressed."
                )
            for name, value in params.items():
                validation.check_field(PATH_FIELDS[name], value)
            return route.handler(request, params=params)

        return handle

    # start-up and sessions

    def client_config(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST client/config (0.38): what this server switches on."""
        parse_object(request)
        answer = self.protocol.client_config(jwt_active=self.tokens is not None)
        return json_response(200, answer)

    def dynamic_config(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST client/dynamic_config (0.38)."""
        parse_object(request)
        return json_response(200, self.protocol.dynamic_config())

    def auth_token(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST auth/token (0.38): a short-lived JWT for the authenticated client."""
        parse_object(request)
        if self.tokens is None:
            raise NotFound("JWT auth is not enabled on this server; send the API key itself.")
        return json_response(200, types.AuthTokenResponse(jwt=self.tokens.issue()))

    def api_key_info(self, request: Request, params: Mapping[str, str]) -> Response:
        """GET auth/apikey/me (the 0.38 CLI's login check): the record of the presented API
        key, with local values (server.api_keys)."""
        api_keys.require_api_key(request)
        return json_response(200, api_keys.key_record())

    def revoke_api_key(self, request: Request, params: Mapping[str, str]) -> Response:
        """DELETE auth/apikey/me (the 0.38 CLI's logout of a generated key): 204, and the key
        keeps working: the server's key is fixed when it starts, nothing can disable it."""
        api_keys.require_api_key(request)
        return Response(204)

    def create_session(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST create_session: a new session id."""
        body = parse_object(request)
        body["tags"] = body.get("tags") or []  # missing or null: none
        body["sdk_version"] = body.get("sdk_version") or "unknown"
        body.setdefault("user_metadata", None)
        req = structure(body, types.CreateSessionRequest)
        session_id = self.engine.sessions.create(
            req.tags,
            req.user_metadata,
            req.sdk_version,
            display_name=req.display_name,
            project_id=req.project_id,
        )
        return json_response(
            200, types.CreateSessionResponse(type="create_session", session_id=session_id)
        )

    def session_heartbeat(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST session_heartbeat: keep a session alive (410 once it has ended)."""
        req = parse(request, types.SessionHeartbeatRequest)
        self.engine.sessions.require(req.session_id)
        return json_response(200, types.SessionHeartbeatResponse(type="session_heartbeat"))

    def finish_session(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST sessions/{id}/finish (0.38): the client ends its session (first reason wins)."""
        req = parse(request, types.SessionFinishRequest)
        self.engine.finish_session(params["session"], req.reason.type, req.detail)
        return json_response(200, {})

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

    def join_sampling_session(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST join_sampling_session (0.38): a clone id for a copy of a sampling client."""
        req = parse(request, types.JoinSamplingSessionRequest)
        counter = self.engine.samplers.join(req.sampling_session_id)
        answer = types.JoinSamplingSessionResponse(
            client_counter=counter, type="join_sampling_session"
        )
        return json_response(200, answer)

    def get_server_capabilities(self, request: Request, params: Mapping[str, str]) -> Response:
        """GET get_server_capabilities: the local models, each trainable and sampleable."""
        models = [
            types.SupportedModel(
                model_name=name,
                max_context_length=self.engine.backend.model_info(name).max_context_length,
                trainable=True,
                sampleable=True,
            )
            for name in self.engine.model_names()
        ]
        return json_response(200, types.GetServerCapabilitiesResponse(supported_models=models))

    def healthz(self, request: Request, params: Mapping[str, str]) -> Response:
        """GET healthz."""
        return json_response(200, types.HealthResponse(status="ok"))

    def telemetry(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST telemetry: accepted and dropped (the local server keeps no telemetry)."""
        parse_object(request)
        return json_response(200, types.TelemetryResponse(status="accepted"))

    # training

    def create_model(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST create_model (future): a new LoRA training run with its optimizer."""
        req = parse(request, types.CreateModelRequest)
        lora = req.lora_config or types.LoraConfig(rank=settings.DEFAULT_LORA_RANK)
        submitted = self.engine.runs.create_model(
            req.session_id,
            req.model_seq_id,
            req.base_model,
            lora,
            req.user_metadata,
            _optimizer_config(req.optimizer_config),
        )
        return json_response(200, submitted)

    def get_info(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST get_info: model facts, the tokenizer directory and the optimizer."""
        req = parse(request, types.GetInfoRequest)
        return json_response(200, self.engine.runs.get_info(req.model_id))

    def forward(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST forward (0.5.1, future): loss and outputs, no gradients."""
        req = parse(request, types.ForwardRequest)
        batch = batches.from_json(req.model_id, req.seq_id, req.forward_input, forward_only=True)
        return json_response(200, self.engine.runs.forward(batch))

    def forward_backward(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST forward_backward (future): loss, outputs and accumulated gradients; protobuf
        bodies (0.38) may ask for a forward only."""
        if media_type(request) == proto.CONTENT_TYPE:
            batch = batches.from_message(parse(request, messages.ForwardBackwardRequest))
        else:
            req = parse(request, types.ForwardBackwardRequest)
            batch = batches.from_json(
                req.model_id, req.seq_id, req.forward_backward_input, forward_only=False
            )
        return json_response(200, self.engine.runs.forward(batch))

    def optim_step(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST optim_step (future): a step of the run's optimizer over the gradients."""
        req = parse(request, types.OptimStepRequest)
        step = req.optim_params
        fields: Mapping[str, Any] = step.model_dump(mode="json")
        if isinstance(step, types.AdamParams):
            fields = {"type": "adamw", **fields}
        return json_response(200, self.engine.runs.optim_step(req.model_id, req.seq_id, fields))

    def save_weights(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST save_weights (future): a training checkpoint."""
        req = parse(request, types.SaveWeightsRequest)
        submitted = self.engine.runs.save_weights(
            req.model_id,
            req.seq_id,
            req.path,
            req.ttl_seconds,
            # A 0.5.1 body has no `overwrite`: its saves replace the checkpoint.
            overwrite=req.overwrite or "overwrite" not in types.fields_set(req),
            user_metadata=req.user_metadata,
        )
        return json_response(200, submitted)

    def load_weights(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST load_weights (future): weights (and optimizer state) from a checkpoint, onto a
        model or (0.38) into a model it creates."""
        req = parse(request, types.LoadWeightsRequest)
        runs = self.engine.runs
        if req.model_id is not None:
            submitted = runs.load_weights(req.model_id, req.seq_id, req.path, bool(req.optimizer))
        else:
            assert req.session_id is not None and req.model_seq_id is not None  # checked
            submitted = runs.create_from_checkpoint(
                req.session_id,
                req.model_seq_id,
                CheckpointSource(req.path, bool(req.optimizer)),
                base_model=req.base_model,
                user_metadata=req.user_metadata,
                optimizer_config=_optimizer_config(req.optimizer_config),
            )
        return json_response(200, submitted)

    def save_weights_for_sampler(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST save_weights_for_sampler (future): named, or ephemeral (a snapshot, or the
        run's in-flight weights)."""
        req = parse(request, types.SaveWeightsForSamplerRequest)
        submitted = self.engine.runs.save_weights_for_sampler(
            req.model_id,
            req.seq_id,
            req.path,
            req.sampling_session_seq_id,
            req.ttl_seconds,
            inflight=req.kind == "inflight",
            user_metadata=req.user_metadata,
        )
        return json_response(200, submitted)

    def unload_model(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST unload_model (0.5.1, future): free a training run's memory."""
        req = parse(request, types.UnloadModelRequest)
        return json_response(200, self.engine.runs.unload_model(req.model_id))

    def save_weights_external(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST save_weights_external (0.38, future): the weights exported for other tools."""
        req = parse(request, types.SaveWeightsExternalRequest)
        submitted = self.engine.runs.save_weights_external(
            req.model_id, req.seq_id, req.path, req.ttl_seconds, req.age_encryption_recipients
        )
        return json_response(200, submitted)

    def copy_weights(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST copy_weights (0.38): a checkpoint under a new run, sharing its files."""
        req = parse(request, types.CopyWeightsRequest)
        key = request.headers.get("x-idempotency-key")
        return json_response(200, {"tinker_path": self.engine.exports.copy(req, key)})

    def create_custom_loss(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST create_custom_loss (0.38, future): a traced loss for forward_backward."""
        req = parse(request, types.CreateCustomLossRequest)
        submitted = self.engine.runs.create_custom_loss(
            req.session_id,
            req.custom_loss_seq_id,
            req.name,
            [item.model_dump(mode="json") for item in req.inputs],
            req.graph.model_dump(mode="json"),
        )
        return json_response(200, submitted)

    # sampling and futures

    def asample(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST asample (future): sample continuations of a prompt; the answer carries one
        sequence id per sample."""
        req = parse(request, types.SampleRequest)
        sampling = req.sampling_params
        targets = req.target_prompt_logprobs
        spec = SampleSpec(
            prompt=batches.tokens(req.prompt, "prompt"),
            num_samples=req.num_samples,
            max_tokens=sampling.max_tokens,
            temperature=float(sampling.temperature),
            top_k=sampling.top_k,
            top_p=float(sampling.top_p),
            stop=_stop(sampling.stop),
            seed=sampling.seed,
            prompt_logprobs=bool(req.prompt_logprobs),
            topk_prompt_logprobs=req.topk_prompt_logprobs,
            topk_sample_logprobs=req.topk_sample_logprobs,
            target_prompt_logprobs=None
            if targets is None
            else self.engine.samplers.target_table(targets),
            prompt_alt_tokens_k=req.prompt_alt_tokens_k,
            prompt_logprobs_last_n=req.prompt_logprobs_last_n,
            record_stability_info=bool(req.record_stability_info),
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
        """POST retrieve_future: long-poll; 408 try_again while still pending. Results are
        protobuf when the poll's Accept asks for it; a large one is first announced by its
        size when the poll allows that."""
        req = parse(request, types.FutureRetrieveRequest)
        outcome = self.engine.retrieve(req.request_id)
        if outcome is None:
            reason = f"Not finished after {self.engine.config.long_poll_seconds:g} s."
            return json_response(408, responses.try_again(req.request_id, reason))
        body, content_type = outcome.body(self._wants_protobuf(request))
        if (
            req.allow_metadata_only
            and len(body) > self.engine.config.inline_result_bytes
            and self.engine.futures.claim_metadata(req.request_id)
        ):
            return json_response(200, responses.metadata_only(len(body)))
        return Response(200, body, content_type=content_type)

    def _wants_protobuf(self, request: Request) -> bool:
        """Protobuf results for polls that accept them, and always when only 0.38 is spoken."""
        return proto.CONTENT_TYPE in request.headers.get("accept", "") or not self.protocol.speaks(
            OLD
        )

    def retrieve_futures(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST retrieve_futures (0.38): the completions of one sampling client's futures."""
        req = parse(request, types.FuturesRetrieveRequest)
        target = Target(req.target.sampling_session_id, req.target.cloned_sampler_id)
        found, cursor = self.engine.completions(
            target, req.prev_cursor, req.timeout, list(req.retrieved_request_ids)
        )
        answer = types.FuturesRetrieveResponse(
            completions=[_completion(c) for c in found], cursor=cursor
        )
        return json_response(200, answer)

    def cancel_future(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST cancel_future (0.38): stop a queued sample nobody waits for."""
        req = parse(request, types.CancelFutureRequest)
        self.engine.cancel(req.request_id)
        return json_response(200, {})

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
        """GET archives/{token}: the file behind a download link (no API key needed)."""
        download = self.engine.downloads.get(params["token"])
        return Response(
            200,
            download.produce(),
            content_type=download.content_type,
            headers=(("Content-Disposition", f'attachment; filename="{download.file_name}"'),),
        )

    def external_weights_urls(self, request: Request, params: Mapping[str, str]) -> Response:
        """GET .../external_weights_urls (0.38): download links of an export's files."""
        answer = self.engine.exports.file_links(_ref(params), request.base_url)
        return json_response(200, answer)

    def export_session_trace(self, request: Request, params: Mapping[str, str]) -> Response:
        """GET sessions/{id}/trace_export (0.38): a link to the session's trace."""
        answer = self.engine.exports.trace(params["session"], request.base_url)
        return json_response(200, answer)

    def list_sessions(self, request: Request, params: Mapping[str, str]) -> Response:
        """GET sessions: a page of session ids."""
        limit, offset = _page(request, default_limit=20)
        rows = self.engine.store.list_sessions(limit, offset)
        sessions = [row.session_id for row in rows]
        return json_response(200, types.ListSessionsResponse(sessions=sessions))

    def get_session(self, request: Request, params: Mapping[str, str]) -> Response:
        """GET sessions/{id}: its training runs and samplers (and, for 0.38, its metadata
        and display name)."""
        session_id = params["session"]
        row = self.engine.store.get_session(session_id)
        if row is None:
            raise NotFound(f"Session {session_id!r} not found.")
        answer = types.GetSessionResponse(
            training_run_ids=self.engine.store.runs_of_session(session_id),
            sampler_ids=self.engine.store.samplers_of_session(session_id),
        )
        extra = {"user_metadata": row.user_metadata, "display_name": row.display_name}
        return json_response(200, {**_wire.unstructure(answer), **extra})

    def search_sessions(self, request: Request, params: Mapping[str, str]) -> Response:
        """POST sessions/search (0.38): sessions by id, name, project, metadata, status."""
        search = parse(request, types.SessionSearchRequest)
        return json_response(200, reports.search_sessions(self.engine.store, search))

    def assign_session_project(self, request: Request, params: Mapping[str, str]) -> Response:
        """PUT sessions/{id}/project (0.38): move a session and its runs to a project."""
        body = parse_object(request)
        project = body.get("project_id")
        if not isinstance(project, str):
            raise Unprocessable("The body needs a string field 'project_id'.")
        session_id = params["session"]
        if not reports.assign_project(self.engine.store, session_id, project):
            raise NotFound(f"Session {session_id!r} not found.")
        self.engine.accounting.audit(
            PROJECTS, "session_project_assigned", session_id=session_id, project_id=project
        )
        return json_response(200, {})

    def billing_usage(self, request: Request, params: Mapping[str, str]) -> Response:
        """GET billing/usage/events (0.38): hourly token counts, at zero cost."""
        start = reports.parse_time("starting_on", request.query.get("starting_on"))
        end = reports.parse_time("ending_before", request.query.get("ending_before"))
        return json_response(200, reports.billing_usage(self.engine.store, start, end))

    def storage_usage(self, request: Request, params: Mapping[str, str]) -> Response:
        """GET billing/usage/checkpoints/current (0.38): checkpoint storage per project."""
        project = request.query.get("project_id") or None
        return json_response(200, reports.storage_usage(self.engine.store, project))

    def audit_log(self, request: Request, params: Mapping[str, str]) -> Response:
        """GET audit (0.38): checkpoint and project events, of one day if asked."""
        event_type = request.query.get("event_type") or "all"
        answer = reports.audit_log(self.engine.store, event_type, request.query.get("day"))
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


def _optimizer_config(config: types.OptimizerConfig | None) -> dict[str, Any] | None:
    """A request's optimizer selection as the backend reads it ({"type": ..., ...})."""
    return None if config is None else config.model_dump(mode="json")


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


def _page(request: Request, *, default_limit: int) -> tuple[int, int]:
    """`limit` (at most MAX_PAGE) and `offset` of a list endpoint."""
    limit = query_int(request, "limit", default_limit)
    return min(limit, settings.MAX_PAGE), query_int(request, "offset", 0)


def _ref(params: Mapping[str, str]) -> CheckpointRef:
    return checkpoint_ref(params["run"], params["ckpt"])


def _completion(completion: Completion) -> types.FutureCompletion:
    """A completion as retrieve_futures reports it: failed, or finished with the size of its
    protobuf payload (what 0.38 clients fetch)."""
    if completion.outcome.failed:
        return types.FutureFailed(request_id=completion.request_id)
    size = len(completion.outcome.body(protobuf=True)[0])
    return types.FutureFinished(
        request_id=completion.request_id, response_payload_uncompressed_size=size
    )
