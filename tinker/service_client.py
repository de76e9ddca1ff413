"""ServiceClient: the entry point. Opens a session and creates the other clients.

`ServiceClient()` reads TINKER_API_KEY / TINKER_BASE_URL (explicit arguments win) and blocks
while the session is created. `base_url="local"` runs against the embedded server in this
process and needs no API key. Use it as a context manager, or call `close()`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Union

import requests.adapters

from tinker import _loopguard, types
from tinker import _twins as twins
from tinker import _validation as validation
from tinker._calls import ApiCall
from tinker._retry import SUBMIT, TRANSPORT, RetryConfig
from tinker._runtime import ClientBase, RuntimeOptions, finish_status
from tinker._session import open_session
from tinker._transport import Traffic
from tinker._validation import NoTrainableLayersError
from tinker.config import ClientConfig
from tinker.rest_client import RestClient
from tinker.sampling_client import SamplingClient, open_sampling_client
from tinker.training_client import TrainingClient

__all__ = ["NoTrainableLayersError", "ServiceClient"]

logger = logging.getLogger(__name__)

# A requests adapter, or a function building one per kind of traffic.
HTTPAdapterSpec = Union[requests.adapters.BaseAdapter, Callable[[], requests.adapters.BaseAdapter]]


class ServiceClient(ClientBase):
    """One session with a Tinker service; creates training, sampling and REST clients."""

    def __init__(
        self,
        user_metadata: dict[str, str] | None = None,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        default_headers: Mapping[str, str] | None = None,
        config: ClientConfig | None = None,
        http_adapter: HTTPAdapterSpec | None = None,
        **options: Any,
    ) -> None:
        """Open a session (blocking). `options` are further ClientConfig fields.

        `config` gives a complete ClientConfig instead (then no other argument may be given).
        `http_adapter` is a requests transport adapter (or a function that builds one) mounted
        for all of this client's traffic: custom TLS, proxies, instrumentation or test doubles.
        It stays in this process: a client re-attached elsewhere uses the stock adapter.
        """
        metadata = validation.check_metadata(user_metadata)
        explicit: dict[str, Any] = {
            "api_key": api_key,
            "base_url": base_url,
            "timeout": timeout,
            "max_retries": max_retries,
            "default_headers": default_headers,
            **options,
        }
        if config is None:
            config = ClientConfig.from_env(**explicit)
        elif any(value is not None for value in explicit.values()):
            raise TypeError("pass either config= or individual settings, not both")
        runtime_options = None
        if http_adapter is not None:
            runtime_options = RuntimeOptions(http_adapter=validation.adapter_factory(http_adapter))
        advice = "create it before the loop starts or with asyncio.to_thread()"
        with _loopguard.calling("ServiceClient", advice):
            runtime = open_session(config, user_metadata=metadata, options=runtime_options)
        super().__init__(runtime)
        logger.info("ServiceClient initialized for session %s", self._runtime.session_id)

    @property
    def session_id(self) -> str:
        """The id of this client's session."""
        return self._runtime.session_id

    def __repr__(self) -> str:
        return (
            f"ServiceClient(session_id={self.session_id!r}, "
            f"base_url={self._runtime.config.base_url!r})"
        )

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        self._runtime.close(finish_status(exc_type))

    def close(self) -> None:
        """Stop the session's background work (heartbeat, polling, telemetry); idempotent.

        Operations still pending fail instead of hanging.
        """
        self._runtime.close()

    @twins.blocking
    def get_server_capabilities(self) -> types.GetServerCapabilitiesResponse:
        """The models this service can train and sample (blocks; retried for up to 5 min)."""
        capabilities: types.GetServerCapabilitiesResponse = self._runtime.call(
            ApiCall(
                traffic=Traffic.SESSION,
                method="GET",
                path="/api/v1/get_server_capabilities",
                result=types.GetServerCapabilitiesResponse,
                retry=SUBMIT,
            )
        )
        return capabilities

    get_server_capabilities_async = twins.offloaded(get_server_capabilities)

    @twins.blocking
    def create_lora_training_client(
        self,
        base_model: str,
        rank: int = 32,
        seed: int | None = None,
        train_mlp: bool = True,
        train_attn: bool = True,
        train_unembed: bool = True,
        user_metadata: dict[str, str] | None = None,
    ) -> TrainingClient:
        """A TrainingClient on a new LoRA adapter of `base_model`; blocks until it exists.

        `rank`: the LoRA rank (>= 1); `seed`: the adapter's initialisation seed (None: the
        server picks); `train_mlp`, `train_attn`, `train_unembed`: which layer groups get an
        adapter (at least one must be True, else NoTrainableLayersError); `user_metadata`:
        str to str, stored with the training run. Raises TypeError/ValueError for a bad
        argument before anything is sent.
        """
        flags = {"train_mlp": train_mlp, "train_attn": train_attn, "train_unembed": train_unembed}
        validation.check_lora_args(base_model, rank, seed, flags)
        metadata = validation.check_metadata(user_metadata)
        return self._create_model(base_model, rank, seed, flags, metadata)

    create_lora_training_client_async = twins.offloaded(create_lora_training_client)

    def _create_model(
        self,
        base_model: str,
        rank: int,
        seed: int | None,
        flags: Mapping[str, bool],
        metadata: dict[str, str] | None,
    ) -> TrainingClient:
        runtime = self._runtime
        model_seq_id = runtime.next_model_seq_id()
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
        return _created(TrainingClient(runtime, created.model_id, model_seq_id=model_seq_id))

    @twins.blocking
    def create_training_client_from_state(
        self, path: str, user_metadata: dict[str, str] | None = None
    ) -> TrainingClient:
        """A TrainingClient on a new LoRA adapter initialised with the weights (not the
        optimizer state) of the `tinker://.../weights/...` checkpoint `path`; the adapter
        takes the checkpoint's base model, rank and trained layer groups. Blocks until the
        weights are loaded."""
        return self._from_state(path, user_metadata, optimizer=False)

    create_training_client_from_state_async = twins.offloaded(create_training_client_from_state)

    @twins.blocking
    def create_training_client_from_state_with_optimizer(
        self, path: str, user_metadata: dict[str, str] | None = None
    ) -> TrainingClient:
        """Like `create_training_client_from_state`, also resuming the optimizer state."""
        return self._from_state(path, user_metadata, optimizer=True)

    create_training_client_from_state_with_optimizer_async = twins.offloaded(
        create_training_client_from_state_with_optimizer
    )

    def _from_state(
        self, path: str, user_metadata: dict[str, str] | None, *, optimizer: bool
    ) -> TrainingClient:
        validation.check_tinker_path(path)
        metadata = validation.check_metadata(user_metadata)
        if self._runtime.server.current:
            return self._load_as_new_model(path, metadata, optimizer=optimizer)
        info = self.create_rest_client().get_weights_info_by_tinker_path(path).result()
        if not info.is_lora or info.lora_rank is None:
            raise ValueError(f"{path} is not a LoRA checkpoint; only LoRA runs can be resumed")
        flags = {
            name: value if isinstance(value := getattr(info, name, None), bool) else True
            for name in ("train_mlp", "train_attn", "train_unembed")
        }
        validation.check_lora_args(info.base_model, info.lora_rank, None, flags)
        training = self._create_model(info.base_model, info.lora_rank, None, flags, metadata)
        load = training.load_state_with_optimizer if optimizer else training.load_state
        load(path).result()
        return training

    def _load_as_new_model(
        self, path: str, metadata: dict[str, str] | None, *, optimizer: bool
    ) -> TrainingClient:
        """Today's protocol: one load_weights creates the model from the checkpoint (its id is
        `<session_id>:train:<model_seq_id>`, and the load is its first operation)."""
        runtime = self._runtime
        model_seq_id = runtime.next_model_seq_id()
        body: dict[str, Any] = {
            "session_id": runtime.session_id,
            "model_seq_id": model_seq_id,
            "path": path,
            "optimizer": optimizer,
            "type": "load_weights",
        }
        if metadata is not None:
            body["user_metadata"] = metadata
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
        return _created(TrainingClient(runtime, model_id, model_seq_id=model_seq_id))

    @twins.blocking
    def create_sampling_client(
        self,
        model_path: str | None = None,
        base_model: str | None = None,
        retry_config: RetryConfig | None = None,
    ) -> SamplingClient:
        """A SamplingClient on saved sampler weights (`model_path`, a `tinker://` path) or on
        a base model; blocks while the sampling session is created. `retry_config` sets its
        sample-level retries."""
        model_path, base_model = validation.check_sampler_source(
            model_path, base_model, retry_config
        )
        return open_sampling_client(self._runtime, model_path, base_model, retry_config)

    create_sampling_client_async = twins.offloaded(create_sampling_client)

    def create_rest_client(self) -> RestClient:
        """A RestClient sharing this session (no network call)."""
        return RestClient(self._runtime)


def _created(training: TrainingClient) -> TrainingClient:
    """A new TrainingClient; on a server of today's protocol its info is fetched once now
    (the server expects get_info right after a model is created)."""
    if training.holder.server.current:
        training.get_info()
    return training
