"""ServiceClient: the entry point. Holds a session and creates the other clients.

`ServiceClient()` reads TINKER_API_KEY / TINKER_BASE_URL / TINKER_PROJECT_ID (explicit
arguments win) and does no I/O: the session is created by the first call that needs one
(creating a training or sampling client, or reading `holder` / `session_id`), which blocks
while it is created. `base_url="local"` runs against the embedded server in this process and
needs no API key. Client creation returns at once an object that is the client, a Future of
it and awaitable (tinker._client_future). Use the ServiceClient as a context manager, or call
`close(status)`.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import functools
import logging
import os
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, Union

import requests.adapters

from tinker import _loopguard, types
from tinker import _twins as twins
from tinker import _validation as validation
from tinker._attribution import attribute_public_methods
from tinker._calls import ApiCall, set_fields
from tinker._futures import APIFuture, chain, completed, failed, reject, resolve
from tinker._loss_handle import LossHandle, PerDatumLossFn
from tinker._retry import SUBMIT, TRANSPORT, RetryConfig
from tinker._runtime import Runtime, RuntimeOptions, finish_status
from tinker._session import open_session, sessionless
from tinker._telemetry import Telemetry
from tinker._transport import Traffic
from tinker._validation import FinishStatus, NoTrainableLayersError
from tinker.config import ClientConfig
from tinker.metrics import MetricsSnapshot
from tinker.rest_client import RestClient
from tinker.sampling_client import (
    BackcompatSamplingClientFuture,
    open_sampling_client,
)
from tinker.training_client import BackcompatTrainingClientFuture, TrainingClient
from tinker.types._training import CONSOLE_URL

if TYPE_CHECKING:
    from tinker._loss_trace import TracedLoss

__all__ = ["CONSOLE_URL", "NoTrainableLayersError", "ServiceClient"]

logger = logging.getLogger(__name__)


# A requests adapter, or a function building one per kind of traffic.
HTTPAdapterSpec = Union[requests.adapters.BaseAdapter, Callable[[], requests.adapters.BaseAdapter]]
T = TypeVar("T")
_FIRST_USE_ADVICE = "create the first client before the loop starts or with asyncio.to_thread()"


@attribute_public_methods
class ServiceClient:
    """One session with a Tinker service (opened on first use); creates training, sampling and
    REST clients."""

    def __init__(
        self,
        user_metadata: dict[str, str] | None = None,
        project_id: str | None = None,
        *,
        display_name: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        default_headers_overrides: Mapping[str, str] | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        default_headers: Mapping[str, str] | None = None,
        config: ClientConfig | None = None,
        http_adapter: HTTPAdapterSpec | None = None,
        **options: Any,
    ) -> None:
        """Check the settings; no I/O. `options` are further ClientConfig fields.

        `project_id` (else TINKER_PROJECT_ID) and `display_name` label the session;
        `default_headers_overrides` are added to every request after `default_headers`.
        `config` gives a complete ClientConfig instead (then no other setting may be given).
        `http_adapter` is a requests transport adapter (or a function that builds one) mounted
        for all of this client's traffic: custom TLS, proxies, instrumentation or test doubles.
        It stays in this process: a client re-attached elsewhere uses the stock adapter.
        """
        self._metadata = validation.check_metadata(user_metadata)
        if project_id is None:
            project_id = os.environ.get("TINKER_PROJECT_ID") or None
        self._labels = validation.check_session_labels(project_id, display_name)
        headers = validation.check_header_overrides(default_headers, default_headers_overrides)
        explicit: dict[str, Any] = {
            "api_key": api_key,
            "base_url": base_url,
            "timeout": timeout,
            "max_retries": max_retries,
            "default_headers": headers,
            **options,
        }
        if config is None:
            config = ClientConfig.from_env(require_api_key=False, **explicit)
        elif any(value is not None for value in explicit.values()):
            raise TypeError("pass either config= or individual settings, not both")
        self._config = config
        self._runtime_options = None
        if http_adapter is not None:
            self._runtime_options = RuntimeOptions(
                http_adapter=validation.adapter_factory(http_adapter)
            )
        self._lock = threading.Lock()
        self._opening: APIFuture[Runtime] | None = None
        self._closed: APIFuture[None] | None = None
        self._loss_keys: set[str] = set()  # the custom losses created in this session

    # -- the session -----------------------------------------------------------------------

    @property
    def holder(self) -> Runtime:
        """The runtime of this client's session; the session is created on first use (this
        waits for it). After close() it is the closed runtime, if a session was created."""
        opening = self._opening if self._closed is not None else None
        opening = opening or self._opening_session()
        with _loopguard.calling("ServiceClient", _FIRST_USE_ADVICE):
            return opening.result()

    def _opening_session(self) -> APIFuture[Runtime]:
        """The session's runtime, future: the first call starts creating the session on a
        thread of its own, so that no caller waits for it unless it asks to."""
        with self._lock:
            if self._closed is not None:
                raise RuntimeError("ServiceClient is closed")
            if self._opening is None:
                self._config.check_api_key()
                self._opening = APIFuture()
                threading.Thread(
                    target=self._open, args=(self._opening,), name="tinker-open-session"
                ).start()
            return self._opening

    def _open(self, opening: APIFuture[Runtime]) -> None:
        try:
            runtime = open_session(
                self._config,
                user_metadata=self._metadata,
                options=self._runtime_options,
                labels=self._labels,
            )
        except BaseException as exc:
            reject(opening, exc)
            return
        logger.info("ServiceClient opened session %s", runtime.session_id)
        resolve(opening, runtime)

    def _start(self, fn: Callable[..., Any], *args: Any) -> APIFuture[Any]:
        """Run blocking work `fn(runtime, *args)` on the session's blocking pool once the
        session exists; returns at once. Work started earlier starts first."""
        return self._after_session(lambda runtime: runtime.spawn(fn, runtime, *args))

    def _after_session(self, then: Callable[[Runtime], APIFuture[T]]) -> APIFuture[T]:
        """`then(runtime)`'s future, called once the session exists, in the caller's context
        (the public method the requests it sends are attributed to)."""
        context = contextvars.copy_context()
        return chain(self._opening_session(), lambda runtime: context.run(then, runtime))

    def _session(self) -> Runtime | None:
        """The session's runtime if it has been created, else None (never waits)."""
        opening = self._opening
        if opening is None or not opening.done() or opening.exception() is not None:
            return None
        return opening.result()

    @property
    def project_id(self) -> str | None:
        """The project of the session and the destination of `copy_weights`."""
        return self._labels.get("project_id")

    @property
    def session_id(self) -> str:
        """The id of this client's session (creating the session if there is none yet)."""
        return self.holder.session_id

    def _sessionless(self) -> Runtime:
        """The runtime that REST-only calls use: the shared one without a session, or this
        client's session when it has its own http_adapter (which stays with its runtime)."""
        if self._runtime_options is not None:
            return self.holder
        self._config.check_api_key()
        return sessionless(self._config)

    def __repr__(self) -> str:
        runtime = self._session()
        session = runtime.session_id if runtime is not None else None
        return f"ServiceClient(session_id={session!r}, base_url={self._config.base_url!r})"

    def __enter__(self) -> ServiceClient:
        if self._closed is not None:
            raise RuntimeError("ServiceClient is closed")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        """Close with the block's outcome and wait for it, silently also inside a running event
        loop: a `with` block has no awaitable exit to suggest instead."""
        with _loopguard.required():
            self.close(finish_status(exc_type)).result()

    def close(self, status: FinishStatus = "success", detail: str | None = None) -> APIFuture[None]:
        """Finish the session on the server (if one was created) with `status` ("success",
        "errored" or "interrupted") and `detail`, and stop its background work.

        Returns a future that resolves once both are done; idempotent (a second call returns
        the first one's future). Called outside an event loop on a created session, it
        returns once it is done (a few seconds at most: one attempt to finish the session);
        inside an event loop, or while the session is still being created, it returns at once.
        Operations still pending fail instead of hanging; later calls that need the session
        raise RuntimeError("ServiceClient is closed").
        """
        reason = validation.check_finish(status, detail)
        with self._lock:
            if self._closed is not None:
                return self._closed
            opening = self._opening
            self._closed = done = APIFuture[None]()
        if opening is None:
            resolve(done, None)
        else:
            context = contextvars.copy_context()  # the finish is attributed to close()
            opening.add_done_callback(functools.partial(_close_opened, reason, done, context))
            if opening.done() and not _loopguard.in_event_loop():
                done.result()
        return done

    def get_telemetry(self) -> Telemetry | None:
        """The session's telemetry (None before the session exists, or when disabled)."""
        session = self._session()
        return session.telemetry if session is not None else None

    def metrics(self) -> MetricsSnapshot:
        """What this session's requests did so far in this process (opening the session if
        there is none yet), with the REST calls made without a session (counted per server
        and API key): per endpoint, retries by cause, queue states; see tinker.metrics."""
        session = self.holder.metrics.snapshot()
        rest = self._sessionless()
        return session if rest is self.holder else session + rest.metrics.snapshot()

    def get_console_url(self) -> str:
        """The web console page of this session (of all sessions before it exists); no request."""
        session = self._session()
        if session is None:
            return f"{CONSOLE_URL}/sessions"
        return f"{CONSOLE_URL}/sessions/{urllib.parse.quote(session.session_id, safe='')}"

    # -- REST on no session ----------------------------------------------------------------

    @twins.blocking
    def get_server_capabilities(self) -> types.GetServerCapabilitiesResponse:
        """The models this service can train and sample (blocks; retried for up to 5 min)."""
        return self.create_rest_client().get_server_capabilities().result()

    get_server_capabilities_async = twins.offloaded(get_server_capabilities)

    def create_rest_client(self) -> RestClient:
        """A RestClient for the same service and API key (no session, no network call)."""
        return RestClient(self._sessionless())

    def copy_weights(
        self,
        path: str,
        *,
        ttl_seconds: int | None = None,
        weights_access_token: str | None = None,
    ) -> APIFuture[str]:
        """Copy the checkpoint `path` into this client's project (`project_id`, else
        TINKER_PROJECT_ID; ValueError if neither is set); the future's value is the copy's
        `tinker://` path."""
        return self.create_rest_client().copy_weights(
            path,
            self.project_id,
            ttl_seconds=ttl_seconds,
            weights_access_token=weights_access_token,
        )

    # -- training clients ------------------------------------------------------------------

    def create_lora_training_client(
        self,
        base_model: str,
        rank: int = 32,
        seed: int | None = None,
        train_mlp: bool = True,
        train_attn: bool = True,
        train_unembed: bool = True,
        user_metadata: dict[str, str] | None = None,
        optimizer: types.OptimizerConfig | None = None,
    ) -> BackcompatTrainingClientFuture:
        """A TrainingClient on a new LoRA adapter of `base_model`; returns at once.

        `rank`: the LoRA rank (>= 1); `seed`: the adapter's initialisation seed (None: the
        server picks); `train_mlp`, `train_attn`, `train_unembed`: which layer groups get an
        adapter (at least one must be True, else NoTrainableLayersError); `user_metadata`:
        str to str, stored with the training run; `optimizer`: AdamOptimizerConfig (the
        default) or DimuonOptimizerConfig, fixed for the run. Raises TypeError/ValueError for a bad
        argument before anything is sent. The returned object is the client (its methods
        wait for the model), a Future of it (`.result()`) and awaitable.
        """
        flags = {"train_mlp": train_mlp, "train_attn": train_attn, "train_unembed": train_unembed}
        validation.check_lora_args(base_model, rank, seed, flags)
        metadata = validation.check_metadata(user_metadata)
        optimizer_config = validation.check_optimizer_config(optimizer)
        work = self._after_session(
            lambda runtime: runtime.spawn(
                _create_model,
                runtime,
                runtime.next_model_seq_id(),  # taken in call order, before the work runs
                base_model,
                rank,
                seed,
                flags,
                metadata,
                optimizer_config,
            ),
        )
        return BackcompatTrainingClientFuture(work)

    create_lora_training_client_async = twins.awaiting(
        create_lora_training_client, returns="TrainingClient"
    )

    def create_training_client_from_state(
        self,
        path: str,
        base_model: str | None = None,
        user_metadata: dict[str, str] | None = None,
        weights_access_token: str | None = None,
        optimizer: types.OptimizerConfig | None = None,
    ) -> BackcompatTrainingClientFuture:
        """A TrainingClient on a new LoRA adapter initialised with the weights (not the
        optimizer state) of the `tinker://.../weights/...` checkpoint `path`; the adapter
        takes the checkpoint's base model (or `base_model`, which must be compatible), rank
        and trained layer groups. `weights_access_token` opens another account's checkpoint.
        `optimizer` chooses the optimizer that restarts (default Adam). Returns at once (see
        create_lora_training_client)."""
        optimizer_config = validation.check_optimizer_config(optimizer)
        return self._from_state(
            path, base_model, user_metadata, weights_access_token, False, optimizer_config
        )

    create_training_client_from_state_async = twins.awaiting(
        create_training_client_from_state, returns="TrainingClient"
    )

    def create_training_client_from_state_with_optimizer(
        self,
        path: str,
        base_model: str | None = None,
        user_metadata: dict[str, str] | None = None,
        weights_access_token: str | None = None,
    ) -> BackcompatTrainingClientFuture:
        """Like `create_training_client_from_state`, also resuming the optimizer state (and its
        kind)."""
        return self._from_state(path, base_model, user_metadata, weights_access_token, True, None)

    create_training_client_from_state_with_optimizer_async = twins.awaiting(
        create_training_client_from_state_with_optimizer, returns="TrainingClient"
    )

    def _from_state(
        self,
        path: str,
        base_model: str | None,
        user_metadata: dict[str, str] | None,
        weights_access_token: str | None,
        optimizer: bool,
        optimizer_config: types.OptimizerConfigBase | None,
    ) -> BackcompatTrainingClientFuture:
        if isinstance(base_model, Mapping) and user_metadata is None:
            # 0.5.1 took user_metadata second: `(path, {"k": "v"})` still means metadata.
            base_model, user_metadata = None, dict(base_model)
        source = validation.StateSource(
            path=validation.check_tinker_path(path),
            base_model=validation.check_optional_str(base_model, "base_model"),
            weights_access_token=validation.check_optional_str(
                weights_access_token, "weights_access_token"
            ),
            optimizer=optimizer,
            optimizer_config=optimizer_config,
        )
        metadata = validation.check_metadata(user_metadata)
        work = self._start(_create_from_state, source, metadata)
        return BackcompatTrainingClientFuture(work)

    # -- sampling clients ------------------------------------------------------------------

    def create_sampling_client(
        self,
        model_path: str | None = None,
        base_model: str | None = None,
        retry_config: RetryConfig | None = None,
        record_stability_info: bool = False,
    ) -> BackcompatSamplingClientFuture:
        """A SamplingClient on saved sampler weights (`model_path`, a `tinker://` path) or on
        a base model; returns at once (the client, a Future of it and awaitable).
        `retry_config` sets its sample-level retries; with `record_stability_info` its
        samples record what stable_reinforce training needs."""
        model_path, base_model = validation.check_sampler_source(
            model_path, base_model, retry_config
        )
        stability = validation.check_flag(record_stability_info, "record_stability_info")
        work = self._start(open_sampling_client, model_path, base_model, retry_config, stability)
        return BackcompatSamplingClientFuture(work)

    create_sampling_client_async = twins.awaiting(create_sampling_client, returns="SamplingClient")

    # -- custom losses ---------------------------------------------------------------------

    def create_custom_loss(
        self, fn: PerDatumLossFn, input_ranks: Mapping[str, types.CustomLossInputRank]
    ) -> APIFuture[LossHandle]:
        """A LossHandle for `fn(logprobs, *inputs) -> (loss, metrics)`, a loss computed once
        per datum and summed, for `TrainingClient.forward_backward_custom` (alpha).

        `logprobs` are the datum's target-token logprobs, shaped like its target_tokens; each
        further parameter names a loss_fn_inputs key it reads. `input_ranks` gives every
        parameter's rank (0 scalar, 1 [T], 2 [T, K]; logprobs 1 or 2). `metrics` maps
        `custom/<name>:sum` or `custom/<name>:mean` keys to scalar tensors (added up or
        averaged over datums). `fn` is traced with torch.fx now: ValueError here if it cannot
        be, or uses anything but torch, math and operator functions and tensor methods
        (torch.nn modules, tensors from outside, item/numpy/tolist/backward), or returns
        anything but a scalar loss and such metrics; ImportError without torch.

        Returns at once a future of the handle. When the server runs custom losses the graph
        is uploaded and the handle gets its `loss_id`; otherwise the loss runs on the client.
        The same loss (same graph and inputs) is created once per session: a second creation
        fails with ValueError, and the first handle is to be reused.
        """
        from tinker._loss_trace import trace_loss

        traced = trace_loss(fn, input_ranks)
        return self._after_session(lambda runtime: self._create_loss(runtime, traced))

    create_custom_loss_async = twins.awaiting(create_custom_loss)

    def _create_loss(self, runtime: Runtime, traced: TracedLoss) -> APIFuture[LossHandle]:
        """Once the session exists (in call order): claim the loss's key in this session, then
        upload it (taking the next custom_loss_seq_id) or keep it on the client."""
        with self._lock:
            if traced.key in self._loss_keys:
                return failed(
                    ValueError(
                        f"create_custom_loss({traced.name}): this loss (the same graph and "
                        "inputs) was already created in this session; reuse its LossHandle"
                    )
                )
            self._loss_keys.add(traced.key)
        if not runtime.server.custom_loss_server_side:
            return completed(
                LossHandle(traced.name, traced.inputs, runtime.session_id, traced.module)
            )
        created = runtime.spawn(_upload_loss, runtime, runtime.next_custom_loss_seq_id(), traced)
        created.add_done_callback(functools.partial(self._forget_if_failed, traced.key))
        return created

    def _forget_if_failed(self, key: str, created: concurrent.futures.Future[Any]) -> None:
        """A failed upload does not count: the same loss may be created again."""
        if created.cancelled() or created.exception() is not None:
            with self._lock:
                self._loss_keys.discard(key)


def _close_opened(
    reason: types.SessionFinishRequest,
    done: APIFuture[None],
    context: contextvars.Context,
    opening: APIFuture[Runtime],
) -> None:
    """Once the session exists (or failed to), finish and close it on a thread of its own,
    in `context`."""
    if opening.exception() is not None:
        resolve(done, None)
        return
    worker = threading.Thread(
        target=context.run,
        args=(_finish_and_close, opening.result(), reason, done),
        name="tinker-close",
    )
    worker.start()


def _finish_and_close(
    runtime: Runtime, reason: types.SessionFinishRequest, done: APIFuture[None]
) -> None:
    """Close the runtime, which fails what is pending and then finishes the session on a 0.38
    server (one bounded attempt); resolve `done` either way."""
    try:
        runtime.close_with(reason)
    finally:
        resolve(done, None)


def _upload_loss(runtime: Runtime, seq_id: int, traced: TracedLoss) -> LossHandle:
    """Send the traced graph with create_custom_loss and wait for its loss_id (blocking)."""
    request = types.CreateCustomLossRequest(
        session_id=runtime.session_id,
        custom_loss_seq_id=seq_id,
        name=traced.name,
        inputs=list(traced.inputs),
        graph=traced.graph,
    )
    created: types.CreateCustomLossResponse = runtime.call(
        ApiCall(
            traffic=Traffic.TRAIN,
            method="POST",
            path="/api/v1/create_custom_loss",
            body=request,
            result=types.CreateCustomLossResponse,
            retry=SUBMIT,
            poll_as="CreateCustomLoss",
        )
    )
    return LossHandle(
        traced.name, traced.inputs, runtime.session_id, traced.module, loss_id=created.loss_id
    )


def _create_model(
    runtime: Runtime,
    model_seq_id: int,
    base_model: str,
    rank: int,
    seed: int | None,
    flags: Mapping[str, bool],
    metadata: dict[str, str] | None,
    optimizer_config: types.OptimizerConfigBase | None = None,
) -> TrainingClient:
    """Create the model (blocking, on the runtime's blocking pool) and its client."""
    request = types.CreateModelRequest(
        session_id=runtime.session_id,
        model_seq_id=model_seq_id,
        base_model=base_model,
        user_metadata=metadata,
        lora_config=types.LoraConfig(
            rank=rank,
            seed=seed,
            train_unembed=flags["train_unembed"],
            train_mlp=flags["train_mlp"],
            train_attn=flags["train_attn"],
        ),
        **set_fields(optimizer_config=optimizer_config),
    )
    created: types.CreateModelResponse = runtime.call(
        ApiCall(
            traffic=Traffic.TRAIN,
            method="POST",
            path="/api/v1/create_model",
            body=request,
            result=types.CreateModelResponse,
            retry=TRANSPORT,
            poll_as="CreateModel",
        )
    )
    client = TrainingClient(runtime, created.model_id, model_seq_id=model_seq_id)
    client.get_info()  # cached: get_info() and get_tokenizer() send nothing later
    return client


def _create_from_state(
    runtime: Runtime, source: validation.StateSource, metadata: dict[str, str] | None
) -> TrainingClient:
    """A new model shaped like the checkpoint, then the checkpoint loaded into it (blocking):
    one create-via-load `load_weights` on a 0.38 server, else weights_info, create_model and
    load_weights."""
    if runtime.server.current:
        return _load_as_new_model(runtime, source, metadata)
    info = RestClient(runtime).get_weights_info_by_tinker_path(source.path).result()
    if not info.is_lora or info.lora_rank is None:
        raise ValueError(f"{source.path} is not a LoRA checkpoint; only LoRA runs can be resumed")
    flags = {
        name: value if isinstance(value := getattr(info, name, None), bool) else True
        for name in ("train_mlp", "train_attn", "train_unembed")
    }
    base_model = source.base_model or info.base_model
    validation.check_lora_args(base_model, info.lora_rank, None, flags)
    # Resuming the optimizer state resumes its kind too; else the one asked for (or Adam).
    optimizer_config = info.optimizer_config if source.optimizer else source.optimizer_config
    model_seq_id = runtime.next_model_seq_id()
    training = _create_model(
        runtime, model_seq_id, base_model, info.lora_rank, None, flags, metadata, optimizer_config
    )
    training._load(source.path, source.optimizer, source.weights_access_token).result()
    return training


def _load_as_new_model(
    runtime: Runtime, source: validation.StateSource, metadata: dict[str, str] | None
) -> TrainingClient:
    """Today's protocol: one load_weights creates the model from the checkpoint; its id is
    `<session_id>:train:<model_seq_id>` and the load is its first operation."""
    model_seq_id = runtime.next_model_seq_id()
    body: dict[str, Any] = {
        "session_id": runtime.session_id,
        "model_seq_id": model_seq_id,
        "path": source.path,
        "optimizer": source.optimizer,
        "type": "load_weights",
        **set_fields(
            base_model=source.base_model,
            user_metadata=metadata,
            optimizer_config=None if source.optimizer else source.optimizer_config,
            weights_access_token=source.weights_access_token,
        ),
    }
    runtime.call(
        ApiCall(
            traffic=Traffic.TRAIN,
            method="POST",
            path="/api/v1/load_weights",
            body=body,
            result=types.LoadWeightsResponse,
            retry=SUBMIT,
            poll_as="LoadWeights",
        )
    )
    model_id = f"{runtime.session_id}:train:{model_seq_id}"
    client = TrainingClient(runtime, model_id, model_seq_id=model_seq_id)
    client.get_info()  # the server expects it right after the model exists; cached after
    return client
