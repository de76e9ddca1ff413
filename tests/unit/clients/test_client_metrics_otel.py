"""Client metrics through OpenTelemetry (the SDK is a dev dependency): the instruments are
created on a "tinker" meter and record what the recorder records, and a client picks up the
process's global meter provider."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from tinker._otel_metrics import OpenTelemetrySink
from tinker.errors import InternalServerError
from tinker.metrics import ClientMetrics


def _points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    assert data is not None
    found: dict[str, list[Any]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            assert scope.scope.name == "tinker"
            for metric in scope.metrics:
                found[metric.name] = list(metric.data.data_points)
    return found


def test_every_measurement_reaches_its_instrument() -> None:
    reader = InMemoryMetricReader()
    metrics = ClientMetrics(OpenTelemetrySink(MeterProvider(metric_readers=[reader])))
    metrics.request("POST", "/api/v1/sample", status=200, seconds=0.02, sent=40, received=9)
    metrics.request("POST", "/api/v1/sample", status=503, seconds=0.5, sent=40, received=0)
    metrics.retried(InternalServerError("x", status_code=503))
    metrics.queue_state("paused_rate_limit")
    points = _points(reader)
    requests = {p.attributes["outcome"]: p.value for p in points["tinker.client.requests"]}
    assert requests == {"200": 1, "503": 1}
    (duration,) = points["tinker.client.request.duration"]
    assert duration.attributes == {"endpoint": "POST /api/v1/sample"}
    assert (duration.count, duration.sum) == (2, pytest.approx(0.52))
    assert list(duration.explicit_bounds)[:3] == [0.001, 0.0025, 0.005]
    assert [p.value for p in points["tinker.client.sent"]] == [80]
    assert [p.value for p in points["tinker.client.received"]] == [9]
    assert [(p.attributes, p.value) for p in points["tinker.client.retries"]] == [
        ({"cause": "http_503"}, 1)
    ]
    assert [(p.attributes, p.value) for p in points["tinker.client.queue_states"]] == [
        ({"state": "paused_rate_limit"}, 1)
    ]


GLOBAL_PROVIDER = """
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

import tinker

with tinker.ServiceClient(base_url="local", api_key="k") as service:
    service.get_server_capabilities()
    service.session_id  # opens the session (lazy until first use)
    names = {}
    for resource in reader.get_metrics_data().resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    if metric.name == "tinker.client.requests":
                        names[point.attributes["endpoint"]] = point.value
    print(sorted(names.items()))
"""


def test_a_client_reports_to_the_global_meter_provider(tmp_path: Any) -> None:
    env = {**os.environ, "TINKER_TELEMETRY": "0", "TINKER_LOCAL_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(GLOBAL_PROVIDER)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "('GET /api/v1/get_server_capabilities', 1)" in done.stdout
    assert "('POST /api/v1/create_session', 1)" in done.stdout
