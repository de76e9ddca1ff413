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

from tinker import types
from tinker._ops import ClientBase, check_tinker_path, submit_and_track
from tinker._retry import SUBMIT, TRANSPORT, RetryConfig
from tinker._runtime import Runtime, RuntimeOptions, Traffic
from tinker._sync import Thunk, async_method, blocking_method, warn_if_blocking_loop
from tinker.config import ClientConfig
from tinker.rest_client import RestClient
from tinker.sampling_client import SamplingClient, plan_sampling_client
from tinker.training_client import TrainingClient

__all__ = ["NoTrainableLayersError", "ServiceClient"]

logger = logging.getLogger(__name__)


class NoTrainableLayersError(ValueError, AssertionError):
    """All of train_mlp, train_attn and train_unembed are False.

    A ValueError like every other bad argument, and an AssertionError for code written against
    the official SDK, which asserts this.
    """


# A requests adapter, or a function building one per kind of traffic.
HTTPAdapterSpec = Union[
    requests.adapters.BaseAdapter, Callable[[], requests.adapters.BaseAdapter]
]


def _adapter_factory(spec: HTTPAdapterSpec) -> Callable[[], requests.adapters.BaseAdapter]:
    """Normalise `http_adapter=` to a factory; anything else is a TypeError naming it."""
    if isinstance(spec, requests.adapters.BaseAdapter):
        return lambda: spec
    if callable(spec):
        return spec
    raise TypeError(
        "http_adapter must be a requests.adapters.BaseAdapter or a function returning one, "
        f"got {type(spec).__name__}"
    )


def _check_metadata(user_metadata: object) -> dict[str, str] | None:
    if user_metadata is None:
        return None
    if not isinstance(user_metadata, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in user_metadata.items()
    ):
        raise TypeError(f"user_metadata must be a dict[str, str], got {user_metadata!r}")
    return dict(user_metadata)


def _check_lora_args(
    base_model: object, rank: object, seed: object, flags: Mapping[str, object]
) -> None:
    if not isinstance(base_model, str) or not base_model:
        raise ValueError(f"base_model must be a non-empty str, got {base_model!r}")
    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        raise ValueError(f"rank must be an int >= 1, got {rank!r}")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise TypeError(f"seed must be an int or None, got {seed!r}")
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a bool, got {value!r}")
    if not any(flags.values()):
        raise NoTrainableLayersError(
            "at least one of train_mlp, train_attn and train_unembed must be True"
        )


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
        warn_if_blocking_loop(
            "ServiceClient", "create it before the loop starts or with asyncio.to_thread()"
        )
        metadata = _check_metadata(user_metadata)
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
            runtime_options = RuntimeOptions(http_adapter=_adapter_factory(http_adapter))
        super().__init__(Runtime.start(config, user_metadata=metadata, options=runtime_options))
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

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the session's background work (heartbeat, polling, telemetry); idempotent."""
        self._runtime.close()

    def _plan_get_server_capabilities(self) -> Thunk[types.GetServerCapabilitiesResponse]:
        """The models this service can train and sample."""

        def run() -> types.GetServerCapabilitiesResponse:
            response: types.GetServerCapabilitiesResponse = self._runtime.call(
                Traffic.SESSION,
                "GET",
                "/api/v1/get_server_capabilities",
                result=types.GetServerCapabilitiesResponse,
                retry=SUBMIT,
            )
            return response

        return run

    get_server_capabilities = blocking_method(_plan_get_server_capabilities)
    get_server_capabilities_async = async_method(_plan_get_server_capabilities)

    def _plan_create_lora_training_client(
        self,
        base_model: str,
        rank: int = 32,
        seed: int | None = None,
        train_mlp: bool = True,
        train_attn: bool = True,
        train_unembed: bool = True,
        user_metadata: dict[str, str] | None = None,
    ) -> Thunk[TrainingClient]:
        """A TrainingClient on a new LoRA adapter of `base_model` (blocks until created)."""
        flags = {"train_mlp": train_mlp, "train_attn": train_attn, "train_unembed": train_unembed}
        _check_lora_args(base_model, rank, seed, flags)
        metadata = _check_metadata(user_metadata)
        runtime = self._runtime

        def run() -> TrainingClient:
            model_seq_id = runtime.next_model_seq_id()
            request = types.CreateModelRequest(
                session_id=runtime.session_id,
                model_seq_id=model_seq_id,
                base_model=base_model,
                user_metadata=metadata,
                lora_config=types.LoraConfig(
                    rank=rank,
                    seed=seed,
                    train_unembed=train_unembed,
                    train_mlp=train_mlp,
                    train_attn=train_attn,
                ),
            )
            created = submit_and_track(
                runtime,
                Traffic.TRAIN,
                "/api/v1/create_model",
                request,
                request_type="CreateModel",
                result=types.CreateModelResponse,
                retry=TRANSPORT,
            ).result()
            return TrainingClient(runtime, created.model_id, model_seq_id=model_seq_id)

        return run

    create_lora_training_client = blocking_method(_plan_create_lora_training_client)
    create_lora_training_client_async = async_method(_plan_create_lora_training_client)

    def _from_state(
        self, path: str, user_metadata: dict[str, str] | None, *, optimizer: bool
    ) -> Thunk[TrainingClient]:
        check_tinker_path(path)
        metadata = _check_metadata(user_metadata)
        weights_info = self.create_rest_client()._plan_get_weights_info_by_tinker_path(path)

        def run() -> TrainingClient:
            info = weights_info()
            if not info.is_lora or info.lora_rank is None:
                raise ValueError(f"{path} is not a LoRA checkpoint; only LoRA runs can be resumed")
            flags = {
                name: value
                for name in ("train_mlp", "train_attn", "train_unembed")
                if isinstance(value := getattr(info, name, None), bool)
            }
            training = self._plan_create_lora_training_client(
                info.base_model, info.lora_rank, user_metadata=metadata, **flags
            )()
            load = training.load_state_with_optimizer if optimizer else training.load_state
            load(path).result()
            return training

        return run

    def _plan_create_training_client_from_state(
        self, path: str, user_metadata: dict[str, str] | None = None
    ) -> Thunk[TrainingClient]:
        """A TrainingClient initialised with the weights (not the optimizer) of a checkpoint."""
        return self._from_state(path, user_metadata, optimizer=False)

    create_training_client_from_state = blocking_method(_plan_create_training_client_from_state)
    create_training_client_from_state_async = async_method(_plan_create_training_client_from_state)

    def _plan_create_training_client_from_state_with_optimizer(
        self, path: str, user_metadata: dict[str, str] | None = None
    ) -> Thunk[TrainingClient]:
        """A TrainingClient resuming a checkpoint's weights and optimizer state."""
        return self._from_state(path, user_metadata, optimizer=True)

    create_training_client_from_state_with_optimizer = blocking_method(
        _plan_create_training_client_from_state_with_optimizer
    )
    create_training_client_from_state_with_optimizer_async = async_method(
        _plan_create_training_client_from_state_with_optimizer
    )

    def _plan_create_sampling_client(
        self,
        model_path: str | None = None,
        base_model: str | None = None,
        retry_config: RetryConfig | None = None,
    ) -> Thunk[SamplingClient]:
        """A SamplingClient on saved sampler weights (`tinker://...`) or on a base model."""
        return plan_sampling_client(self._runtime, model_path, base_model, retry_config)

    create_sampling_client = blocking_method(_plan_create_sampling_client)
    create_sampling_client_async = async_method(_plan_create_sampling_client)

    def create_rest_client(self) -> RestClient:
        """A RestClient sharing this session (no network call)."""
        return RestClient(self._runtime)
