"""SamplingClient: text generation and prompt logprobs from one sampler (base model or weights).

`sample()` returns a future at once. The path of one sample: the arguments are checked in the
caller's thread (`_validation`); the sample-level retries (`_limits.SampleRetries`, under the
client's RetryConfig) start an attempt; the session's `SampleLimiter` admits it (a bounded
number in flight, none during the shared 429 back-off); the attempt's ApiCall, with a fresh
seq_id, is POSTed to `/api/v1/asample` with the `X-Tinker-Sampling-Backpressure: 1` header
(`_calls`); the request id goes to the poller, whose result is decoded into a SampleResponse.
An HTTP 429 on submit backs every sampler of the session off for one second and resubmits; an
expired promise, a 5xx or a connection error resubmits after a jittered backoff; a progress
timeout bounds it all.

A SamplingClient pickles to a small handle (config, session id, sampler id, retry config) and
re-attaches to the same session in another process. The handle carries the API key, so a
pickled client is a credential: only send it where the key may go.

Sample seq_ids: the original client numbers its samples 0, 1, 2... A re-attached (unpickled)
client, and every client inherited by a forked child, restarts from another base so that its
seq_ids cannot collide with those of the original, which the server would otherwise take for
retries of the original's requests: on a server of today's protocol `clone_id x 1,000,000,000`
(the clone id from `join_sampling_session` when the server asks for it, else a random one),
on an older server a random `(1 + secrets.randbits(31)) << 20`.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import itertools
import json
import logging
import os
import secrets
import threading
import uuid
import weakref
from collections.abc import Callable
from typing import Any

import attrs

from tinker import _loopguard, types
from tinker import _twins as twins
from tinker import _validation as validation
from tinker._batch_poll import CLONE_STRIDE, BatchTarget
from tinker._calls import ApiCall, set_fields
from tinker._client_future import ClientFuture, forwarding
from tinker._futures import APIFuture, abandonable, completed, transform
from tinker._limits import SampleSeqIds
from tinker._poller import QueuePauseWarner, QueueState, QueueStateObserver
from tinker._retry import SAMPLE_SUBMIT, SUBMIT, TRANSPORT, RetryConfig
from tinker._runtime import ClientBase, Runtime
from tinker._session import attach
from tinker._transport import Traffic
from tinker.config import LEGACY_SERVER, ClientConfig, ServerConfig
from tinker.errors import APIResponseValidationError, NotFoundError
from tinker.tokenizer import Tokenizer, get_tokenizer, tokenizer_id_for_model

__all__ = [
    "BackcompatSamplingClientFuture",
    "SamplerHandle",
    "SamplingClient",
    "open_sampling_client",
]

logger = logging.getLogger(__name__)

BACKPRESSURE_HEADERS = {"X-Tinker-Sampling-Backpressure": "1"}


def open_sampling_client(
    runtime: Runtime,
    model_path: str | None,
    base_model: str | None,
    retry_config: RetryConfig | None,
    record_stability_info: bool = False,
) -> SamplingClient:
    """Create a sampling session (blocking, transport retries only) and its client.

    The arguments must have passed `_validation.check_sampler_source`. Saved weights that the
    service does not have are a NotFoundError naming the path and what to do.
    """
    request = types.CreateSamplingSessionRequest(
        session_id=runtime.session_id,
        sampling_session_seq_id=runtime.next_sampling_session_seq_id(),
        base_model=base_model,
        model_path=model_path,
    )
    try:
        response: types.CreateSamplingSessionResponse = runtime.call(
            ApiCall(
                traffic=Traffic.SESSION,
                method="POST",
                path="/api/v1/create_sampling_session",
                body=request,
                result=types.CreateSamplingSessionResponse,
                retry=TRANSPORT,
            )
        )
    except NotFoundError as exc:
        if model_path is None:
            raise
        raise NotFoundError(
            f"No sampler weights at {model_path} on {runtime.poller.server}: save them first "
            "with TrainingClient.save_weights_for_sampler(name) and pass the path its result "
            "names (RestClient.list_checkpoints(run_id) lists what a run has saved)",
            status_code=exc.status_code,
            response=exc.response,
            body=exc.body,
        ) from None
    if base_model is None:
        base_model = _sampler_base_model(runtime, response.sampling_session_id)
    return SamplingClient(
        runtime,
        sampling_session_id=response.sampling_session_id,
        retry_config=retry_config,
        base_model=base_model,
        record_stability_info=record_stability_info,
    )


def _sampler_base_model(runtime: Runtime, sampling_session_id: str) -> str:
    """The base model of a sampler, asked of the server (blocking)."""
    sampler: types.GetSamplerResponse = runtime.call(
        ApiCall(
            traffic=Traffic.TRAIN,
            method="GET",
            path=f"/api/v1/samplers/{sampling_session_id}",
            result=types.GetSamplerResponse,
            retry=TRANSPORT,
        )
    )
    return sampler.base_model


@attrs.frozen
class SamplerHandle:
    """Everything needed to re-attach a SamplingClient in another process (no secrets shown)."""

    config: ClientConfig
    session_id: str
    sampling_session_id: str
    retry_config: RetryConfig | None
    base_model: str | None
    record_stability_info: bool = False
    server: ServerConfig = LEGACY_SERVER


def _reattach(handle: SamplerHandle) -> SamplingClient:
    client = SamplingClient(
        attach(handle.config, handle.session_id, server=handle.server),
        sampling_session_id=handle.sampling_session_id,
        retry_config=handle.retry_config,
        base_model=handle.base_model,
        record_stability_info=handle.record_stability_info,
    )
    client._rebase_seq_ids(join=True)
    return client


def _clone_base(runtime: Runtime, sampling_session_id: str, *, join: bool) -> int:
    """The first seq_id of a copy of a sampling client (see the module docstring)."""
    server = runtime.server
    if not server.current:
        return (1 + secrets.randbits(31)) << 20
    if join and server.join_sampling_session:
        answer = runtime.call(
            ApiCall(
                traffic=Traffic.SESSION,
                method="POST",
                path="/api/v1/join_sampling_session",
                body={"sampling_session_id": sampling_session_id, "type": "join_sampling_session"},
                retry=SUBMIT,
            )
        )
        clone_id = answer.get("client_counter") if isinstance(answer, dict) else None
        if not isinstance(clone_id, int) or isinstance(clone_id, bool) or clone_id < 1:
            raise APIResponseValidationError(
                f"join_sampling_session answered without a clone id >= 1: {answer!r}",
                body=answer,
            )
    else:
        clone_id = uuid.uuid4().int % CLONE_STRIDE + 1
    return clone_id * CLONE_STRIDE


_LIVE_CLIENTS: weakref.WeakSet[SamplingClient] = weakref.WeakSet()


def _rebase_inherited_clients() -> None:
    """In a forked child: move every inherited client to a fresh seq_id range."""
    for client in list(_LIVE_CLIENTS):
        client._rebase_seq_ids()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_rebase_inherited_clients)


class SamplingClient(ClientBase, QueueStateObserver):
    """Samples from one sampling session (`sampling_session_id`) of a ServiceClient session.

    The client's samples carry seq_ids 0, 1, 2...; a copy re-attached from a pickle, or one
    inherited by a forked child, continues from `clone_id * CLONE_STRIDE` (the clone id from
    join_sampling_session when the server wants that, else random), so its requests never
    collide with the original's (the server de-duplicates on seq_id).
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        sampling_session_id: str,
        retry_config: RetryConfig | None = None,
        base_model: str | None = None,
        record_stability_info: bool = False,
    ) -> None:
        validation.check_retry_config(retry_config)
        super().__init__(runtime)
        self.record_stability_info = record_stability_info
        self.sampling_session_id = sampling_session_id
        self.retry_config = retry_config if retry_config is not None else RetryConfig()
        self._explicit_retry_config = retry_config
        self._base_model = base_model
        self._seq_ids = itertools.count()
        self._seq_lock = threading.Lock()
        _LIVE_CLIENTS.add(self)
        self._retries = runtime.sample_retries(
            self.retry_config, name=f"sampler {sampling_session_id}"
        )
        self._warn_paused = QueuePauseWarner(
            f"Sampling is paused for sampler {sampling_session_id}.",
            "concurrent LoRA rate limit hit",
        )
        self._tokenizer: Tokenizer | None = None
        self._tokenizer_lock = threading.Lock()

    @staticmethod
    def create(
        holder: Runtime,
        *,
        model_path: str | None = None,
        base_model: str | None = None,
        sampling_session_id: str | None = None,
        retry_config: RetryConfig | None = None,
        record_stability_info: bool = False,
    ) -> APIFuture[SamplingClient]:
        """A future SamplingClient: on `sampling_session_id`, or on a new sampling session."""
        stability = validation.check_flag(record_stability_info, "record_stability_info")
        if sampling_session_id is not None:
            client = SamplingClient(
                holder,
                sampling_session_id=sampling_session_id,
                retry_config=retry_config,
                base_model=base_model,
                record_stability_info=stability,
            )
            return completed(client)
        model_path, base_model = validation.check_sampler_source(
            model_path, base_model, retry_config
        )
        return holder.spawn(
            open_sampling_client, holder, model_path, base_model, retry_config, stability
        )

    def __repr__(self) -> str:
        return (
            f"SamplingClient(sampling_session_id={self.sampling_session_id!r}, "
            f"base_url={self._runtime.config.base_url!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_reattach, (self.handle(),))

    def handle(self) -> SamplerHandle:
        """The picklable handle of this client (it includes the API key)."""
        return SamplerHandle(
            config=self._runtime.portable_config(),
            session_id=self._runtime.session_id,
            sampling_session_id=self.sampling_session_id,
            retry_config=self._explicit_retry_config,
            base_model=self._base_model,
            record_stability_info=self.record_stability_info,
            server=self._runtime.server,
        )

    def get_sampler_handle(self) -> str:
        """A string naming this sampler, without credentials: `from_sampler_handle(handle)`
        rebuilds a client on it in any process (on the same session, no new one)."""
        config = self._runtime.portable_config()
        state = {
            "session_id": self._runtime.session_id,
            "sampling_session_id": self.sampling_session_id,
            "holder": {
                "base_url": config.base_url,
                "default_headers_overrides": dict(config.default_headers),
                "client_config": None,
                "client_dynamic_config": None,
                "api_key": None,
            },
            "base_model": self._base_model,
            "record_stability_info": self.record_stability_info,
        }
        compact = json.dumps(state, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(compact).decode("ascii")

    @staticmethod
    def from_sampler_handle(handle: str, *, api_key: str | None = None) -> SamplingClient:
        """A new client on the sampler a `get_sampler_handle()` string names, authenticated
        with `api_key` (else this process's TINKER_API_KEY); its sample seq_ids start from a
        range of their own."""
        state = validation.check_sampler_handle(handle)
        config = ClientConfig.from_env(
            base_url=state.base_url, api_key=api_key, default_headers=state.headers or None
        )
        client = SamplingClient(
            attach(config, state.session_id),
            sampling_session_id=state.sampling_session_id,
            base_model=state.base_model,
            record_stability_info=state.record_stability_info,
        )
        client._rebase_seq_ids()
        return client

    def _rebase_seq_ids(self, *, join: bool = False) -> None:
        """Draw later seq_ids from a range disjoint from the original client's 0, 1, 2...
        (`join`: ask the server for the clone id when it wants that; never in a fork hook)."""
        self._seq_lock = threading.Lock()  # a lock inherited across fork may be held forever
        base = _clone_base(self._runtime, self.sampling_session_id, join=join)
        self._seq_ids = itertools.count(base)

    def _next_seq_id(self) -> int:
        with self._seq_lock:
            return next(self._seq_ids)

    def sample(
        self,
        prompt: types.ModelInput,
        num_samples: int,
        sampling_params: types.SamplingParams,
        include_prompt_logprobs: bool = False,
        topk_prompt_logprobs: int = 0,
        topk_sample_logprobs: int = 0,
        target_prompt_logprobs: types.TensorData | None = None,
        prompt_alt_tokens_k: int = 0,
        prompt_logprobs_last_n: int | None = None,
    ) -> APIFuture[types.SampleResponse]:
        """Generate `num_samples` continuations of `prompt`; returns a future at once.

        `sampling_params` sets max_tokens, temperature, top_k/top_p, stop sequences and the
        seed (only the fields you set are sent). With `include_prompt_logprobs`, the response
        also has the log-probability of every prompt token given the ones before it
        (`prompt_logprobs_last_n`: of the last N only), and `topk_prompt_logprobs` > 0 adds the
        top-k alternatives per prompt position. `topk_sample_logprobs` > 0 gives the top-k
        at each generated position; `target_prompt_logprobs` (int64 token ids `[len(prompt) -
        1, K]`, -1 for none) scores chosen tokens at each prompt position after the first;
        `prompt_alt_tokens_k` draws k alternative tokens there.

        The future resolves to a SampleResponse (`sequences`: tokens, logprobs,
        stop_reason and `sequence_id` of each continuation). Raises TypeError/ValueError in
        the caller's thread for a bad argument. Resubmits after an HTTP 429 (with the same
        seq_id on a server of today's protocol), an expired request, a 5xx or a connection
        error (with a fresh one), per the client's RetryConfig; the future fails with
        RequestFailedError when the server rejects the request, or APIConnectionError when no
        sample made progress for `progress_timeout` seconds.
        """
        validation.check_sample_args(
            prompt, num_samples, sampling_params, include_prompt_logprobs, topk_prompt_logprobs
        )
        validation.check_prompt_scoring(
            prompt,
            include_prompt_logprobs,
            topk_sample_logprobs,
            target_prompt_logprobs,
            prompt_alt_tokens_k,
            prompt_logprobs_last_n,
        )
        extra = set_fields(
            topk_sample_logprobs=topk_sample_logprobs or None,
            target_prompt_logprobs=target_prompt_logprobs,
            prompt_alt_tokens_k=prompt_alt_tokens_k or None,
            prompt_logprobs_last_n=prompt_logprobs_last_n,
            record_stability_info=self.record_stability_info or None,
        )
        return self._runtime.operation(
            self._sample(
                prompt,
                num_samples,
                sampling_params,
                include_prompt_logprobs,
                topk_prompt_logprobs,
                extra,
            )
        )

    sample_async = twins.awaiting(sample)

    def _sample(
        self,
        prompt: types.ModelInput,
        num_samples: int,
        sampling_params: types.SamplingParams,
        include_prompt_logprobs: bool,
        topk_prompt_logprobs: int,
        extra: dict[str, Any],
    ) -> APIFuture[types.SampleResponse]:
        request = functools.partial(
            types.SampleRequest,
            num_samples=num_samples,
            prompt=prompt,
            sampling_params=sampling_params,
            sampling_session_id=self.sampling_session_id,
            prompt_logprobs=include_prompt_logprobs,
            topk_prompt_logprobs=topk_prompt_logprobs,
            **extra,
        )
        seq_ids = SampleSeqIds(self._next_seq_id, keep_after_429=self._runtime.server.current)
        return self._retries.run(functools.partial(self._attempt, request, seq_ids))

    def _attempt(
        self, request: Callable[..., types.SampleRequest], seq_ids: SampleSeqIds
    ) -> APIFuture[types.SampleResponse]:
        """One attempt: admitted by the session's limiter, sent with its seq_id, polled."""
        submit = functools.partial(self._submit, request, seq_ids)
        admitted: APIFuture[APIFuture[Any]] = self._runtime.sample_limiter.admit(submit)
        attempt = abandonable(admitted)
        attempt.add_done_callback(seq_ids.attempt_done)
        return attempt

    def _submit(
        self, request: Callable[..., types.SampleRequest], seq_ids: SampleSeqIds
    ) -> APIFuture[APIFuture[Any]]:
        seq_id = seq_ids.take()
        return self._runtime.submit(
            ApiCall(
                traffic=Traffic.SAMPLE,
                method="POST",
                path="/api/v1/asample",
                body=request(seq_id=seq_id),
                batch=BatchTarget(self.sampling_session_id, seq_id // CLONE_STRIDE),
                result=types.SampleResponse,
                retry=SAMPLE_SUBMIT,
                headers=BACKPRESSURE_HEADERS,
                poll_as="Sample",
                observer=self,
                complete=_with_sequence_ids,
            )
        )

    def compute_logprobs(
        self, prompt: types.ModelInput, prompt_logprobs_last_n: int | None = None
    ) -> APIFuture[list[float | None]]:
        """The log-probability of every prompt token given the ones before it (of the last
        `prompt_logprobs_last_n` only, the others None).

        Returns at once a future of one value per token; the first is None (nothing precedes
        it). One sample of a single token is drawn and discarded.
        """
        validation.check_sample_args(prompt, 1, types.SamplingParams(), True, 0)
        validation.check_prompt_scoring(prompt, True, 0, None, 0, prompt_logprobs_last_n)
        extra = set_fields(prompt_logprobs_last_n=prompt_logprobs_last_n)
        future = self._sample(prompt, 1, types.SamplingParams(max_tokens=1), True, 0, extra)
        return self._runtime.operation(transform(future, _prompt_logprobs))

    compute_logprobs_async = twins.awaiting(compute_logprobs)

    def get_base_model(self) -> str:
        """The sampler's base model (known since creation; asked of the server only for a
        client built from a bare sampling session id)."""
        advice = "call it once before the loop or in a worker thread"
        with _loopguard.calling("SamplingClient.get_base_model", advice), self._tokenizer_lock:
            if self._base_model is None:
                self._base_model = _sampler_base_model(self._runtime, self.sampling_session_id)
            return self._base_model

    get_base_model_async = twins.offloaded(get_base_model)

    def get_tokenizer(self) -> Tokenizer:
        """The tokenizer of the sampler's base model."""
        base_model = self.get_base_model()
        advice = "call it once before the loop or in a worker thread"
        with _loopguard.calling("SamplingClient.get_tokenizer", advice), self._tokenizer_lock:
            if self._tokenizer is None:
                self._tokenizer = get_tokenizer(tokenizer_id_for_model(base_model))
            return self._tokenizer

    def on_queue_state_change(
        self, queue_state: QueueState, queue_state_reason: str | None = None
    ) -> None:
        """Warn (at most once a minute) while the server pauses this sampler's queue, with the
        server's reason when it gives one."""
        self._warn_paused(queue_state, queue_state_reason)


def _with_sequence_ids(answer: Any, response: types.SampleResponse) -> types.SampleResponse:
    """The response with each sequence's `sequence_id`, as the submit answer named them (a
    server that names none leaves them as they are)."""
    ids = answer.get("sample_sequence_ids") if isinstance(answer, dict) else None
    if not ids:
        return response
    if len(ids) != len(response.sequences):
        raise ValueError(
            f"the sample answered {len(ids)} sequence ids for {len(response.sequences)} sequences"
        )
    sequences = [
        dataclasses.replace(sequence, sequence_id=sequence_id)
        for sequence, sequence_id in zip(response.sequences, ids, strict=True)
    ]
    return dataclasses.replace(response, sequences=sequences)


def _prompt_logprobs(response: types.SampleResponse) -> list[float | None]:
    if response.prompt_logprobs is None:
        raise ValueError("the sampler returned no prompt_logprobs")
    return list(response.prompt_logprobs)


@forwarding(SamplingClient)
class BackcompatSamplingClientFuture(ClientFuture[SamplingClient], SamplingClient):
    """What client creation returns: the SamplingClient being created, a Future of it
    (`.result()`, done callbacks) and awaitable. Used as the client, each method waits for
    the creation and forwards; pickling waits for the client and pickles it."""
