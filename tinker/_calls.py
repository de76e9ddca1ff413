"""API calls as values, and the runner that carries one from the client method to the wire.

A client method builds one `ApiCall` (traffic kind, method, path, body, expected result, retry
policy, headers, timeout; for an endpoint that answers with a server-side future, the request
type its polls report and the queue-state observer). `CallRunner` does the rest, in order:
the codec (`tinker._wire`) encodes the body, the transport sends it under the call's retry
policy (tinker._retry), the reply is decoded, and a request id goes to the poller, whose result
is decoded the same way. A submit that never got an answer (the server is gone) fails with an
error that also says what was lost and how to go on.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from tinker import _loopguard, _wire
from tinker._attribution import current_method, method_headers
from tinker._batch_poll import BatchTarget
from tinker._futures import APIFuture, completed, on_cancelled, reject, settle_from, transform
from tinker._poller import Poller, QueueStateObserver, resume_hint
from tinker._retry import TRANSPORT, CallAttempts, RetryEnv, RetryExecutor, RetryPolicy
from tinker._transport import HttpRequest, Reply, Traffic, Transport, is_unreachable
from tinker._wire.codec import LEGACY_CODEC, WireCodec
from tinker._workers import WorkerPool
from tinker.errors import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    status_error,
)

__all__ = ["ApiCall", "CallRunner", "decode", "set_fields"]

logger = logging.getLogger(__name__)


@attrs.frozen(kw_only=True)
class ApiCall:
    """One call of the API, as the client method means it; nothing here is encoded yet.

    `body` is a request model or JSON-ready data. `result` is what a 2xx answer (or, with
    `poll_as`, the polled result) is structured into: a model class, None or dict for the parsed
    JSON, or `Reply` for the raw reply (which then also returns 3xx instead of raising).
    `poll_as` marks an endpoint that answers `{request_id}`: the request type its polls report;
    `batch`, the batch-poller target that announces its completion (samples); `sdk_method`
    is the public method it was built in (`tinker._attribution`; None: background traffic).
    `complete(answer, result)` then gives the polled result what the submit answer adds to it
    (the sequence ids of a sample).
    """

    traffic: Traffic
    method: str
    path: str
    body: object | None = None
    params: Mapping[str, object] | None = None
    result: type[Any] | None = None
    retry: RetryPolicy = TRANSPORT
    headers: Mapping[str, str] | None = None
    timeout: float | None = None
    allow_redirects: bool = False
    poll_as: str | None = None
    observer: QueueStateObserver | None = None
    batch: BatchTarget | None = None
    complete: Callable[[Any, Any], Any] | None = None
    sdk_method: str | None = attrs.field(factory=current_method)

    @property
    def what(self) -> str:
        """How log lines name this call, e.g. "POST /api/v1/forward_backward"."""
        return f"{self.method} {self.path}"

    def encode(self, codec: WireCodec = LEGACY_CODEC) -> HttpRequest:
        """The HTTP request, its body encoded by the era's `codec` (JSON refuses NaN and
        Infinity; forward/forward_backward are protobuf in the 0.38 era)."""
        path, headers = self.path, self.headers
        content = None
        if self.body is not None:
            encoded = codec.encode(self.path, self.body)
            path, content = encoded.path, encoded.content
            headers = {**encoded.headers, **(headers or {})}
        if codec.current and self.sdk_method is not None:
            headers = {**(headers or {}), **method_headers(self.sdk_method)}
        return HttpRequest(
            traffic=self.traffic,
            method=self.method,
            path=path,
            content=content,
            params=self.params,
            headers=headers,
            timeout=self.timeout,
            allow_redirects=self.allow_redirects,
        )


def set_fields(**fields: Any) -> dict[str, Any]:
    """The optional request fields that are set (None: left out, so not sent)."""
    return {name: value for name, value in fields.items() if value is not None}


def decode(reply: Reply, result: type[Any] | None) -> Any:
    """A successful reply's body structured into `result` (see ApiCall); 3xx raise unless
    `result` is Reply; a body that does not fit raises APIResponseValidationError."""
    if result is Reply:
        return reply
    if reply.status_code >= 300:
        raise status_error(reply.status_code, reply.body, response=reply)
    data = reply.json()
    if result is None or result is dict:
        return data
    try:
        return _wire.structure(data, result)
    except Exception as exc:
        raise APIResponseValidationError(
            message=f"Response from {reply.url} does not match {result.__name__}: {exc}",
            status_code=reply.status_code,
            response=reply,
            body=data,
        ) from exc


def _explain_unanswered(sent: APIFuture[Any], call: ApiCall) -> APIFuture[Any]:
    """`sent`, whose failure for want of any answer also says that the operation's result is
    lost (it may or may not have run) and how to go on."""
    out: APIFuture[Any] = APIFuture()

    def done(source: concurrent.futures.Future[Any]) -> None:
        error = None if source.cancelled() else source.exception()
        kind = type(error)
        if error is None or kind not in (APIConnectionError, APITimeoutError):
            settle_from(out, source)
            return
        if is_unreachable(error):
            fate = "it was not sent, so it did not run"
        else:
            fate = "it may or may not have run, and its result is lost"
        explained = (APITimeoutError if kind is APITimeoutError else APIConnectionError)(
            f"{error}. {call.what} got no answer: {fate}. {resume_hint(call.poll_as or '')}"
        )
        explained.__cause__ = error
        reject(out, explained)

    sent.add_done_callback(done)
    return out


class _Attempt:
    """One attempt of a call: encode the body (once, on the first attempt's thread), send it
    with the attempt's identity, raise an error status, decode the answer."""

    __slots__ = ("call", "codec", "request", "transport")

    def __init__(self, transport: Transport, call: ApiCall, codec: WireCodec) -> None:
        self.transport = transport
        self.call = call
        self.codec = codec
        self.request: HttpRequest | None = None

    def __call__(self, attempts: CallAttempts) -> Any:
        if self.request is None:
            self.request = self.call.encode(self.codec)
        reply = self.transport.send(
            self.request,
            retry_count=attempts.retry_count,
            idempotency_key=attempts.idempotency_key,
        )
        expected = None if self.call.poll_as is not None else self.call.result
        return decode(reply.raise_for_status(), expected)


class CallRunner:
    """Runs ApiCalls: encode, send under the retry policy, decode, track server-side futures.

    `pools` says which pool runs the background calls of each traffic kind; `poller` tracks the
    results of future-returning endpoints. Without them only `call` of a direct endpoint works
    (what opening a session needs).
    """

    def __init__(
        self,
        transport: Transport,
        *,
        executor: RetryExecutor,
        env: RetryEnv,
        poller: Poller | None = None,
        pools: Mapping[Traffic, WorkerPool] | None = None,
        codec: WireCodec = LEGACY_CODEC,
    ) -> None:
        self.codec = codec
        self.transport = transport
        self._executor = executor
        self._env = env
        self._poller = poller
        self._pools = pools or {}

    def call(self, call: ApiCall) -> Any:
        """Run `call` in this thread (it waits through retry pauses); with `poll_as`, also wait
        for the polled result."""
        _loopguard.note_blocking(call.what, "run it outside the event loop")
        started = self._env.clock()
        attempts = call.retry.attempts(self._env, call.what)
        data = self._executor.call(attempts, _Attempt(self.transport, call, self.codec))
        if call.poll_as is None:
            return data
        return self._track(call, data, started).result()

    def submit(self, call: ApiCall) -> APIFuture[APIFuture[Any]]:
        """Send `call` from the pool of its traffic kind; a future that resolves once it was
        sent, to the future of its result (polled when `poll_as`, else already done)."""
        started = self._env.clock()
        attempts = call.retry.attempts(self._env, call.what)
        attempt = _Attempt(self.transport, call, self.codec)
        sent = self._executor.submit(attempts, attempt, pool=self._pools[call.traffic])
        if call.poll_as is not None:
            sent = _explain_unanswered(sent, call)
        return transform(sent, functools.partial(self._after_send, call, started))

    def _after_send(self, call: ApiCall, started: float, data: Any) -> APIFuture[Any]:
        if call.poll_as is None:
            return completed(data)
        return self._track(call, data, started)

    def _poll_headers(self, call: ApiCall) -> dict[str, str]:
        """What the polls of `call`'s result add: the result formats taken and, in the 0.38
        era, the public method that started it."""
        headers = dict(self.codec.result_headers(getattr(call.result, "__name__", "")))
        if self.codec.current and call.sdk_method is not None:
            headers = {**headers, **method_headers(call.sdk_method)}
        return headers

    def _track(self, call: ApiCall, data: Any, started: float) -> APIFuture[Any]:
        """Hand the request id of a future-returning endpoint's answer to the poller."""
        request_id = data.get("request_id") if isinstance(data, Mapping) else None
        if not isinstance(request_id, str):
            raise ValueError(f"{call.path} answered without a request_id: {data!r}")
        if self._poller is None:
            raise RuntimeError(f"{call.path} answers with a future but nothing polls here")
        polled = self._poller.track(
            request_id,
            call.poll_as or "",
            functools.partial(self.codec.decode_result, result=call.result),
            type_name=getattr(call.result, "__name__", "object"),
            observer=call.observer,
            submitted_at=started,
            accept=self._poll_headers(call),
            batch=call.batch,
        )
        if call.complete is None:
            return polled
        stamped = transform(polled, functools.partial(call.complete, data))
        on_cancelled(stamped, polled.cancel)  # an abandoned sample stops being polled
        return stamped
