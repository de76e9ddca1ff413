"""SamplingClient: text generation and prompt logprobs from one sampler (base model or weights).

`sample()` returns a future at once. Each call runs PROTOCOL 7.3: submit `asample` under the
session's shared limiter (a 429 pushes every sampler back one second and resubmits), poll the
result, and on a retryable failure (an expired promise, 5xx, connection errors) submit again
after a jittered backoff, with a fresh seq_id per attempt and a progress timeout over all.

A SamplingClient pickles to a small handle (config, session id, sampler id, retry config) and
re-attaches to the same session in another process. The handle carries the API key, so a
pickled client is a credential: only send it where the key may go.

Sample seq_ids: the original client numbers its samples 0, 1, 2... A re-attached (unpickled)
client, and every client inherited by a forked child, restarts from a random base
(`(1 + secrets.randbits(31)) << 20`) so that its seq_ids cannot collide with those of the
original, which the server would otherwise take for retries of the original's requests.
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import attrs

from tinker import types
from tinker._futures import (
    APIFuture,
    QueueState,
    QueueStateObserver,
    chain,
    completed,
    transform,
)
from tinker._ops import (
    ClientBase,
    QueuePauseWarner,
    check_retry_config,
    check_tinker_path,
    submit_and_track,
)
from tinker._retry import SAMPLE_SUBMIT, TRANSPORT, RetryConfig
from tinker._runtime import Runtime, Traffic
from tinker._sync import Thunk, await_future, warn_if_blocking_loop
from tinker.config import ClientConfig
from tinker.tokenizer import Tokenizer, get_tokenizer, tokenizer_id_for_model

__all__ = ["SamplerHandle", "SamplingClient", "plan_sampling_client"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

BACKPRESSURE_HEADERS = {"X-Tinker-Sampling-Backpressure": "1"}


def plan_sampling_client(
    runtime: Runtime,
    model_path: str | None,
    base_model: str | None,
    retry_config: RetryConfig | None,
) -> Thunk[SamplingClient]:
    """Validate the arguments now; the thunk creates the sampling session (blocking)."""
    if model_path is None and base_model is None:
        raise ValueError("create_sampling_client needs model_path or base_model")
    if model_path is not None:
        check_tinker_path(model_path, "model_path")
    if base_model is not None and (not isinstance(base_model, str) or not base_model):
        raise ValueError(f"base_model must be a non-empty str, got {base_model!r}")
    check_retry_config(retry_config)

    def create() -> SamplingClient:
        request = types.CreateSamplingSessionRequest(
            session_id=runtime.session_id,
            sampling_session_seq_id=runtime.next_sampling_session_seq_id(),
            base_model=base_model,
            model_path=model_path,
        )
        response: types.CreateSamplingSessionResponse = runtime.call(
            Traffic.SESSION,
            "POST",
            "/api/v1/create_sampling_session",
            body=request,
            result=types.CreateSamplingSessionResponse,
            retry=TRANSPORT,
        )
        return SamplingClient(
            runtime,
            sampling_session_id=response.sampling_session_id,
            retry_config=retry_config,
            base_model=base_model,
        )

    return create


@attrs.frozen
class SamplerHandle:
    """Everything needed to re-attach a SamplingClient in another process (no secrets shown)."""

    config: ClientConfig
    session_id: str
    sampling_session_id: str
    retry_config: RetryConfig | None
    base_model: str | None


def _reattach(handle: SamplerHandle) -> SamplingClient:
    runtime = Runtime.attach(handle.config, handle.session_id)
    client = SamplingClient(
        runtime,
        sampling_session_id=handle.sampling_session_id,
        retry_config=handle.retry_config,
        base_model=handle.base_model,
    )
    client._rebase_seq_ids()
    return client


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
    inherited by a forked child, continues from a random base `(1 + randbits(31)) << 20`, so its
    requests never collide with the original's (the server de-duplicates on seq_id).
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        sampling_session_id: str,
        retry_config: RetryConfig | None = None,
        base_model: str | None = None,
    ) -> None:
        check_retry_config(retry_config)
        super().__init__(runtime)
        self.sampling_session_id = sampling_session_id
        self.retry_config = retry_config if retry_config is not None else RetryConfig()
        self._explicit_retry_config = retry_config
        self._base_model = base_model
        self._seq_ids = itertools.count()
        self._seq_lock = threading.Lock()
        _LIVE_CLIENTS.add(self)
        self._retry_handler = runtime.sample_retrier(
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
    ) -> APIFuture[SamplingClient]:
        """A future SamplingClient: on `sampling_session_id`, or on a new sampling session."""
        if sampling_session_id is not None:
            client = SamplingClient(
                holder,
                sampling_session_id=sampling_session_id,
                retry_config=retry_config,
                base_model=base_model,
            )
            return completed(client)
        return holder.spawn(plan_sampling_client(holder, model_path, base_model, retry_config))

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
            config=self._runtime.config,
            session_id=self._runtime.session_id,
            sampling_session_id=self.sampling_session_id,
            retry_config=self._explicit_retry_config,
            base_model=self._base_model,
        )

    def _rebase_seq_ids(self) -> None:
        """Draw later seq_ids from a random range disjoint from the original client's 0, 1, 2..."""
        self._seq_lock = threading.Lock()  # a lock inherited across fork may be held forever
        self._seq_ids = itertools.count((1 + secrets.randbits(31)) << 20)

    def _next_seq_id(self) -> int:
        with self._seq_lock:
            return next(self._seq_ids)

    def _attempt(
        self, build: Callable[[int], types.SampleRequest]
    ) -> APIFuture[types.SampleResponse]:
        """One attempt: submit under the shared limiter (on the submit pool), then poll."""
        runtime = self._runtime

        def submit_once() -> APIFuture[types.SampleResponse]:
            return submit_and_track(
                runtime,
                Traffic.SAMPLE,
                "/api/v1/asample",
                build(self._next_seq_id()),
                request_type="Sample",
                result=types.SampleResponse,
                retry=SAMPLE_SUBMIT,
                observer=self,
                headers=BACKPRESSURE_HEADERS,
            )

        def limited() -> APIFuture[types.SampleResponse]:
            # Looked up on the pool thread: a forked child's runtime has a fresh limiter.
            return runtime.sample_limiter.submit(submit_once)

        return chain(runtime.submit(limited), _identity)

    def sample(
        self,
        prompt: types.ModelInput,
        num_samples: int,
        sampling_params: types.SamplingParams,
        include_prompt_logprobs: bool = False,
        topk_prompt_logprobs: int = 0,
    ) -> APIFuture[types.SampleResponse]:
        """Generate `num_samples` continuations of `prompt`; returns a future at once."""
        _check_sample_args(
            prompt, num_samples, sampling_params, include_prompt_logprobs, topk_prompt_logprobs
        )

        def build(seq_id: int) -> types.SampleRequest:
            return types.SampleRequest(
                num_samples=num_samples,
                prompt=prompt,
                sampling_params=sampling_params,
                sampling_session_id=self.sampling_session_id,
                seq_id=seq_id,
                prompt_logprobs=include_prompt_logprobs,
                topk_prompt_logprobs=topk_prompt_logprobs,
            )

        return self._retry_handler.execute(lambda: self._attempt(build))

    async def sample_async(
        self,
        prompt: types.ModelInput,
        num_samples: int,
        sampling_params: types.SamplingParams,
        include_prompt_logprobs: bool = False,
        topk_prompt_logprobs: int = 0,
    ) -> types.SampleResponse:
        """Like `sample`, awaiting the response."""
        future = self.sample(
            prompt, num_samples, sampling_params, include_prompt_logprobs, topk_prompt_logprobs
        )
        return await await_future(future)

    def compute_logprobs(self, prompt: types.ModelInput) -> APIFuture[list[float | None]]:
        """Log-probability of every prompt token given the ones before (the first is None)."""
        future = self.sample(
            prompt, 1, types.SamplingParams(max_tokens=1), include_prompt_logprobs=True
        )
        return transform(future, _prompt_logprobs)

    async def compute_logprobs_async(self, prompt: types.ModelInput) -> list[float | None]:
        """Like `compute_logprobs`, awaiting the result."""
        return await await_future(self.compute_logprobs(prompt))

    def get_tokenizer(self) -> Tokenizer:
        """The tokenizer of the sampler's base model (asks the server for it if unknown)."""
        warn_if_blocking_loop(
            "SamplingClient.get_tokenizer", "call it once before the loop or in a worker thread"
        )
        with self._tokenizer_lock:
            if self._tokenizer is None:
                base_model = self._base_model
                if base_model is None:
                    sampler: types.GetSamplerResponse = self._runtime.call(
                        Traffic.TRAIN,
                        "GET",
                        f"/api/v1/samplers/{self.sampling_session_id}",
                        result=types.GetSamplerResponse,
                        retry=TRANSPORT,
                    )
                    base_model = self._base_model = sampler.base_model
                self._tokenizer = get_tokenizer(tokenizer_id_for_model(base_model))
            return self._tokenizer

    def on_queue_state_change(self, queue_state: QueueState) -> None:
        """Warn (at most once a minute) while the server pauses this sampler's queue."""
        self._warn_paused(queue_state)


def _identity(value: T) -> T:
    return value


def _prompt_logprobs(response: types.SampleResponse) -> list[float | None]:
    if response.prompt_logprobs is None:
        raise ValueError("the sampler returned no prompt_logprobs")
    return list(response.prompt_logprobs)


def _check_sample_args(
    prompt: object,
    num_samples: object,
    sampling_params: object,
    include_prompt_logprobs: object,
    topk_prompt_logprobs: object,
) -> None:
    if not isinstance(prompt, types.ModelInput):
        raise TypeError(f"prompt must be a ModelInput, got {type(prompt).__name__}")
    if not isinstance(num_samples, int) or isinstance(num_samples, bool):
        raise TypeError(f"num_samples must be an int, got {num_samples!r}")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if not isinstance(sampling_params, types.SamplingParams):
        raise TypeError(
            f"sampling_params must be a SamplingParams, got {type(sampling_params).__name__}"
        )
    max_tokens = sampling_params.max_tokens
    if max_tokens is not None and max_tokens < 0:
        raise ValueError(f"sampling_params.max_tokens must be >= 0, got {max_tokens}")
    if not isinstance(include_prompt_logprobs, bool):
        raise TypeError(f"include_prompt_logprobs must be a bool, got {include_prompt_logprobs!r}")
    if (
        not isinstance(topk_prompt_logprobs, int)
        or isinstance(topk_prompt_logprobs, bool)
        or topk_prompt_logprobs < 0
    ):
        raise ValueError(f"topk_prompt_logprobs must be an int >= 0, got {topk_prompt_logprobs!r}")
