"""ServiceClient(http_adapter=...): every kind of traffic goes through the caller's adapter."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests
import requests.adapters

import tinker
from tinker import types
from tinker.local import LocalServer


class RecordingAdapter(requests.adapters.HTTPAdapter):
    """A stock adapter that remembers the path of every request it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []
        self._lock = threading.Lock()

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.paths.append(requests.utils.urlparse(request.url).path)
        return super().send(request, *args, **kwargs)


def test_all_traffic_uses_the_given_adapter(tinker_server: LocalServer) -> None:
    adapter = RecordingAdapter()
    with tinker.ServiceClient(
        base_url=tinker_server.url, api_key="k", telemetry=False, http_adapter=adapter
    ) as service:
        trainer = service.create_lora_training_client("tinker-local/tiny", rank=2, seed=0)
        result = trainer.optim_step(types.AdamParams()).result()
    assert result.metrics is None or isinstance(result.metrics, dict)
    assert adapter.paths[:4] == [
        "/api/v1/client/config",
        "/api/v1/client/dynamic_config",
        "/api/v1/create_session",
        "/api/v1/create_model",
    ]
    assert "/api/v1/optim_step" in adapter.paths
    assert "/api/v1/retrieve_future" in adapter.paths


def test_a_factory_builds_one_adapter_per_kind_of_traffic(tinker_server: LocalServer) -> None:
    built: list[RecordingAdapter] = []

    def factory() -> RecordingAdapter:
        built.append(RecordingAdapter())
        return built[-1]

    with tinker.ServiceClient(
        base_url=tinker_server.url, api_key="k", telemetry=False, http_adapter=factory
    ) as service:
        service.get_server_capabilities()
    assert len(built) == 5
    # client/config, client/dynamic_config, create_session, capabilities, sessions/S/finish
    assert sum(len(a.paths) for a in built) == 5


def test_a_wrong_adapter_is_a_type_error_before_any_request() -> None:
    with pytest.raises(TypeError, match=r"http_adapter must be a requests\.adapters\.BaseAdapter"):
        tinker.ServiceClient(base_url="http://127.0.0.1:9", api_key="k", http_adapter=42)
