"""TrainingClient: forward/backward passes, optimizer steps and checkpoints of one LoRA model.

Every training operation takes its sequence number(s) in the caller's thread at call time and
is submitted through the model's ordered lane, so the server sees operations in call order
while their results are polled concurrently. Operations return an `APIFuture` at once.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from tinker import types
from tinker._chunking import MAX_CHUNK_LEN, MAX_CHUNK_NUMBER_COUNT, chunk_data, merge_outputs
from tinker._futures import (
    APIFuture,
    QueueState,
    QueueStateObserver,
    chain,
    combine,
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
from tinker._retry import SUBMIT, TRANSPORT, RetryConfig
from tinker._runtime import Runtime, Traffic
from tinker._sync import (
    Queued,
    Thunk,
    async_method,
    blocking_method,
    queued_async_method,
    queued_method,
    warn_if_blocking_loop,
)
from tinker.tokenizer import Tokenizer, get_tokenizer, tokenizer_id_for_model

if TYPE_CHECKING:
    from tinker.sampling_client import SamplingClient

__all__ = ["MAX_CHUNK_LEN", "MAX_CHUNK_NUMBER_COUNT", "CustomLossFnV1", "TrainingClient"]

# A custom loss: fn(data, logprobs) -> (loss, metrics) with torch, or (loss, metrics, grads).
CustomLossFnV1 = Callable[[list[Any], list[Any]], tuple[Any, ...]]

logger = logging.getLogger(__name__)


def _empty_output() -> types.ForwardBackwardOutput:
    """What an empty batch returns, without any request."""
    return types.ForwardBackwardOutput(loss_fn_output_type="", loss_fn_outputs=[], metrics={})


def _check_data(data: object) -> list[types.Datum]:
    if not isinstance(data, Sequence) or isinstance(data, (str, bytes)):
        raise TypeError(f"data must be a list of Datum, got {type(data).__name__}")
    batch = list(data)
    for index, datum in enumerate(batch):
        if not isinstance(datum, types.Datum):
            raise TypeError(f"data[{index}] must be a Datum, got {type(datum).__name__}")
    return batch


def _check_batch(
    data: object, loss_fn: object, loss_fn_config: object
) -> tuple[list[types.Datum], types.LossFnType, dict[str, float] | None]:
    """Validate a forward/forward_backward batch in the caller's thread."""
    if not isinstance(loss_fn, str) or loss_fn not in types.LOSS_FN_TYPES:
        raise ValueError(f"unknown loss_fn {loss_fn!r}; expected one of {types.LOSS_FN_TYPES}")
    if loss_fn_config is not None:
        if not isinstance(loss_fn_config, Mapping) or not all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
            for k, v in loss_fn_config.items()
        ):
            raise TypeError(f"loss_fn_config must be a dict[str, float], got {loss_fn_config!r}")
        loss_fn_config = {k: float(v) for k, v in loss_fn_config.items()}
    batch = _check_data(data)
    types.validate_batch(batch, loss_fn)
    return batch, cast(types.LossFnType, loss_fn), loss_fn_config


def _check_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise ValueError(
            f"{what} must be a non-empty str without '/' (not '.' or '..'), got {name!r}"
        )
    return name


def _check_adam(params: types.AdamParams) -> None:
    """ValueError for a NaN, infinite or negative setting, or a beta outside [0, 1)."""
    for name in ("learning_rate", "eps", "weight_decay", "grad_clip_norm"):
        value = getattr(params, name)
        if not 0 <= value < math.inf:  # NaN fails too
            raise ValueError(f"adam_params.{name} must be finite and >= 0, got {value}")
    for name in ("beta1", "beta2"):
        value = getattr(params, name)
        if not 0 <= value < 1:
            raise ValueError(f"adam_params.{name} must be in [0, 1), got {value}")


def _check_ttl(ttl_seconds: object) -> int | None:
    if ttl_seconds is None:
        return None
    if not isinstance(ttl_seconds, int) or isinstance(ttl_seconds, bool) or ttl_seconds <= 0:
        raise ValueError(f"ttl_seconds must be a positive int or None, got {ttl_seconds!r}")
    return ttl_seconds


class TrainingClient(ClientBase, QueueStateObserver):
    """A handle on one LoRA training run (`model_id`), made by ServiceClient."""

    def __init__(self, runtime: Runtime, model_id: str, *, model_seq_id: int | None = None):
        super().__init__(runtime)
        self.model_id = model_id
        self.model_seq_id = model_seq_id
        self._lane = runtime.lane()
        self._warn_paused = QueuePauseWarner(
            f"Training is paused for {model_id}.", "concurrent models rate limit hit"
        )
        self._tokenizer: Tokenizer | None = None
        self._tokenizer_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TrainingClient(model_id={self.model_id!r})"

    # -- ordered operations ------------------------------------------------------------------

    def _ordered(
        self, path: str, request_type: str, result: type[Any], build: Callable[[int], object]
    ) -> Queued[Any]:
        """Reserve one seq_id now and submit `build(seq_id)` to `path` in lane order."""
        (submit,) = self._submit_ordered(path, request_type, result, [build])
        return Queued(chain(submit, _identity), (submit,))

    def _submit_ordered(
        self,
        path: str,
        request_type: str,
        result: type[Any],
        builders: Sequence[Callable[[int], object]],
    ) -> list[APIFuture[APIFuture[Any]]]:
        """Reserve consecutive seq_ids now, build every body, then queue them on the lane.

        Each returned future resolves, once that request is submitted, to its result future.
        A body that fails to build gives back every reserved seq_id, so the lane never stalls.
        """
        seq_ids = self._lane.reserve(len(builders))
        try:
            bodies = [build(seq_id) for build, seq_id in zip(builders, seq_ids, strict=True)]
        except BaseException:
            for seq_id in seq_ids:
                self._lane.skip(seq_id)
            raise

        def submitter(body: object) -> Callable[[], APIFuture[Any]]:
            return lambda: submit_and_track(
                self._runtime,
                Traffic.TRAIN,
                path,
                body,
                request_type=request_type,
                result=result,
                retry=SUBMIT,
                observer=self,
            )

        return [
            self._lane.submit(seq_id, submitter(body))
            for seq_id, body in zip(seq_ids, bodies, strict=True)
        ]

    def _forward_like(
        self, data: object, loss_fn: object, loss_fn_config: object, *, backward: bool
    ) -> Queued[types.ForwardBackwardOutput]:
        batch, loss_fn_name, config = _check_batch(data, loss_fn, loss_fn_config)
        if not batch:
            return Queued(completed(_empty_output()))
        inputs = [
            types.ForwardBackwardInput(data=chunk, loss_fn=loss_fn_name, loss_fn_config=config)
            for chunk in chunk_data(batch)
        ]
        model_id = self.model_id

        def request(fb_input: types.ForwardBackwardInput) -> Callable[[int], object]:
            if backward:
                return lambda seq_id: types.ForwardBackwardRequest(
                    forward_backward_input=fb_input, model_id=model_id, seq_id=seq_id
                )
            return lambda seq_id: types.ForwardRequest(
                forward_input=fb_input, model_id=model_id, seq_id=seq_id
            )

        path, kind = (
            ("/api/v1/forward_backward", "ForwardBackward")
            if backward
            else ("/api/v1/forward", "Forward")
        )
        builders = [request(fb_input) for fb_input in inputs]
        submits = self._submit_ordered(path, kind, types.ForwardBackwardOutput, builders)
        results = [chain(submit, _identity) for submit in submits]
        return Queued(combine(results, _merge_chunk_results), submits)

    def _queue_forward(
        self,
        data: list[types.Datum],
        loss_fn: types.LossFnType,
        loss_fn_config: dict[str, float] | None = None,
    ) -> Queued[types.ForwardBackwardOutput]:
        """Loss and per-token outputs without gradients (chunked, in call order)."""
        return self._forward_like(data, loss_fn, loss_fn_config, backward=False)

    forward = queued_method(_queue_forward)
    forward_async = queued_async_method(_queue_forward)

    def _queue_forward_backward(
        self,
        data: list[types.Datum],
        loss_fn: types.LossFnType,
        loss_fn_config: dict[str, float] | None = None,
    ) -> Queued[types.ForwardBackwardOutput]:
        """Loss, outputs and accumulated gradients (chunked, in call order)."""
        return self._forward_like(data, loss_fn, loss_fn_config, backward=True)

    forward_backward = queued_method(_queue_forward_backward)
    forward_backward_async = queued_async_method(_queue_forward_backward)

    def forward_backward_custom(
        self, data: list[types.Datum], loss_fn: CustomLossFnV1
    ) -> APIFuture[types.ForwardBackwardOutput]:
        """Backward pass of a loss computed on the client, through a linear surrogate.

        `loss_fn(data, logprobs)` gets the per-token target logprobs of each datum. With torch
        it returns `(loss_tensor, metrics)`; a numpy loss (no torch, or marked with
        `tinker.lib.custom_loss.numpy_loss`) returns `(loss: float, metrics: dict[str, float],
        grads: list[np.ndarray])` with grads[i] = dloss/dlogprobs[i]. The result's metrics
        carry the user's loss as `loss:sum`, the server's surrogate as `surrogate_loss:sum`.
        Blocks until the forward pass has finished and the backward pass is queued.
        """
        warn_if_blocking_loop("TrainingClient.forward_backward_custom")
        batch = _check_custom_batch(data, loss_fn)
        forward = self.forward([_forward_view(d) for d in batch], "cross_entropy")
        return self._custom_backward(batch, loss_fn, forward.result()).result

    async def forward_backward_custom_async(
        self, data: list[types.Datum], loss_fn: CustomLossFnV1
    ) -> APIFuture[types.ForwardBackwardOutput]:
        """Like `forward_backward_custom`; returns once the backward pass is submitted."""
        batch = _check_custom_batch(data, loss_fn)
        forward_view = [_forward_view(d) for d in batch]
        forward = await self.forward(forward_view, "cross_entropy").result_async()
        return await self._custom_backward(batch, loss_fn, forward).submitted()

    def _custom_backward(
        self,
        batch: list[types.Datum],
        loss_fn: CustomLossFnV1,
        forward: types.ForwardBackwardOutput,
    ) -> Queued[types.ForwardBackwardOutput]:
        if not batch:
            return Queued(completed(_empty_output()))
        # numpy and the loss machinery load here, so a sampling-only program never pays for them.
        import numpy as np

        from tinker._custom_loss import evaluate_custom_loss

        logprobs = [
            np.asarray(output["logprobs"].to_numpy(), dtype=np.float32).reshape(-1)
            for output in forward.loss_fn_outputs
        ]
        evaluated = evaluate_custom_loss(loss_fn, batch, logprobs)
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

        return self._forward_like(linear, "cross_entropy", None, backward=True).map(with_user_loss)

    def _queue_optim_step(self, adam_params: types.AdamParams) -> Queued[types.OptimStepResponse]:
        """Apply the accumulated gradients with Adam, after every earlier operation."""
        if not isinstance(adam_params, types.AdamParams):
            raise TypeError(f"adam_params must be an AdamParams, got {type(adam_params).__name__}")
        _check_adam(adam_params)
        return self._ordered(
            "/api/v1/optim_step",
            "OptimStep",
            types.OptimStepResponse,
            lambda seq_id: types.OptimStepRequest(
                adam_params=adam_params, model_id=self.model_id, seq_id=seq_id
            ),
        )

    optim_step = queued_method(_queue_optim_step)
    optim_step_async = queued_async_method(_queue_optim_step)

    def _queue_save_state(
        self, name: str, ttl_seconds: int | None = None
    ) -> Queued[types.SaveWeightsResponse]:
        """Save weights and optimizer state as `tinker://<model_id>/weights/<name>`."""
        _check_name(name, "name")
        ttl = _check_ttl(ttl_seconds)
        return self._ordered(
            "/api/v1/save_weights",
            "SaveWeights",
            types.SaveWeightsResponse,
            lambda seq_id: types.SaveWeightsRequest(
                model_id=self.model_id, path=name, seq_id=seq_id, **_ttl_field(ttl)
            ),
        )

    save_state = queued_method(_queue_save_state)
    save_state_async = queued_async_method(_queue_save_state)

    def _load(self, path: str, optimizer: bool) -> Queued[types.LoadWeightsResponse]:
        check_tinker_path(path)
        return self._ordered(
            "/api/v1/load_weights",
            "LoadWeights",
            types.LoadWeightsResponse,
            lambda seq_id: types.LoadWeightsRequest(
                model_id=self.model_id, path=path, optimizer=optimizer, seq_id=seq_id
            ),
        )

    def _queue_load_state(self, path: str) -> Queued[types.LoadWeightsResponse]:
        """Load the weights (not the optimizer state) of a training checkpoint."""
        return self._load(path, optimizer=False)

    load_state = queued_method(_queue_load_state)
    load_state_async = queued_async_method(_queue_load_state)

    def _queue_load_state_with_optimizer(self, path: str) -> Queued[types.LoadWeightsResponse]:
        """Load the weights and the optimizer state of a training checkpoint."""
        return self._load(path, optimizer=True)

    load_state_with_optimizer = queued_method(_queue_load_state_with_optimizer)
    load_state_with_optimizer_async = queued_async_method(_queue_load_state_with_optimizer)

    def _queue_save_weights_for_sampler(
        self, name: str, ttl_seconds: int | None = None
    ) -> Queued[types.SaveWeightsForSamplerResponse]:
        """Save sampler weights as `tinker://<model_id>/sampler_weights/<name>`."""
        _check_name(name, "name")
        ttl = _check_ttl(ttl_seconds)
        saved = self._ordered(
            "/api/v1/save_weights_for_sampler",
            "SaveWeightsForSampler",
            types.SaveWeightsForSamplerResponseInternal,
            lambda seq_id: types.SaveWeightsForSamplerRequest(
                model_id=self.model_id, path=name, seq_id=seq_id, **_ttl_field(ttl)
            ),
        )
        return saved.map(_sampler_path)

    save_weights_for_sampler = queued_method(_queue_save_weights_for_sampler)
    save_weights_for_sampler_async = queued_async_method(_queue_save_weights_for_sampler)

    def save_weights_and_get_sampling_client_submit(
        self, retry_config: RetryConfig | None = None
    ) -> APIFuture[SamplingClient]:
        """Snapshot the current weights into an ephemeral sampler; returns a future at once."""
        check_retry_config(retry_config)
        sampling_session_seq_id = self._runtime.next_sampling_session_seq_id()
        saved = self._ordered(
            "/api/v1/save_weights_for_sampler",
            "SaveWeightsForSampler",
            types.SaveWeightsForSamplerResponseInternal,
            lambda seq_id: types.SaveWeightsForSamplerRequest(
                model_id=self.model_id,
                sampling_session_seq_id=sampling_session_seq_id,
                seq_id=seq_id,
            ),
        )
        return transform(
            saved.result, lambda response: self._ephemeral_sampler(response, retry_config)
        )

    def _ephemeral_sampler(
        self,
        response: types.SaveWeightsForSamplerResponseInternal,
        retry_config: RetryConfig | None,
    ) -> SamplingClient:
        from tinker.sampling_client import SamplingClient

        if response.sampling_session_id is None:
            raise ValueError("save_weights_for_sampler answered without a sampling_session_id")
        return SamplingClient(
            self._runtime,
            sampling_session_id=response.sampling_session_id,
            retry_config=retry_config,
        )

    def _plan_save_weights_and_get_sampling_client(
        self, name: str | None = None, retry_config: RetryConfig | None = None
    ) -> Thunk[SamplingClient]:
        """Snapshot the current weights into an ephemeral sampler (`name` is ignored)."""
        future = self.save_weights_and_get_sampling_client_submit(retry_config)
        return future.result

    save_weights_and_get_sampling_client = blocking_method(
        _plan_save_weights_and_get_sampling_client
    )
    save_weights_and_get_sampling_client_async = async_method(
        _plan_save_weights_and_get_sampling_client
    )

    def _queue_unload_model(self) -> Queued[types.UnloadModelResponse]:
        """Release the model on the server once every earlier operation is submitted."""
        return self._ordered(
            "/api/v1/unload_model",
            "UnloadModel",
            types.UnloadModelResponse,
            lambda _seq_id: types.UnloadModelRequest(model_id=self.model_id),
        )

    unload_model = queued_method(_queue_unload_model)
    unload_model_async = queued_async_method(_queue_unload_model)

    # -- immediate calls ---------------------------------------------------------------------

    def _plan_get_info(self) -> Thunk[types.GetInfoResponse]:
        """Model metadata: base model, LoRA rank, tokenizer id."""
        return lambda: self._get_info(retry=True)

    get_info = blocking_method(_plan_get_info)
    get_info_async = async_method(_plan_get_info)

    def _get_info(self, *, retry: bool) -> types.GetInfoResponse:
        info: types.GetInfoResponse = self._runtime.call(
            Traffic.TRAIN,
            "POST",
            "/api/v1/get_info",
            body=types.GetInfoRequest(model_id=self.model_id),
            result=types.GetInfoResponse,
            retry=SUBMIT if retry else TRANSPORT,
        )
        return info

    def get_tokenizer(self) -> Tokenizer:
        """The model's tokenizer (loaded once per process, cached on this client)."""
        warn_if_blocking_loop(
            "TrainingClient.get_tokenizer", "call it once before the loop or in a worker thread"
        )
        with self._tokenizer_lock:
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

    def _plan_create_sampling_client(
        self, model_path: str, retry_config: RetryConfig | None = None
    ) -> Thunk[SamplingClient]:
        """A SamplingClient on saved sampler weights (outside the ordered queue)."""
        from tinker.sampling_client import plan_sampling_client

        return plan_sampling_client(self._runtime, model_path, None, retry_config)

    create_sampling_client = blocking_method(_plan_create_sampling_client)
    create_sampling_client_async = async_method(_plan_create_sampling_client)

    def on_queue_state_change(self, queue_state: QueueState) -> None:
        """Warn (at most once a minute) while the server pauses this model's queue."""
        self._warn_paused(queue_state)


def _identity(value: Any) -> Any:
    return value


def _merge_chunk_results(
    outputs: list[types.ForwardBackwardOutput],
) -> types.ForwardBackwardOutput:
    kind, merged, metrics = merge_outputs(outputs)
    return types.ForwardBackwardOutput(
        loss_fn_output_type=kind, loss_fn_outputs=merged, metrics=metrics
    )


def _check_custom_batch(data: object, loss_fn: object) -> list[types.Datum]:
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    batch = _check_data(data)
    for index, datum in enumerate(batch):
        if "target_tokens" not in datum.loss_fn_inputs:
            raise ValueError(f"data[{index}].loss_fn_inputs lacks 'target_tokens'")
    return batch


def _cross_entropy_datum(datum: types.Datum, weights: types.TensorData) -> types.Datum:
    """`datum` reduced to the two cross_entropy inputs, with the given weights."""
    return types.Datum(
        model_input=datum.model_input,
        loss_fn_inputs={"target_tokens": datum.loss_fn_inputs["target_tokens"], "weights": weights},
    )


def _forward_view(datum: types.Datum) -> types.Datum:
    """The datum as a cross_entropy forward input (its own weights, else ones)."""
    weights = datum.loss_fn_inputs.get("weights")
    if weights is None:
        import numpy as np

        targets = datum.loss_fn_inputs["target_tokens"]
        weights = types.TensorData.from_numpy(np.ones(len(targets.data), dtype=np.float32))
    return _cross_entropy_datum(datum, weights)


def _ttl_field(ttl: int | None) -> dict[str, Any]:
    return {} if ttl is None else {"ttl_seconds": ttl}


def _sampler_path(
    response: types.SaveWeightsForSamplerResponseInternal,
) -> types.SaveWeightsForSamplerResponse:
    if response.path is None:
        raise ValueError("save_weights_for_sampler answered without a path")
    return types.SaveWeightsForSamplerResponse(path=response.path)
