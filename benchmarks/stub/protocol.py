"""Instant-answer model of the Tinker protocol: endpoint -> reply, with a server-side future store.

Transport-free (bytes in, Reply or Hold out) so it is testable without sockets and cheap enough
that the HTTP server around it is never the bottleneck of a client benchmark. It speaks both
eras: `client/config` answers `StubConfig.client_config` (so a 0.38 client, official or ours,
negotiates today's protocol), forward/forward_backward also come as protobuf (zstd or not), a
poll that accepts protobuf gets a protobuf ForwardBackwardOutput or SampleResponse (encoded by
tinker-sync's own codec), and `retrieve_futures` announces sample completions per sampling
session; a 0.5.1 client or the raw floor gets the JSON protocol as before.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

PROTOBUF = "application/x-protobuf"
CLONE_STRIDE = 1_000_000_000
BATCH_POLL_SECONDS = 45.0
SUBMIT_KINDS = {
    "/api/v1/create_model": "create_model",
    "/api/v1/asample": "sample",
    "/api/v1/forward": "forward",
    "/api/v1/forward_backward": "forward_backward",
    "/api/v1/optim_step": "optim_step",
    "/api/v1/save_weights": "save_weights",
    "/api/v1/load_weights": "load_weights",
    "/api/v1/save_weights_for_sampler": "save_weights_for_sampler",
    "/api/v1/unload_model": "unload_model",
}
STUB_MODEL = "bench/stub-model"
DEFAULT_SAMPLE_TOKENS = 16


def dumps(obj: object) -> bytes:
    """Compact JSON, as a real server sends it."""
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass
class Reply:
    """A complete HTTP answer: status code, body bytes and their Content-Type."""

    status: int
    body: bytes
    content_type: str = "application/json"


@dataclass
class Hold:
    """The request waits (long-poll): `wake()` calls appended to `waiters` answer it with
    `respond()`; after `seconds` (default: the config's long-poll bound) `on_timeout()`."""

    waiters: list[Callable[[], None]]
    respond: Callable[[], Reply]
    on_timeout: Callable[[], Reply]
    seconds: float | None = None


@dataclass
class FutureRecord:
    """One server-side future: its result body, completion time and the polls waiting on it."""

    request_id: str
    result: bytes
    key: int | None = None
    completed_at: float | None = None
    waiters: list[Callable[[], None]] = field(default_factory=list)
    kind: str = ""
    target: tuple[str, int] | None = None  # (sampling session, clone) of a sample


@dataclass
class StubConfig:
    """Knobs a benchmark sets through POST /_bench/config."""

    sample_delay: float = 0.0  # seconds from asample submit to completion
    sample_delay_spread: float = 0.0  # plus up to this much more, fixed per prompt key
    fb_result: str = "full"  # "full": per-datum logprobs; "minimal": one empty dict per datum
    long_poll_seconds: float = 20.0
    client_config: dict[str, Any] = field(default_factory=dict)  # the client/config answer


class StubState:
    """Sessions, models and futures of one stub server; `handle` answers one request."""

    def __init__(
        self,
        schedule: Callable[[float, Callable[[], None]], object],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._schedule = schedule
        self._clock = clock
        self.config = StubConfig()
        self._counter = 0
        self._futures: dict[str, FutureRecord] = {}
        self._models: dict[str, tuple[str, int]] = {}
        self.completions: dict[int, float] = {}
        self.requests: Counter[str] = Counter()
        self.bytes_in: Counter[str] = Counter()
        self.bytes_out: Counter[str] = Counter()
        self._proto_results: dict[bytes, bytes] = {}  # JSON result -> its protobuf form
        self._finished: dict[tuple[str, int], list[str]] = {}  # completed samples per target
        self._batch_waiters: dict[tuple[str, int], list[Callable[[], None]]] = {}

    def _next(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}-{self._counter}"

    def reset(self) -> None:
        """Forget futures, completions and traffic counters (sessions and models stay)."""
        self._futures.clear()  # the batch pollers' completion lists stay: cursors index them
        self.completions.clear()
        self.requests.clear()
        self.bytes_in.clear()
        self.bytes_out.clear()

    def handle(
        self, method: str, path: str, body: bytes, headers: dict[str, str] | None = None
    ) -> Reply | Hold:
        """Answer one request; a long poll on what is still pending returns Hold. `headers`:
        the request's Content-Type, Content-Encoding and Accept (lower-case names)."""
        route = path.split("?", 1)[0]
        self.requests[route] += 1
        headers = headers or {}
        if headers.get("content-type", "").startswith(PROTOBUF):
            return self._submit_protobuf(body, headers.get("content-encoding"))
        try:
            payload: JSON = json.loads(body) if body else {}
        except ValueError:
            return Reply(400, dumps({"detail": "body is not JSON"}))
        if route.startswith("/_bench/"):
            return self._control(method, route, payload)
        kind = SUBMIT_KINDS.get(route)
        if kind is not None and method == "POST":
            return self._submit(kind, payload)
        if route == "/api/v1/retrieve_future" and method == "POST":
            return self._retrieve(payload, PROTOBUF in headers.get("accept", ""))
        if route == "/api/v1/retrieve_futures" and method == "POST":
            return self._retrieve_many(payload)
        if route == "/api/v1/client/config":
            return Reply(200, dumps(self.config.client_config))
        immediate = self._immediate(method, route, payload)
        if immediate is None:
            return Reply(404, dumps({"detail": "Not Found"}))
        return Reply(200, dumps(immediate))

    def _immediate(self, method: str, route: str, p: JSON) -> JSON | None:
        if method == "GET":
            if route == "/api/v1/get_server_capabilities":
                return {"supported_models": [{"model_name": STUB_MODEL}]}
            if route == "/api/v1/healthz":
                return {"status": "ok"}
            return None
        if route == "/api/v1/client/dynamic_config":
            return {}
        if route.startswith("/api/v1/sessions/") and route.endswith("/finish"):
            return {}
        if route == "/api/v1/create_session":
            return {"type": "create_session", "session_id": self._next("session")}
        if route == "/api/v1/session_heartbeat":
            return {"type": "session_heartbeat"}
        if route == "/api/v1/telemetry":
            return {"status": "accepted"}
        if route == "/api/v1/create_sampling_session":
            sid = f"{p['session_id']}:sample:{p['sampling_session_seq_id']}"
            return {"type": "create_sampling_session", "sampling_session_id": sid}
        if route == "/api/v1/get_info":
            base, rank = self._models.get(p["model_id"], (STUB_MODEL, 32))
            return {
                "type": "get_info",
                "model_id": p["model_id"],
                "model_data": {"arch": "stub", "model_name": base, "tokenizer_id": None},
                "is_lora": True,
                "lora_rank": rank,
                "model_name": base,
            }
        if route == "/api/v1/weights_info":
            return {"base_model": STUB_MODEL, "is_lora": True, "lora_rank": 32}
        return None

    def _submit_protobuf(self, body: bytes, encoding: str | None) -> Reply:
        """A protobuf forward/forward_backward (0.38), decoded by tinker-sync's codec."""
        from tinker._wire import compression, proto

        if encoding == "zstd":
            body = compression.decompress(body, max_output_size=1 << 30)
        call = proto.decode_forward_backward_request(body)
        kind = "forward" if call.forward_only else "forward_backward"
        counts = [datum.model_input.length for datum in call.data]
        minimal = self.config.fb_result == "minimal"
        return self._store(
            kind, {"model_id": call.model_id}, forward_result(counts, minimal=minimal), None
        )

    def _submit(self, kind: str, p: JSON) -> Reply:
        result, key = self._result(kind, p)
        return self._store(kind, p, result, key)

    def _store(self, kind: str, p: JSON, result: JSON, key: int | None) -> Reply:
        rid = self._next(kind)
        record = FutureRecord(rid, dumps(result), key, kind=kind)
        if kind == "sample":
            seq_id = int(p.get("seq_id") or 0)
            record.target = (str(p.get("sampling_session_id")), seq_id // CLONE_STRIDE)
        self._futures[rid] = record
        delay = 0.0
        if kind == "sample":
            delay = self.config.sample_delay + self.config.sample_delay_spread * _spread(key)
        if delay > 0:
            self._schedule(delay, lambda: self._complete(record))
        else:
            self._complete(record)
        answer: JSON = {"request_id": rid, "model_id": p.get("model_id")}
        if kind == "sample":  # one sequence id per sample (0.38 clients require them)
            answer["sample_sequence_ids"] = [
                f"{rid}:{n}" for n in range(int(p.get("num_samples", 1)))
            ]
        return Reply(200, dumps(answer))

    def _complete(self, record: FutureRecord) -> None:
        record.completed_at = self._clock()
        if record.key is not None:
            self.completions[record.key] = record.completed_at
        waiters, record.waiters = record.waiters, []
        for wake in waiters:
            wake()
        if record.target is not None:
            self._finished.setdefault(record.target, []).append(record.request_id)
            batch = self._batch_waiters.pop(record.target, [])
            for wake in batch:
                wake()

    def _answer(self, record: FutureRecord, protobuf: bool) -> Reply:
        """A finished future's result, as protobuf when the poll accepts it and it has one."""
        if not protobuf or record.kind not in ("sample", "forward", "forward_backward"):
            return Reply(200, record.result)
        encoded = self._proto_results.get(record.result)
        if encoded is None:
            encoded = self._proto_results[record.result] = _to_protobuf(record)
        return Reply(200, encoded, PROTOBUF)

    def _retrieve(self, p: JSON, protobuf: bool = False) -> Reply | Hold:
        record = self._futures.get(p.get("request_id", ""))
        if record is None:
            return Reply(404, dumps({"detail": f"unknown request_id {p.get('request_id')!r}"}))
        if record.completed_at is not None:
            return self._answer(record, protobuf)
        return Hold(
            record.waiters,
            respond=lambda: self._answer(record, protobuf),
            on_timeout=lambda: self.try_again(record),
        )

    def _retrieve_many(self, p: JSON) -> Reply | Hold:
        """The batch completion poller: completions of one sampling session's clone after
        `prev_cursor`, long-polled up to `timeout` seconds (acknowledgements are not kept)."""
        target_body = p.get("target") or {}
        target = (
            str(target_body.get("sampling_session_id")),
            int(target_body.get("cloned_sampler_id") or 0),
        )
        cursor = int(p.get("prev_cursor") or 0)

        def respond() -> Reply:
            finished = self._finished.get(target, [])
            completions = [{"state": "finished", "request_id": rid} for rid in finished[cursor:]]
            return Reply(200, dumps({"completions": completions, "cursor": len(finished)}))

        timeout = float(p.get("timeout", BATCH_POLL_SECONDS))
        if len(self._finished.get(target, [])) > cursor or timeout <= 0:
            return respond()
        waiters = self._batch_waiters.setdefault(target, [])
        return Hold(waiters, respond=respond, on_timeout=respond, seconds=timeout)

    def try_again(self, record: FutureRecord) -> Reply:
        """The 408 answer for a long-poll that reached its bound while still pending."""
        body = {"type": "try_again", "request_id": record.request_id, "queue_state": "active"}
        return Reply(408, dumps(body))

    def _result(self, kind: str, p: JSON) -> tuple[JSON, int | None]:
        if kind == "sample":
            return sample_result(p)
        if kind in ("forward", "forward_backward"):
            data = p.get(f"{kind}_input", {}).get("data", [])
            counts = [len(_prompt_tokens(datum.get("model_input") or {})) for datum in data]
            return forward_result(counts, minimal=self.config.fb_result == "minimal"), None
        model_id = p.get("model_id", "")
        if kind == "create_model":
            model_id = f"{p['session_id']}:train:{p['model_seq_id']}"
            self._models[model_id] = (p["base_model"], (p.get("lora_config") or {}).get("rank", 32))
            return {"type": "create_model", "model_id": model_id}, None
        if kind == "optim_step":
            return {"metrics": {}}, None
        if kind == "save_weights":
            path = f"tinker://{model_id}/weights/{p['path']}"
            return {"type": "save_weights", "path": path}, None
        if kind == "load_weights":
            return {"type": "load_weights", "path": p.get("path")}, None
        if kind == "save_weights_for_sampler":
            if p.get("path") is not None:
                path = f"tinker://{model_id}/sampler_weights/{p['path']}"
                return {"type": "save_weights_for_sampler", "path": path}, None
            sid = f"{model_id}:sample:{p.get('sampling_session_seq_id')}"
            return {"type": "save_weights_for_sampler", "sampling_session_id": sid}, None
        return {"type": "unload_model", "model_id": model_id}, None

    def _control(self, method: str, route: str, p: JSON) -> Reply:
        if route == "/_bench/stats":
            stats = {
                "requests": dict(self.requests),
                "bytes_in": dict(self.bytes_in),
                "bytes_out": dict(self.bytes_out),
            }
            return Reply(200, dumps(stats))
        if route == "/_bench/completions":
            return Reply(200, dumps({str(k): v for k, v in self.completions.items()}))
        if route == "/_bench/reset" and method == "POST":
            self.reset()
            return Reply(200, dumps({"ok": True}))
        if route == "/_bench/config" and method == "POST":
            for name, value in p.items():
                if not hasattr(self.config, name):
                    return Reply(400, dumps({"detail": f"unknown config field {name!r}"}))
                setattr(self.config, name, type(getattr(self.config, name))(value))
            return Reply(200, dumps(vars(self.config)))
        return Reply(404, dumps({"detail": "Not Found"}))


def _spread(key: int | None) -> float:
    """A fraction in [0, 1) fixed by the key (Knuth's multiplicative hash), 0 without a key."""
    return 0.0 if key is None else ((key * 2654435761) % 2**32) / 2**32


def _prompt_tokens(prompt: JSON) -> list[int]:
    tokens: list[int] = []
    for chunk in prompt.get("chunks", []):
        if isinstance(chunk.get("tokens"), list):
            tokens.extend(chunk["tokens"])
    return tokens


def sample_result(p: JSON) -> tuple[JSON, int | None]:
    """A valid SampleResponse for an asample body; the key is the prompt's first token."""
    params = p.get("sampling_params") or {}
    count = params.get("max_tokens") or DEFAULT_SAMPLE_TOKENS
    sequence = {"tokens": [7] * count, "logprobs": [-0.5] * count, "stop_reason": "length"}
    result: JSON = {"type": "sample", "sequences": [sequence] * int(p.get("num_samples", 1))}
    prompt = _prompt_tokens(p.get("prompt") or {})
    if p.get("prompt_logprobs"):
        result["prompt_logprobs"] = [None] + [-1.0] * (len(prompt) - 1)
    topk = int(p.get("topk_prompt_logprobs") or 0)
    if topk > 0:
        result["topk_prompt_logprobs"] = [None] + [[[0, -1.0]] * topk] * (len(prompt) - 1)
    return result, (prompt[0] if prompt else None)


def _to_protobuf(record: FutureRecord) -> bytes:
    """The protobuf form of a sample or forward_backward result (tinker-sync's codec)."""
    from tinker import _wire, types
    from tinker._wire import proto

    data = json.loads(record.result)
    if record.kind == "sample":
        return proto.encode_sample_response(_wire.structure(data, types.SampleResponse))
    return proto.encode_forward_backward_output(_wire.structure(data, types.ForwardBackwardOutput))


def forward_result(counts: list[int], *, minimal: bool) -> JSON:
    """A valid ForwardBackwardOutput for datums of `counts` tokens: one output per datum, in
    order, and a `loss:sum` metric."""
    outputs: list[JSON] = []
    total = 0
    for n in counts:
        total += n
        if minimal:
            outputs.append({})
        else:
            outputs.append({"logprobs": {"data": [-1.0] * n, "dtype": "float32", "shape": [n]}})
    return {
        "loss_fn_output_type": "CrossEntropyLossReturn",
        "loss_fn_outputs": outputs,
        "metrics": {"loss:sum": float(total)},
    }
