"""A recording Tinker server: logs every request an SDK sends and answers just enough to go on.

Run it with the official 0.38 venv's interpreter (it builds protobuf answers with that package's
own generated classes): `python capture_server.py --log requests.jsonl --mode plain|features`.
It prints its base URL on the first line and serves until terminated.

Each request becomes one JSON line: method, path, query, headers (all of them, in order), the raw
body in base64, the answer's status and Content-Type, and the label the driver last set through
`POST /_capture/mark`. Answers follow the 0.38 protocol for 0.38 clients (protobuf results when the
poll's Accept asks for them) and PROTOCOL (JSON) for 0.5.1 clients. `--mode features` switches on
every optional 0.38 feature the client config controls (JWT exchange, zstd bodies, small chunks,
the retrieve_futures poller, join_sampling_session, server-side custom losses, cancel).
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import re
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

API_KEY = "tml-capture-fake-api-key-0000"
STAMP = "2026-01-01T00:00:00Z"
SENTINEL_LOGPROB = -99999.0
PENDING_MAX_TOKENS = 99  # a sample asking for this many tokens never finishes (cancel capture)

FEATURES_CONFIG = {
    "pjwt_auth_enabled": True,
    "proto_compress_fwdbwd": True,
    "parallel_fwdbwd_chunks": True,
    "fwdbwd_max_chunk_len": 2,
    "sample_use_retrieve_futures": True,
    "sample_join_sampling_session": True,
    "custom_loss_server_side": True,
}
FEATURES_DYNAMIC = {"sample_cancel_enabled": True, "sample_cancel_max_batch_size": 8}


def fake_jwt() -> str:
    """An unsigned, obviously fake token with the claims the 0.38 client reads."""
    now = int(time.time())
    claims = {
        "sub": "tml:user:capture-user",
        "org_id": "capture-org",
        "email": "capture@example.invalid",
        "iss": "passport-capture",
        "iat": now,
        "exp": now + 3600,
    }

    def part(obj: object) -> str:
        raw = json.dumps(obj, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.fake-signature"


@dataclass
class Outcome:
    """What a future resolves to: a JSON body, or a result rendered per the poll's Accept."""

    json_body: dict[str, Any] | None = None
    render: Callable[[bool], tuple[str, bytes]] | None = None  # proto? -> (content type, body)
    pending_forever: bool = False
    metadata_first: bool = False
    polls: int = 0


@dataclass
class State:
    """Everything the capture server remembers between requests."""

    mode: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(init=False)
    mark: str = "startup"
    sessions: int = 0
    futures: dict[str, Outcome] = field(default_factory=dict)
    next_request: int = 0
    sampling_sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    # (cursor, sampling session, clone id, completion)
    events: list[tuple[int, str, int, dict[str, Any]]] = field(default_factory=list)
    clients_per_sampler: dict[str, int] = field(default_factory=dict)
    checkpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    custom_losses: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)

    def new_future(self, outcome: Outcome, **extra: Any) -> dict[str, Any]:
        with self.lock:
            self.next_request += 1
            request_id = f"req-{self.next_request}"
            self.futures[request_id] = outcome
        return {"request_id": request_id, **extra}


# ----------------------------------------------------------------------------- protobuf answers


def _pb() -> Any:
    from tinker.proto import tinker_public_pb2

    return tinker_public_pb2


def _tensor(pb: Any, values: np.ndarray, *, sparse: dict[str, Any] | None = None) -> Any:
    dtype = pb.DTYPE_INT64 if values.dtype.kind == "i" else pb.DTYPE_FLOAT32
    array = values.astype("<i8" if dtype == pb.DTYPE_INT64 else "<f4")
    message = pb.Tensor(dtype=dtype)
    if sparse is not None:
        message.shape.extend(sparse["shape"])
        message.sparse_csr.values = array.tobytes()
        message.sparse_csr.crow_indices = np.asarray(sparse["crow"], "<i8").tobytes()
        message.sparse_csr.col_indices = np.asarray(sparse["col"], "<i8").tobytes()
    else:
        message.shape.extend(array.shape)
        message.dense = array.tobytes()
    return message


def _topk(pb: Any, rows: list[list[tuple[int, float]] | None], k: int) -> Any:
    ids = np.zeros((len(rows), k), "<i4")
    logprobs = np.full((len(rows), k), SENTINEL_LOGPROB, "<f4")
    for i, row in enumerate(rows):
        for j, (token, logprob) in enumerate(row or []):
            ids[i, j], logprobs[i, j] = token, logprob
    return pb.TopkLogprobs(
        token_ids=ids.tobytes(), logprobs=logprobs.tobytes(), k=k, length=len(rows)
    )


# ----------------------------------------------------------------------------- results


def forward_backward_result(datums: list[dict[str, Any]], loss_fn: str) -> Outcome:
    """Per-datum logprobs and elementwise losses, plus metrics, in either encoding."""
    lengths = [d["length"] for d in datums]
    outputs = [np.linspace(-1.0, -0.25, n, dtype=np.float32) for n in lengths]
    metrics = {"loss:sum": float(sum(-o.sum() for o in outputs))}

    def render(proto: bool) -> tuple[str, bytes]:
        if not proto:
            body = {
                "loss_fn_output_type": "ArrayRecord",
                "loss_fn_outputs": [
                    {
                        "logprobs": {"data": o.tolist(), "dtype": "float32", "shape": [len(o)]},
                        "elementwise_loss": {
                            "data": (-o).tolist(),
                            "dtype": "float32",
                            "shape": [len(o)],
                        },
                    }
                    for o in outputs
                ],
                "metrics": metrics,
            }
            return "application/json", json.dumps(body).encode()
        pb = _pb()
        record = pb.ArrayRecord(type_tag=loss_fn, num_datums=len(outputs))
        for name, arrays in (("logprobs", outputs), ("elementwise_loss", [-o for o in outputs])):
            data = b"".join(a.astype("<f4").tobytes() for a in arrays)
            offsets = np.cumsum([0, *[a.nbytes for a in arrays]]).astype("<i8")
            batched = record.fields[name]
            batched.data, batched.offsets, batched.dtype = data, offsets.tobytes(), pb.DTYPE_FLOAT32
        message = pb.ForwardBackwardOutput(loss_fn_output_type="ArrayRecord", metrics=metrics)
        message.loss_fn_outputs.append(record)
        return "application/x-protobuf", message.SerializeToString()

    return Outcome(render=render)


def sample_result(request: dict[str, Any], prompt_length: int) -> Outcome:
    """Sequences and every optional prompt output the request asked for, in either encoding."""
    num = int(request.get("num_samples", 1))
    params = request.get("sampling_params") or {}
    max_tokens = params.get("max_tokens") or 4
    tokens = [[65 + (i + j) % 26 for j in range(max_tokens)] for i in range(num)]
    want_prompt = bool(request.get("prompt_logprobs"))
    last_n = request.get("prompt_logprobs_last_n")
    first_scored = 1 if last_n is None else max(1, prompt_length - int(last_n))
    prompt_lp = [math.nan if i < first_scored else -0.5 - i / 100 for i in range(prompt_length)]
    topk_prompt = int(request.get("topk_prompt_logprobs") or 0)
    topk_sample = int(request.get("topk_sample_logprobs") or 0)
    alt_k = int(request.get("prompt_alt_tokens_k") or 0)
    target = request.get("target_prompt_logprobs")

    def topk_rows(n: int, k: int, skip_first: bool) -> list[list[tuple[int, float]] | None]:
        return [
            None if (skip_first and i < first_scored) else [(10 + j, -1.0 - j) for j in range(k)]
            for i in range(n)
        ]

    def render(proto: bool) -> tuple[str, bytes]:
        if proto:
            pb = _pb()
            message = pb.SampleResponse(prompt_cache_hit_tokens=0)
            for seq in tokens:
                sequence = message.sequences.add(stop_reason=pb.STOP_REASON_LENGTH)
                sequence.tokens = np.asarray(seq, "<i4").tobytes()
                sequence.logprobs = np.full(len(seq), -0.25, "<f4").tobytes()
                if topk_sample:
                    rows = topk_rows(len(seq), topk_sample, skip_first=False)
                    sequence.topk_sampled_logprobs.CopyFrom(_topk(pb, rows, topk_sample))
            if want_prompt:
                message.prompt_logprobs = np.asarray(prompt_lp, "<f4").tobytes()
            if topk_prompt:
                rows = topk_rows(prompt_length, topk_prompt, skip_first=True)
                message.topk_prompt_logprobs.CopyFrom(_topk(pb, rows, topk_prompt))
            if target is not None:
                values = np.zeros(len(target["data"]), np.float32) - 2.0
                sparse = None
                if target.get("sparse_crow_indices") is not None:
                    sparse = {
                        "shape": target["shape"],
                        "crow": target["sparse_crow_indices"],
                        "col": target["sparse_col_indices"],
                    }
                else:
                    values = values.reshape(target["shape"])
                message.target_prompt_logprobs.CopyFrom(_tensor(pb, values, sparse=sparse))
            if alt_k:
                shape = (prompt_length - 1, alt_k)
                message.prompt_alt_tokens.tokens.CopyFrom(_tensor(pb, np.full(shape, 7, np.int64)))
                message.prompt_alt_tokens.logprobs.CopyFrom(
                    _tensor(pb, np.full(shape, -1.5, np.float32))
                )
            return "application/x-protobuf", message.SerializeToString()
        body: dict[str, Any] = {
            "sequences": [
                {"stop_reason": "length", "tokens": seq, "logprobs": [-0.25] * len(seq)}
                for seq in tokens
            ],
            "type": "sample",
        }
        if want_prompt:
            body["prompt_logprobs"] = [None if math.isnan(v) else v for v in prompt_lp]
        if topk_prompt:
            rows = topk_rows(prompt_length, topk_prompt, skip_first=True)
            body["topk_prompt_logprobs"] = [None if r is None else list(r) for r in rows]
        return "application/json", json.dumps(body).encode()

    pending = params.get("max_tokens") == PENDING_MAX_TOKENS
    return Outcome(render=render, pending_forever=pending)


# ----------------------------------------------------------------------------- request decoding


def decode_forward_backward(body: bytes, headers: dict[str, str]) -> tuple[str, list[dict]]:
    """(model id, datums with their target length) of a protobuf or JSON forward request."""
    if "x-protobuf" in headers.get("content-type", ""):
        if headers.get("content-encoding") == "zstd":
            import zstandard

            body = zstandard.ZstdDecompressor().decompressobj().decompress(body)
        message = _pb().ForwardBackwardRequest.FromString(body)
        datums = []
        for datum in message.data:
            target = datum.loss_fn_inputs.get("target_tokens")
            length = target.shape[0] if target is not None and target.shape else 0
            if not length:
                length = sum(len(c.encoded_text.tokens) // 4 for c in datum.model_input)
            datums.append({"length": length})
        return message.model_id, datums
    request = json.loads(body)
    inner = request.get("forward_backward_input") or request.get("forward_input") or request
    datums = []
    for datum in inner["data"]:
        target = datum["loss_fn_inputs"].get("target_tokens", {})
        length = len(target.get("data", [])) or _prompt_length(datum["model_input"])
        datums.append({"length": length})
    return request["model_id"], datums


def _prompt_length(model_input: dict[str, Any]) -> int:
    total = 0
    for chunk in model_input["chunks"]:
        if "tokens" in chunk and isinstance(chunk["tokens"], list):
            total += len(chunk["tokens"])
        else:
            total += chunk.get("expected_tokens") or chunk.get("tokens") or 0
    return total


# ----------------------------------------------------------------------------- the handler


class Handler(BaseHTTPRequestHandler):
    """Records each request, then dispatches it to the matching route."""

    protocol_version = "HTTP/1.1"
    server: CaptureHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self) -> None:
        body = self._read_body()
        parsed = urllib.parse.urlsplit(self.path)
        state = self.server.state
        if parsed.path.startswith("/_capture/"):
            status, content_type, answer = control(self.server, parsed, body)
            self._send(status, content_type, answer)
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        with state.lock:
            mark = state.mark
            state.counts[parsed.path] = state.counts.get(parsed.path, 0) + 1
        extra: dict[str, str] = {}
        try:
            status, content_type, answer, *rest_of = route(
                state, self.command, parsed, headers, body
            )
            extra = rest_of[0] if rest_of else {}
        except Exception as exc:  # an SDK request this server does not understand
            status, content_type = 500, "application/json"
            answer = json.dumps({"error": f"capture server: {type(exc).__name__}: {exc}"}).encode()
        self.server.record(
            {
                "mark": mark,
                "method": self.command,
                "path": parsed.path,
                "query": parsed.query,
                "headers": [[k, v] for k, v in self.headers.items()],
                "body_b64": base64.b64encode(body).decode(),
                "status": status,
                "response_content_type": content_type,
            }
        )
        self._send(status, content_type, answer, extra)

    def _send(
        self, status: int, content_type: str, body: bytes, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            return  # the client gave up on this request (an abandoned poll): nothing to answer


class CaptureHTTPServer(ThreadingHTTPServer):
    """The HTTP server plus the shared state and the request log."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: State, log_path: str) -> None:
        super().__init__(address, Handler)
        self.state = state
        self._log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._log_lock = threading.Lock()
        self._seq = 0

    def record(self, entry: dict[str, Any]) -> None:
        with self._log_lock:
            self._seq += 1
            self._log.write(json.dumps({"seq": self._seq, **entry}) + "\n")
            self._log.flush()

    def server_close(self) -> None:
        super().server_close()
        self._log.close()


def control(
    server: CaptureHTTPServer, parsed: urllib.parse.SplitResult, body: bytes
) -> tuple[int, str, bytes]:
    """The driver's side channel: set the current label, count requests seen on a path."""
    state = server.state
    if parsed.path == "/_capture/mark":
        label = json.loads(body)["label"]
        with state.lock:
            state.mark = label
        server.record({"mark_set": label})
        return 200, "application/json", b"{}"
    if parsed.path == "/_capture/count":
        path = urllib.parse.parse_qs(parsed.query)["path"][0]
        with state.lock:
            count = state.counts.get(path, 0)
        return 200, "application/json", json.dumps({"count": count}).encode()
    return 404, "application/json", b'{"detail": "unknown control path"}'


def ok(body: object) -> tuple[int, str, bytes]:
    return 200, "application/json", json.dumps(body).encode()


def route(
    state: State,
    method: str,
    parsed: urllib.parse.SplitResult,
    headers: dict[str, str],
    raw: bytes,
) -> tuple[int, str, bytes]:
    """Answer one API request (see the module docstring for the protocol followed)."""
    path = parsed.path
    is_json = raw[:1] in (b"{", b"[")
    body: dict[str, Any] = json.loads(raw) if is_json else {}
    features = state.mode == "features"

    if path == "/api/v1/client/config":
        return ok(FEATURES_CONFIG if features else {})
    if path == "/api/v1/client/dynamic_config":
        return ok({**FEATURES_DYNAMIC, "refresh_interval_sec": 10} if features else {})
    if path == "/api/v1/auth/token":
        return ok({"jwt": fake_jwt()})
    if path == "/api/v1/create_session":
        with state.lock:
            state.sessions += 1
            session_id = f"capture-session-{state.sessions}"
        return ok({"session_id": session_id, "type": "create_session"})
    if path == "/api/v1/session_heartbeat":
        return ok({"type": "session_heartbeat"})
    if path == "/api/v1/telemetry":
        return ok({"status": "accepted"})
    if re.fullmatch(r"/api/v1/sessions/[^/]+/finish", path):
        return ok({})
    if path == "/api/v1/get_server_capabilities":
        models = [{"model_name": "tinker-local/tiny", "max_context_length": 256}]
        if features:
            models[0].update(trainable=True, sampleable=True)
        return ok({"supported_models": models})
    if path == "/api/v1/healthz":
        return ok({"status": "ok"})

    # --- training
    if path == "/api/v1/create_model":
        model_id = f"{body['session_id']}:train:{body['model_seq_id']}"
        rank = body["lora_config"]["rank"]
        with state.lock:
            state.models[model_id] = {"base_model": body["base_model"], "rank": rank}
        outcome = Outcome(json_body={"model_id": model_id, "type": "create_model"})
        return ok(state.new_future(outcome, model_id=model_id))
    if path == "/api/v1/get_info":
        model = state.models.get(body["model_id"], {"base_model": "tinker-local/tiny", "rank": 8})
        return ok(
            {
                "type": "get_info",
                "model_id": body["model_id"],
                "model_data": {"arch": "tiny", "model_name": model["base_model"]},
                "is_lora": True,
                "lora_rank": model["rank"],
            }
        )
    if path == "/api/v1/weights_info":
        return ok({"base_model": "tinker-local/tiny", "is_lora": True, "lora_rank": 8})
    if path in ("/api/v1/forward_backward", "/api/v1/forward"):
        model_id, datums = decode_forward_backward(raw, headers)
        outcome = forward_backward_result(datums, "cross_entropy")
        outcome.metadata_first = features
        return ok(state.new_future(outcome, model_id=model_id))
    if path == "/api/v1/optim_step":
        outcome = Outcome(json_body={"metrics": {"grad_norm:mean": 0.5}})
        return ok(state.new_future(outcome, model_id=body["model_id"]))
    if path == "/api/v1/save_weights":
        result = {"path": checkpoint(state, body["model_id"], "weights", body["path"])}
        return ok(state.new_future(Outcome(json_body={**result, "type": "save_weights"})))
    if path == "/api/v1/load_weights":
        model_id = body.get("model_id") or f"{body['session_id']}:train:{body['model_seq_id']}"
        with state.lock:
            state.models.setdefault(model_id, {"base_model": "tinker-local/tiny", "rank": 8})
        result = {"path": body["path"], "model_id": model_id, "type": "load_weights"}
        return ok(state.new_future(Outcome(json_body=result), model_id=model_id))
    if path == "/api/v1/save_weights_for_sampler":
        if body.get("path"):
            tinker_path = checkpoint(state, body["model_id"], "sampler_weights", body["path"])
            result: dict[str, Any] = {"path": tinker_path}
        else:
            session = body["model_id"].split(":train:")[0]
            sampler = f"{session}:sample:{body['sampling_session_seq_id']}"
            state.sampling_sessions[sampler] = {"base_model": "tinker-local/tiny"}
            result = {"sampling_session_id": sampler}
        result["type"] = "save_weights_for_sampler"
        return ok(state.new_future(Outcome(json_body=result)))
    if path == "/api/v1/save_weights_external":
        tinker_path = checkpoint(state, body["model_id"], "external_weights", body["path"])
        result = {"path": tinker_path, "size_bytes": 4096, "type": "save_weights_external"}
        return ok(state.new_future(Outcome(json_body=result)))
    if path == "/api/v1/create_custom_loss":
        with state.lock:
            state.custom_losses += 1
            loss_id = f"capture-loss-{state.custom_losses}"
        outcome = Outcome(json_body={"loss_id": loss_id, "type": "create_custom_loss"})
        return ok(state.new_future(outcome))
    if path == "/api/v1/copy_weights":
        source = body["source_path"]
        return ok({"tinker_path": source.replace("tinker://", "tinker://copied-run-", 1)})
    if path == "/api/v1/unload_model":
        return ok(state.new_future(Outcome(json_body={"model_id": body["model_id"]})))

    # --- sampling
    if path == "/api/v1/create_sampling_session":
        sampler = f"{body['session_id']}:sample:{body['sampling_session_seq_id']}"
        state.sampling_sessions[sampler] = {
            "base_model": body.get("base_model") or "tinker-local/tiny",
            "model_path": body.get("model_path"),
        }
        return ok({"sampling_session_id": sampler, "type": "create_sampling_session"})
    if path == "/api/v1/join_sampling_session":
        sampler = body["sampling_session_id"]
        with state.lock:
            state.clients_per_sampler[sampler] = state.clients_per_sampler.get(sampler, 0) + 1
            counter = state.clients_per_sampler[sampler]
        return ok({"client_counter": counter, "type": "join_sampling_session"})
    if method == "GET" and (m := re.fullmatch(r"/api/v1/samplers/(.+)", path)):
        sampler = urllib.parse.unquote(m.group(1))
        known = state.sampling_sessions.get(sampler, {"base_model": "tinker-local/tiny"})
        answer = {"sampler_id": sampler, "base_model": known["base_model"]}
        if known.get("model_path"):
            answer["model_path"] = known["model_path"]
        return ok(answer)
    if path == "/api/v1/asample":
        outcome = sample_result(body, _prompt_length(body["prompt"]))
        num = int(body.get("num_samples", 1))
        submitted = state.new_future(outcome)
        request_id = submitted["request_id"]
        submitted["sample_sequence_ids"] = [f"{request_id}-seq-{i}" for i in range(num)]
        if not outcome.pending_forever:
            clone = int(body.get("seq_id") or 0) // 1_000_000_000
            assert outcome.render is not None
            size = len(outcome.render(True)[1])
            completion = {
                "state": "finished",
                "request_id": request_id,
                "response_payload_uncompressed_size": size,
            }
            add_event(state, body["sampling_session_id"], clone, completion)
        return ok(submitted)
    if path == "/api/v1/retrieve_future":
        return retrieve(state, body, headers)
    if path == "/api/v1/retrieve_futures":
        return retrieve_many(state, body)
    if path == "/api/v1/cancel_future":
        return ok({})

    return rest(state, method, path, parsed.query, body)


def checkpoint(state: State, model_id: str, kind: str, name: str) -> str:
    """Remember a checkpoint for the REST answers and return its tinker path."""
    tinker_path = f"tinker://{model_id}/{kind}/{name}"
    checkpoint_type = {"weights": "training", "sampler_weights": "sampler"}.get(kind, "external")
    with state.lock:
        state.checkpoints[tinker_path] = {
            "checkpoint_id": f"{kind}/{name}",
            "checkpoint_type": checkpoint_type,
            "time": STAMP,
            "tinker_path": tinker_path,
            "size_bytes": 4096,
            "public": False,
        }
    return tinker_path


def add_event(state: State, sampler: str, clone: int, completion: dict[str, Any]) -> None:
    with state.changed:
        cursor = len(state.events) + 1
        state.events.append((cursor, sampler, clone, completion))
        state.changed.notify_all()


def retrieve(state: State, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, str, bytes]:
    """One retrieve_future poll: pending, metadata-only once (features mode), or the result."""
    request_id = body["request_id"]
    outcome = state.futures.get(request_id)
    if outcome is None:
        return 404, "application/json", json.dumps({"detail": "unknown request_id"}).encode()
    outcome.polls += 1
    if outcome.pending_forever:
        time.sleep(0.2)
        pending = {"type": "try_again", "request_id": request_id, "queue_state": "active"}
        return 408, "application/json", json.dumps(pending).encode()
    if outcome.json_body is not None:
        return ok(outcome.json_body)
    assert outcome.render is not None
    proto = "application/x-protobuf" in headers.get("accept", "")
    content_type, payload = outcome.render(proto)
    if outcome.metadata_first and body.get("allow_metadata_only"):
        outcome.metadata_first = False
        return ok({"status": "complete_metadata", "response_payload_size": len(payload)})
    return 200, content_type, payload


def retrieve_many(state: State, body: dict[str, Any]) -> tuple[int, str, bytes]:
    """The retrieve_futures poller: completions of one sampler clone after `prev_cursor`."""
    target = body["target"]
    sampler, clone = target["sampling_session_id"], target.get("cloned_sampler_id", 0)
    after = int(body.get("prev_cursor") or 0)
    deadline = time.monotonic() + (0.0 if body.get("timeout") == 0 else 2.0)
    with state.changed:
        while True:
            fresh = [
                (cursor, completion)
                for cursor, s, c, completion in state.events
                if cursor > after and s == sampler and c == clone
            ]
            remaining = deadline - time.monotonic()
            if fresh or remaining <= 0:
                break
            state.changed.wait(remaining)
        cursor = max([after, *(c for c, _ in fresh)])
        if not fresh and state.events:
            cursor = max(after, state.events[-1][0])
    return ok({"completions": [c for _, c in fresh], "cursor": cursor})


def rest(
    state: State, method: str, path: str, query: str, body: dict[str, Any]
) -> tuple[int, str, bytes]:
    """The REST and admin endpoints of both releases."""
    params = urllib.parse.parse_qs(query)
    with state.lock:
        checkpoints = list(state.checkpoints.values())
        models = dict(state.models)

    def run(model_id: str) -> dict[str, Any]:
        return {
            "training_run_id": model_id,
            "base_model": models.get(model_id, {}).get("base_model", "tinker-local/tiny"),
            "model_owner": "capture-user",
            "is_lora": True,
            "lora_rank": models.get(model_id, {}).get("rank", 8),
            "corrupted": False,
            "last_request_time": STAMP,
            "user_metadata": {"purpose": "capture"},
        }

    checkpoint_path = r"/api/v1/training_runs/([^/]+)/checkpoints/(.+?)"
    if method == "GET" and path == "/api/v1/training_runs":
        limit = int(params.get("limit", ["20"])[0])
        offset = int(params.get("offset", ["0"])[0])
        runs = [run(m) for m in models]
        cursor = {"offset": offset, "limit": limit, "total_count": len(runs)}
        return ok({"training_runs": runs, "cursor": cursor})
    if method == "GET" and (m := re.fullmatch(r"/api/v1/training_runs/([^/]+)", path)):
        return ok(run(urllib.parse.unquote(m.group(1))))
    if method == "GET" and (m := re.fullmatch(r"/api/v1/training_runs/([^/]+)/checkpoints", path)):
        run_id = urllib.parse.unquote(m.group(1))
        return ok({"checkpoints": [c for c in checkpoints if f"//{run_id}/" in c["tinker_path"]]})
    if method == "GET" and path == "/api/v1/checkpoints":
        limit = int(params.get("limit", ["100"])[0])
        offset = int(params.get("offset", ["0"])[0])
        cursor = {"offset": offset, "limit": limit, "total_count": len(checkpoints)}
        return ok({"checkpoints": checkpoints, "cursor": cursor})
    if re.fullmatch(checkpoint_path + "/publish", path):
        return ok({})
    if method == "PUT" and re.fullmatch(checkpoint_path + "/ttl", path):
        return ok({})
    if method == "GET" and re.fullmatch(checkpoint_path + "/external_weights_urls", path):
        urls = {"model.safetensors": "https://storage.example.invalid/model.safetensors?sig=x"}
        return ok({"urls": urls, "expires": "2026-01-01T01:00:00Z"})
    if method == "GET" and re.fullmatch(checkpoint_path + "/archive", path):
        location = {
            "Location": "https://storage.example.invalid/archive.tar.gz",
            "Expires": "Thu, 01 Jan 2026 01:00:00 GMT",
        }
        return 302, "text/plain", b"", location
    if method == "DELETE" and re.fullmatch(checkpoint_path, path):
        return ok({})
    if method == "GET" and path == "/api/v1/sessions":
        with state.lock:
            sessions = [f"capture-session-{i}" for i in range(1, state.sessions + 1)]
        return ok({"sessions": sessions})
    if method == "POST" and path == "/api/v1/sessions/search":
        summary = {
            "session_id": "capture-session-1",
            "created_at": STAMP,
            "owner": "tml:user:capture-user",
            "project_id": "capture-project",
            "status": {"type": "active"},
            "checkpoints_count": len(checkpoints),
            "display_name": "capture",
            "user_metadata": {},
        }
        return ok({"sessions": [summary], "next_cursor": None})
    if method == "PUT" and re.fullmatch(r"/api/v1/sessions/[^/]+/project", path):
        return ok({})
    if method == "GET" and re.fullmatch(r"/api/v1/sessions/[^/]+/trace_export", path):
        return ok({"status": "ready", "url": "https://storage.example.invalid/trace.pftrace"})
    if method == "GET" and (m := re.fullmatch(r"/api/v1/sessions/([^/]+)", path)):
        with state.lock:
            samplers = list(state.sampling_sessions)
        return ok(
            {
                "training_run_ids": list(models),
                "sampler_ids": samplers,
                "user_metadata": {"purpose": "capture"},
                "display_name": "capture",
            }
        )
    if method == "GET" and path == "/api/v1/billing/usage/events":
        return ok({"data": [], "sessions": {}, "cost_data_through": None})
    if method == "GET" and path == "/api/v1/billing/usage/checkpoints/current":
        return ok({"data": [], "effective_rate_usd_per_gigabyte_month": None})
    if method == "GET" and path == "/api/v1/audit":
        return ok({"entries": [{"timestamp": STAMP, "event": "checkpoint.created"}]})
    return 404, "application/json", json.dumps({"detail": f"no route {method} {path}"}).encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", required=True, help="JSON-lines file the requests go to")
    parser.add_argument("--mode", choices=("plain", "features"), default="plain")
    args = parser.parse_args()
    server = CaptureHTTPServer(("127.0.0.1", 0), State(mode=args.mode), args.log)
    host, port = server.server_address[:2]
    print(f"http://{host}:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
