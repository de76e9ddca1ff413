"""TrainingClient: forward/backward passes, optimizer steps and checkpoints of one LoRA model.

Every training operation takes its sequence number(s) in the caller's thread when it is called
and goes out through the model's ordered lane, so the server sees operations in call order
while their results are polled concurrently. Operations return an APIFuture at once; their
`*_async` twins return it once the request is on the server.

The path of one `forward_backward(data, "cross_entropy")`, top to bottom:
`_validation.check_batch` (caller's thread) -> chunks of at most 128 datums
(`_chunking.chunk_data`) -> one ApiCall per chunk, built with its reserved seq_id (`_queue`)
-> the lane sends them in order (`_lanes`) -> the runtime's CallRunner encodes each body
(`_wire`) and POSTs it under the SUBMIT retry policy (`_calls`, `_retry`, `_transport`) -> the
request id goes to the poller (`_poller`) -> each polled result is decoded into a
ForwardBackwardOutput -> the chunk results are merged (`_chunking.merge_outputs`) -> the
APIFuture resolves.

A TrainingClient pickles to a `TrainingHandle` that re-attaches to the same session and model
in another process, and hands its operations over: the copy continues the seq ids, and the
original refuses new operations (two clients numbering one model's operations would collide).
Its pending operations still complete.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import threading
import urllib.parse
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import attrs

from tinker import _loopguard, types
from tinker import _twins as twins
from tinker import _validation as validation
from tinker._calls import ApiCall, set_fields
from tinker._chunking import MAX_CHUNK_LEN, MAX_CHUNK_NUMBER_COUNT, chunk_data, merge_outputs
from tinker._client_future import ClientFuture, forwarding
from tinker._futures import APIFuture, chain, combine, flatten, queued, transform
from tinker._loss_handle import LossHandle, check_session
from tinker._loss_handle import batch_loss as handle_batch_loss
from tinker._loss_handle import check_batch as check_handle_batch
from tinker._loss_trace import import_torch
from tinker._poller import QueuePauseWarner, QueueState, QueueStateObserver
from tinker._regularizers import Regularizer, check_regularizers
from tinker._retry import SUBMIT, TRANSPORT, RetryConfig
from tinker._runtime import ClientBase, Runtime
from tinker._session import attach
from tinker._transport import Traffic
from tinker.config import LEGACY_SERVER, ClientConfig, ServerConfig
from tinker.tokenizer import Tokenizer, get_tokenizer, tokenizer_id_for_model
from tinker.types._training import CONSOLE_URL

if TYPE_CHECKING:
    from tinker.sampling_client import BackcompatSamplingClientFuture, SamplingClient

__all__ = [
    "CONSOLE_URL",
    "MAX_CHUNK_LEN",
    "MAX_CHUNK_NUMBER_COUNT",
    "BackcompatTrainingClientFuture",
    "CustomLossFnV1",
    "TrainingClient",
    "TrainingHandle",
]


# A custom loss: fn(data, logprobs) -> (loss, metrics) with torch, or (loss, metrics, grads).
CustomLossFnV1 = Callable[[list[Any], list[Any]], tuple[Any, ...]]

logger = logging.getLogger(__name__)


@attrs.frozen
class TrainingHandle:
    """Everything needed to re-attach a TrainingClient in another process: the session, the
    model and the seq id its operations continue from (the config carries the API key)."""

    config: ClientConfig
    session_id: str
    model_id: str
    model_seq_id: int | None
    next_seq_id: int
    server: ServerConfig = LEGACY_SERVER
    info: types.GetInfoResponse | None = None


def _reattach(handle: TrainingHandle) -> TrainingClient:
    return TrainingClient(
        attach(handle.config, handle.session_id, server=handle.server),
        handle.model_id,
        model_seq_id=handle.model_seq_id,
        info=handle.info,
        first_seq_id=handle.next_seq_id,
    )


class TrainingClient(ClientBase, QueueStateObserver):
    """A handle on one LoRA training run (`model_id`), made by ServiceClient."""

    def __init__(
        self,
        runtime: Runtime,
        model_id: str,
        *,
        model_seq_id: int | None = None,
        info: types.GetInfoResponse | None = None,
        first_seq_id: int = 1,
    ):
        super().__init__(runtime)
        self.model_id = model_id
        self.model_seq_id = model_seq_id
        self._lane = runtime.lane(first_seq_id)
        self._warn_paused = QueuePauseWarner(
            f"Training is paused for {model_id}.", "concurrent models rate limit hit"
        )
        self._tokenizer: Tokenizer | None = None
        self._tokenizer_lock = threading.Lock()
        self._info = info

    def __repr__(self) -> str:
        return f"TrainingClient(model_id={self.model_id!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_reattach, (self.handle(),))

    def handle(self) -> TrainingHandle:
        """Hand this client's operations over to the copy `handle` re-attaches (pickling does
        this): from now on this client refuses new operations; pending ones still complete."""
        next_seq_id = self._lane.hand_over(
            f"this TrainingClient of {self.model_id} was pickled, which handed its operations "
            "over to the unpickled copy; call the copy (or pickle it again to move it on)"
        )
        return TrainingHandle(
            config=self._runtime.portable_config(),
            session_id=self._runtime.session_id,
            model_id=self.model_id,
            model_seq_id=self.model_seq_id,
            next_seq_id=next_seq_id,
            server=self._runtime.server,
            info=self._info,
        )

    # -- forward passes ----------------------------------------------------------------------

    def forward(
        self,
        data: list[types.Datum],
        loss_fn: types.LossFnType,
        loss_fn_config: Mapping[str, float | str] | None = None,
    ) -> APIFuture[types.ForwardBackwardOutput]:
        """The loss and per-token outputs of `data`, without gradients.

        Takes the same arguments and returns the same output as `forward_backward` (see
        there), leaves the accumulated gradients untouched, and runs after every operation
        called before it (an earlier optim_step included). Returns its future at once.
        """
        return self._runtime.operation(
            self._forward_like(data, loss_fn, loss_fn_config, backward=False)
        )

    forward_async = twins.once_submitted(forward)

    def forward_backward(
        self,
        data: list[types.Datum],
        loss_fn: types.LossFnType,
        loss_fn_config: Mapping[str, float | str] | None = None,
    ) -> APIFuture[types.ForwardBackwardOutput]:
        """The loss and per-token outputs of `data`; the gradients are added to the model's.

        `data`: the examples; in each Datum, `loss_fn_inputs` has one entry per token of
        `model_input` under the keys `loss_fn` takes:
        - "cross_entropy": `target_tokens` (int64) and `weights` (float32); the loss is
          -sum(weights * logprob of the target);
        - "importance_sampling", "ppo", "cispo", "dro": `target_tokens`, `logprobs` (the
          sampler's, float32) and `advantages` (float32); `weights` is accepted and unused.
        `loss_fn_config`: float settings of the loss (ppo and cispo: `clip_low_threshold`,
        `clip_high_threshold`; dro: `beta`).

        Losses are sums over tokens and datums. Gradients accumulate over calls until
        `optim_step`. Batches over 128 datums (or 500,000 numbers; on a server of today's
        protocol, the limits its config gives) go out as several requests in order, and their
        results are merged: outputs concatenated, metrics combined by the
        reduction after their ':' (`loss:sum` is summed, `*:mean` weighted by the outputs of
        each chunk, `*:unique` kept per chunk as `key`, `key_1`, ...).

        Returns at once a future of a ForwardBackwardOutput: `loss_fn_outputs` has per datum
        `logprobs` and `elementwise_loss` (TensorData, one value per token), `metrics` has
        `loss:sum` and the server's counters. Raises TypeError/ValueError in the caller's
        thread, with nothing sent, for a bad argument (an empty `data`: "No data provided",
        an unknown loss, a missing or unexpected input key, a wrong dtype or length, a NaN);
        the future fails with the service's error (e.g. RequestFailedError).
        """
        return self._runtime.operation(
            self._forward_like(data, loss_fn, loss_fn_config, backward=True)
        )

    forward_backward_async = twins.once_submitted(forward_backward)

    def _forward_like(
        self,
        data: object,
        loss_fn: object,
        loss_fn_config: object,
        *,
        backward: bool,
        seq_ids: list[int] | None = None,
    ) -> APIFuture[types.ForwardBackwardOutput]:
        """Chunk a checked batch and queue one request per chunk (under `seq_ids` when they
        were reserved earlier, one per chunk)."""
        batch, loss, config = validation.check_batch(data, loss_fn, loss_fn_config)
        chunks = [
            types.ForwardBackwardInput(data=chunk, loss_fn=loss, loss_fn_config=config)
            for chunk in chunk_data(batch, limits=self._runtime.chunk_limits)
        ]
        call = self._forward_backward_call if backward else self._forward_call
        builders = [functools.partial(call, chunk) for chunk in chunks]
        submits = self._queue(builders, seq_ids)
        results = [flatten(submit) for submit in submits]
        return queued(combine(results, _merge_chunk_results), submits)

    def _forward_backward_call(self, chunk: types.ForwardBackwardInput, seq_id: int) -> ApiCall:
        body = types.ForwardBackwardRequest(
            forward_backward_input=chunk, model_id=self.model_id, seq_id=seq_id
        )
        return self._call(
            "/api/v1/forward_backward", "ForwardBackward", body, types.ForwardBackwardOutput
        )

    def _forward_call(self, chunk: types.ForwardBackwardInput, seq_id: int) -> ApiCall:
        body = types.ForwardRequest(forward_input=chunk, model_id=self.model_id, seq_id=seq_id)
        return self._call("/api/v1/forward", "Forward", body, types.ForwardBackwardOutput)

    def forward_backward_custom(
        self,
        data: list[types.Datum],
        loss_fn: CustomLossFnV1 | LossHandle,
        *,
        loss_type_input: Literal["logprobs"] | None = None,
        regularizers: Sequence[Regularizer] | None = None,
    ) -> APIFuture[types.ForwardBackwardOutput]:
        """A backward pass of a custom loss: a LossHandle, or a loss computed here through a
        linear surrogate.

        A `LossHandle` (from `ServiceClient.create_custom_loss` in this client's session, else
        ValueError) needs torch. Every datum must have target_tokens and each input the loss
        reads, with its declared rank (ValueError here otherwise). A handle with a `loss_id`
        runs on the server: one `forward_backward(data, "custom", {"loss_id": ...})`. One
        without (or any handle given `regularizers`) runs per datum here, as described next.

        `loss_fn(data, logprobs)` gets the per-token target logprobs of each datum (from a
        `forward` with cross_entropy). With torch it returns `(loss_tensor, metrics)`; a numpy
        loss (no torch, or marked with `tinker.lib.custom_loss.numpy_loss`) returns
        `(loss: float, metrics: dict[str, float], grads: list[np.ndarray])` with grads[i] =
        dloss/dlogprobs[i]. The backward pass is a cross_entropy one with weights = -grads,
        whose gradient is exactly the user loss's. Every datum needs `target_tokens`.

        `regularizers`: `tinker.lib.custom_loss.Regularizer(name, fn, weight)` terms, written
        like `loss_fn`, evaluated in parallel with it; the gradient is that of
        loss + sum(weight * regularizer), and the metrics report each one as
        `regularizer/<name>:value`, `:contribution` and `:grad_norm` (`base_loss:sum` is the
        loss alone). Bad regularizers (not callable, a negative or NaN weight, a name given
        twice) raise TypeError/ValueError here, before anything is sent.

        `loss_type_input` is deprecated (DeprecationWarning): the loss always receives
        logprobs, and any other value than "logprobs" is a ValueError.

        Returns at once: the forward and the backward pass take their places in the training
        order now, and the loss is computed on the SDK's blocking pool when the forward's
        result arrives. The future's metrics carry the user's loss as `loss:sum`, the server's
        surrogate as `surrogate_loss:sum`, and the user's metrics.
        """
        _check_loss_type_input(loss_type_input)
        if isinstance(loss_fn, LossHandle):
            handle = loss_fn
            import_torch("forward_backward_custom with a LossHandle")
            check_session(handle, self._runtime.session_id)
            check_handle_batch(handle, validation.check_data(data))
            if handle.loss_id is not None and not regularizers:
                return self.forward_backward(data, "custom", {"loss_id": handle.loss_id})
            loss_fn = handle_batch_loss(handle)
        batch = validation.check_custom_batch(data, loss_fn)
        terms = check_regularizers(regularizers)
        views = [_forward_view(d) for d in batch]
        forward = self.forward(views, "cross_entropy")
        backward_ids = self._lane.reserve(len(chunk_data(views, limits=self._runtime.chunk_limits)))
        runtime = self._runtime
        backward = chain(
            forward,
            lambda output: runtime.spawn(
                self._custom_backward, batch, loss_fn, terms, output, backward_ids
            ),
        )
        result = runtime.operation(queued(flatten(backward), forward._submits))
        result.add_done_callback(self._poison_if_failed)
        return result

    def _poison_if_failed(self, result: concurrent.futures.Future[Any]) -> None:
        """A custom loss that failed anywhere (forward pass, loss, backward pass) or was
        cancelled poisons the client."""
        if result.cancelled():
            self._poison(concurrent.futures.CancelledError("forward_backward_custom was cancelled"))
        elif (exc := result.exception()) is not None:
            self._poison(exc)

    def _poison(self, cause: BaseException) -> None:
        """Fail every queued and later training request of this client: the seq ids reserved
        for a custom loss's backward pass will never be sent, and the server holds every later
        request back until they are."""
        error = RuntimeError(
            f"this TrainingClient is poisoned: a previous custom loss (forward_backward_custom) "
            f"failed ({type(cause).__name__}: {cause}), so no later training request of "
            f"{self.model_id} can run; create a new TrainingClient (from your last saved "
            f"state to continue)"
        )
        error.__cause__ = cause
        self._lane.poison(error)

    def _custom_backward(
        self,
        batch: list[types.Datum],
        loss_fn: CustomLossFnV1,
        terms: Sequence[Regularizer],
        forward: types.ForwardBackwardOutput,
        seq_ids: list[int],
    ) -> APIFuture[types.ForwardBackwardOutput]:
        """Evaluate the loss on the forward's logprobs and queue the surrogate backward pass
        under the seq ids reserved for it (any failure poisons the client, through the
        result's future)."""
        if (poison := self._lane.poison_error) is not None:  # e.g. the caller cancelled
            raise poison
        # numpy and the loss machinery load here: a sampling-only program never pays them.
        import numpy as np

        from tinker._custom_loss import evaluate_objective

        logprobs = [
            np.asarray(output["logprobs"].to_numpy(), dtype=np.float32).reshape(-1)
            for output in forward.loss_fn_outputs
        ]
        evaluated = evaluate_objective(loss_fn, terms, batch, logprobs)
        linear = [
            _cross_entropy_datum(datum, types.TensorData.from_numpy(-grad))
            for datum, grad in zip(batch, evaluated.grads, strict=True)
        ]

        def with_user_loss(output: types.ForwardBackwardOutput) -> types.ForwardBackwardOutput:
            metrics = dict(output.metrics)
            if "loss:sum" in metrics:
                metrics["surrogate_loss:sum"] = metrics["loss:sum"]
            metrics["loss:sum"] = evaluated.loss
            metrics.update(evaluated.metrics)
            return types.ForwardBackwardOutput(
                loss_fn_output_type=output.loss_fn_output_type,
                loss_fn_outputs=output.loss_fn_outputs,
                metrics=metrics,
            )

        backward = self._forward_like(linear, "cross_entropy", None, backward=True, seq_ids=seq_ids)
        return transform(backward, with_user_loss)

    forward_backward_custom_async = twins.once_submitted(forward_backward_custom)

    # -- optimizer and checkpoints -----------------------------------------------------------

    def optim_step(
        self,
        optim_params: types.OptimParams | None = None,
        *,
        adam_params: types.AdamParams | None = None,
    ) -> APIFuture[types.OptimStepResponse]:
        """Apply the accumulated gradients with the run's optimizer and zero them, after every
        earlier operation. `optim_params`: AdamParams for an Adam run (the default), or the
        params of the optimizer chosen at creation (DimuonParams, ...); `adam_params=` is the
        0.5.1 keyword for the same. Only the fields you set are sent.

        Raises in the caller's thread: ValueError for both arguments, params of another
        optimizer than the run's, a NaN, infinite or negative setting, or a beta outside
        [0, 1); TypeError for neither. Returns at once a future of an OptimStepResponse.
        """
        params = validation.check_optim_params(optim_params, adam_params, self._optimizer_type())
        return self._queue_one(
            lambda seq_id: self._call(
                "/api/v1/optim_step",
                "OptimStep",
                types.OptimStepRequest(optim_params=params, model_id=self.model_id, seq_id=seq_id),
                types.OptimStepResponse,
            )
        )

    def _optimizer_type(self) -> str:
        """The optimizer family of this run ("adamw", "dimuon", ...), known since creation."""
        config = self._get_info(retry=True).optimizer_config
        return config.type if config is not None else "adamw"

    optim_step_async = twins.once_submitted(optim_step)

    def save_state(
        self,
        name: str,
        ttl_seconds: int | None = None,
        overwrite: bool = False,
        user_metadata: dict[str, str] | None = None,
    ) -> APIFuture[types.SaveWeightsResponse]:
        """Save the weights and optimizer state as `tinker://<model_id>/weights/<name>`.

        `name`: non-empty, without '/'; `ttl_seconds`: a positive lifetime, or None to keep it;
        `overwrite=True` replaces a checkpoint of the same name, metadata included;
        `user_metadata`: str to str, kept with the checkpoint. Returns at once a future of a
        SaveWeightsResponse (its `path`).
        """
        validation.check_name(name, "name")
        fields = set_fields(
            ttl_seconds=validation.check_ttl(ttl_seconds),
            overwrite=validation.check_flag(overwrite, "overwrite") or None,
            user_metadata=validation.check_metadata(user_metadata),
        )
        return self._queue_one(
            lambda seq_id: self._call(
                "/api/v1/save_weights",
                "SaveWeights",
                types.SaveWeightsRequest(
                    model_id=self.model_id, path=name, seq_id=seq_id, **fields
                ),
                types.SaveWeightsResponse,
            )
        )

    save_state_async = twins.once_submitted(save_state)

    def load_state(
        self, path: str, weights_access_token: str | None = None
    ) -> APIFuture[types.LoadWeightsResponse]:
        """Load the weights (not the optimizer state) of a `tinker://.../weights/...` checkpoint;
        `weights_access_token` opens another account's checkpoint.

        Returns at once a future of a LoadWeightsResponse.
        """
        return self._load(path, False, weights_access_token)

    load_state_async = twins.once_submitted(load_state)

    def load_state_with_optimizer(
        self, path: str, weights_access_token: str | None = None
    ) -> APIFuture[types.LoadWeightsResponse]:
        """Load the weights and the optimizer state of a `tinker://.../weights/...` checkpoint.

        Returns at once a future of a LoadWeightsResponse.
        """
        return self._load(path, True, weights_access_token)

    load_state_with_optimizer_async = twins.once_submitted(load_state_with_optimizer)

    def _load(
        self, path: str, optimizer: bool, weights_access_token: str | None
    ) -> APIFuture[types.LoadWeightsResponse]:
        validation.check_tinker_path(path)
        token = validation.check_optional_str(weights_access_token, "weights_access_token")
        return self._queue_one(
            lambda seq_id: self._call(
                "/api/v1/load_weights",
                "LoadWeights",
                types.LoadWeightsRequest(
                    model_id=self.model_id,
                    path=path,
                    optimizer=optimizer,
                    seq_id=seq_id,
                    **set_fields(weights_access_token=token),
                ),
                types.LoadWeightsResponse,
            )
        )

    def save_weights_for_sampler(
        self,
        name: str,
        ttl_seconds: int | None = None,
        user_metadata: dict[str, str] | None = None,
    ) -> APIFuture[types.SaveWeightsForSamplerResponse]:
        """Save the weights for sampling as `tinker://<model_id>/sampler_weights/<name>`.

        `name`: non-empty, without '/'; `ttl_seconds`: a positive lifetime, or None to keep it;
        `user_metadata`: str to str, kept with the checkpoint. Returns at once a future of a
        SaveWeightsForSamplerResponse (its `path`, which `create_sampling_client` takes).
        """
        validation.check_name(name, "name")
        fields = set_fields(
            ttl_seconds=validation.check_ttl(ttl_seconds),
            user_metadata=validation.check_metadata(user_metadata),
        )
        return self._queue_one(
            lambda seq_id: self._call(
                "/api/v1/save_weights_for_sampler",
                "SaveWeightsForSampler",
                types.SaveWeightsForSamplerRequest(
                    model_id=self.model_id, path=name, seq_id=seq_id, **fields
                ),
                types.SaveWeightsForSamplerResponseInternal,
            ),
            _sampler_path,
        )

    save_weights_for_sampler_async = twins.once_submitted(save_weights_for_sampler)

    def save_weights_external(
        self,
        name: str,
        ttl_seconds: int | None = None,
        age_encryption_recipients: list[str] | None = None,
    ) -> APIFuture[types.SaveWeightsExternalResponse]:
        """Export the weights in an external (Hugging Face PEFT) format as
        `tinker://<model_id>/external_weights/<name>`; RestClient.get_external_weights_urls
        lists its files. With `age_encryption_recipients` (1 to 10 `age1...` or SSH public
        keys) every file is age-encrypted. Returns at once a future of its path."""
        validation.check_name(name, "name")
        fields = set_fields(
            ttl_seconds=validation.check_ttl(ttl_seconds),
            age_encryption_recipients=validation.check_recipients(age_encryption_recipients),
        )
        return self._queue_one(
            lambda seq_id: self._call(
                "/api/v1/save_weights_external",
                "SaveWeightsExternal",
                types.SaveWeightsExternalRequest(
                    model_id=self.model_id, path=name, seq_id=seq_id, **fields
                ),
                types.SaveWeightsExternalResponseInternal,
            ),
            _external_path,
        )

    save_weights_external_async = twins.once_submitted(save_weights_external)

    def save_weights_and_get_sampling_client_submit(
        self,
        retry_config: RetryConfig | None = None,
        *,
        record_stability_info: bool = False,
        kind: types.SamplingClientKind = "snapshot",
    ) -> APIFuture[SamplingClient]:
        """Snapshot the current weights into an ephemeral sampler; returns a future at once.

        The future resolves to a SamplingClient on the snapshot (nothing is saved by name);
        `kind="inflight"` makes a sampler that follows the run's later weights.
        """
        validation.check_retry_config(retry_config)
        validation.check_flag(record_stability_info, "record_stability_info")
        fields = set_fields(kind=None if kind == "snapshot" else validation.check_kind(kind))
        sampling_session_seq_id = self._runtime.next_sampling_session_seq_id()
        return self._queue_one(
            lambda seq_id: self._call(
                "/api/v1/save_weights_for_sampler",
                "SaveWeightsForSampler",
                types.SaveWeightsForSamplerRequest(
                    model_id=self.model_id,
                    sampling_session_seq_id=sampling_session_seq_id,
                    seq_id=seq_id,
                    **fields,
                ),
                types.SaveWeightsForSamplerResponseInternal,
            ),
            lambda response: self._ephemeral_sampler(response, retry_config, record_stability_info),
        )

    def save_weights_and_get_sampling_client(
        self,
        name: str | None = None,
        retry_config: RetryConfig | None = None,
        record_stability_info: bool = False,
        kind: types.SamplingClientKind = "snapshot",
    ) -> BackcompatSamplingClientFuture:
        """Snapshot the current weights into an ephemeral sampler; returns its client at once
        (the client, a Future of it and awaitable), after every earlier operation.

        `name` is ignored (kept for compatibility): nothing is saved by name. `kind`:
        "snapshot" (these weights) or "inflight" (follows the run's later weights);
        `record_stability_info`: the sampler records what stable_reinforce needs.
        """
        from tinker.sampling_client import BackcompatSamplingClientFuture

        return BackcompatSamplingClientFuture(
            self.save_weights_and_get_sampling_client_submit(
                retry_config, record_stability_info=record_stability_info, kind=kind
            )
        )

    save_weights_and_get_sampling_client_async = twins.awaiting(
        save_weights_and_get_sampling_client, returns="SamplingClient"
    )

    def _ephemeral_sampler(
        self,
        response: types.SaveWeightsForSamplerResponseInternal,
        retry_config: RetryConfig | None,
        record_stability_info: bool,
    ) -> SamplingClient:
        from tinker.sampling_client import SamplingClient

        if response.sampling_session_id is None:
            raise ValueError("save_weights_for_sampler answered without a sampling_session_id")
        info = self._info
        return SamplingClient(
            self._runtime,
            sampling_session_id=response.sampling_session_id,
            retry_config=retry_config,
            base_model=info.model_data.model_name or info.model_name if info else None,
            record_stability_info=record_stability_info,
        )

    def unload_model(self) -> APIFuture[types.UnloadModelResponse]:
        """Release the model on the server once every earlier operation has been sent.

        Returns at once a future of an UnloadModelResponse.
        """
        return self._queue_one(
            lambda _seq_id: self._call(
                "/api/v1/unload_model",
                "UnloadModel",
                types.UnloadModelRequest(model_id=self.model_id),
                types.UnloadModelResponse,
            )
        )

    unload_model_async = twins.once_submitted(unload_model)

    # -- immediate calls ---------------------------------------------------------------------

    @twins.blocking
    def get_info(self) -> types.GetInfoResponse:
        """Model metadata: base model, LoRA rank, tokenizer id (fetched when the client was
        created, then answered from memory; not ordered)."""
        return self._get_info(retry=True)

    get_info_async = twins.offloaded(get_info)

    def _get_info(self, *, retry: bool) -> types.GetInfoResponse:
        info = self._info
        if info is None:
            info = self._info = self._runtime.call(
                ApiCall(
                    traffic=Traffic.TRAIN,
                    method="POST",
                    path="/api/v1/get_info",
                    body=types.GetInfoRequest(model_id=self.model_id),
                    result=types.GetInfoResponse,
                    retry=SUBMIT if retry else TRANSPORT,
                )
            )
        return info

    def get_tokenizer(self) -> Tokenizer:
        """The model's tokenizer (loaded once per process, cached on this client)."""
        advice = "call it once before the loop or in a worker thread"
        with _loopguard.calling("TrainingClient.get_tokenizer", advice), self._tokenizer_lock:
            if self._tokenizer is None:
                info = self._get_info(retry=False)
                tokenizer_id = info.model_data.tokenizer_id
                if tokenizer_id is None:
                    model_name = info.model_data.model_name or info.model_name
                    if model_name is None:
                        raise ValueError(f"get_info for {self.model_id} names no model")
                    tokenizer_id = tokenizer_id_for_model(model_name)
                self._tokenizer = get_tokenizer(tokenizer_id)
            return self._tokenizer

    def get_console_url(self) -> str:
        """The web console page of this training run; no request."""
        return f"{CONSOLE_URL}/training_runs/{urllib.parse.quote(self.model_id, safe='')}"

    def create_sampling_client(
        self,
        model_path: str,
        retry_config: RetryConfig | None = None,
        record_stability_info: bool = False,
    ) -> BackcompatSamplingClientFuture:
        """A SamplingClient on saved sampler weights (`tinker://...`), outside the ordered
        queue; returns at once (the client, a Future of it and awaitable)."""
        from tinker.sampling_client import BackcompatSamplingClientFuture, open_sampling_client

        validation.check_sampler_source(model_path, None, retry_config)
        validation.check_flag(record_stability_info, "record_stability_info")
        runtime = self._runtime
        work = runtime.spawn(
            open_sampling_client, runtime, model_path, None, retry_config, record_stability_info
        )
        return BackcompatSamplingClientFuture(work)

    create_sampling_client_async = twins.awaiting(create_sampling_client, returns="SamplingClient")

    def on_queue_state_change(
        self, queue_state: QueueState, queue_state_reason: str | None = None
    ) -> None:
        """Warn (at most once a minute) while the server pauses this model's queue, with the
        server's reason when it gives one."""
        self._warn_paused(queue_state, queue_state_reason)

    # -- the ordered queue -------------------------------------------------------------------

    def _call(self, path: str, poll_as: str, body: object, result: type[Any]) -> ApiCall:
        """A training operation: POSTed under the 5-minute retry policy, its result polled."""
        return ApiCall(
            traffic=Traffic.TRAIN,
            method="POST",
            path=path,
            body=body,
            result=result,
            retry=SUBMIT,
            poll_as=poll_as,
            observer=self,
        )

    def _queue(
        self, builders: Sequence[Callable[[int], ApiCall]], seq_ids: list[int] | None = None
    ) -> list[APIFuture[APIFuture[Any]]]:
        """Reserve consecutive seq_ids now (or take those reserved earlier, one per builder),
        build each call with its own, and queue them on the lane (together, when the server
        takes the chunks of one call in parallel). Each future resolves, once that request is
        sent, to its result's future. A call that fails to build gives the seq ids reserved
        here back, so the lane never stalls; seq ids reserved earlier stay with the custom loss
        that took them, whose failure poisons the client.
        """
        reserved_here = seq_ids is None
        if seq_ids is None:
            seq_ids = self._lane.reserve(len(builders))
        elif len(seq_ids) != len(builders):
            raise ValueError(f"{len(builders)} requests for {len(seq_ids)} reserved seq_ids")
        try:
            calls = [build(seq_id) for build, seq_id in zip(builders, seq_ids, strict=True)]
        except BaseException:
            if reserved_here:
                for seq_id in seq_ids:
                    self._lane.skip(seq_id)
            raise
        starts = [functools.partial(self._runtime.submit, call) for call in calls]
        if len(calls) > 1 and self._runtime.server.parallel_chunks:
            return self._lane.submit_together(seq_ids, starts)
        return [
            self._lane.submit(seq_id, start) for seq_id, start in zip(seq_ids, starts, strict=True)
        ]

    def _queue_one(
        self, build: Callable[[int], ApiCall], finish: Callable[[Any], Any] | None = None
    ) -> APIFuture[Any]:
        """Queue one operation; the future of its result (passed through `finish`), which the
        runtime fails if it is still pending when the client closes."""
        (submit,) = self._queue([build])
        result = queued(flatten(submit), [submit])
        if finish is not None:
            result = transform(result, finish)
        return self._runtime.operation(result)


def _merge_chunk_results(
    outputs: list[types.ForwardBackwardOutput],
) -> types.ForwardBackwardOutput:
    kind, merged, metrics = merge_outputs(outputs)
    return types.ForwardBackwardOutput(
        loss_fn_output_type=kind, loss_fn_outputs=merged, metrics=metrics
    )


def _check_loss_type_input(loss_type_input: object) -> None:
    """The deprecated `loss_type_input`: a DeprecationWarning at the caller's line when given
    (past this function, forward_backward_custom and its attribution wrapper), and only
    "logprobs" is accepted."""
    if loss_type_input is None:
        return
    warnings.warn(
        "forward_backward_custom(loss_type_input=...) is deprecated: the loss always receives "
        "logprobs; drop the argument",
        DeprecationWarning,
        stacklevel=4,
    )
    if loss_type_input != "logprobs":
        raise ValueError(
            f'loss_type_input must be "logprobs" (or left out), got {loss_type_input!r}'
        )


def _cross_entropy_datum(datum: types.Datum, weights: types.TensorData) -> types.Datum:
    """`datum` reduced to the two cross_entropy inputs, with the given weights (its provenance
    spans kept)."""
    return types.Datum(
        model_input=datum.model_input,
        loss_fn_inputs={"target_tokens": datum.loss_fn_inputs["target_tokens"], "weights": weights},
        model_input_spans=datum.model_input_spans,
        loss_fn_input_spans=datum.loss_fn_input_spans,
    )


def _forward_view(datum: types.Datum) -> types.Datum:
    """The datum as a cross_entropy forward input: its own weights, else zeros (the forward
    pass is only read for its logprobs)."""
    weights = datum.loss_fn_inputs.get("weights")
    if weights is None:
        import numpy as np

        targets = datum.loss_fn_inputs["target_tokens"]
        weights = types.TensorData.from_numpy(np.zeros(targets.to_numpy().shape, np.float32))
    return _cross_entropy_datum(datum, weights)


def _external_path(
    response: types.SaveWeightsExternalResponseInternal,
) -> types.SaveWeightsExternalResponse:
    if response.path is None:
        raise ValueError("save_weights_external answered without a path")
    return types.SaveWeightsExternalResponse(path=response.path)


def _sampler_path(
    response: types.SaveWeightsForSamplerResponseInternal,
) -> types.SaveWeightsForSamplerResponse:
    if response.path is None:
        raise ValueError("save_weights_for_sampler answered without a path")
    return types.SaveWeightsForSamplerResponse(path=response.path)


@forwarding(TrainingClient)
class BackcompatTrainingClientFuture(ClientFuture[TrainingClient], TrainingClient):
    """What client creation returns: the TrainingClient being created, a Future of it
    (`.result()`, done callbacks) and awaitable. Used as the client, each method waits for
    the creation and forwards."""
