"""Hostile values in bodies, query strings and paths: a 400 naming the field, nothing accepted.

The bodies are written as raw JSON text, because most of these values (lone surrogates,
number literals of thousands of digits, 1e400, nesting ten thousand levels deep) are what a
JSON encoder would never produce.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from tinker.local import LocalServer

from .fake_backend import FakeBackend
from .wire_client import API, WireClient

HUGE = "1" * 5000  # a 5,000-digit integer
BIG = str(10**400)  # 10**400 written out
OVER_INT64 = str(2**70)


class Ids:
    """A session, a training run and a sampler to aim the hostile bodies at."""

    def __init__(self, client: WireClient) -> None:
        self.session = client.session()
        self.model = client.model(self.session)
        self.sampler = client.ok(
            "create_sampling_session",
            {"session_id": self.session, "sampling_session_seq_id": 0, "base_model": "fake/tiny"},
        )["sampling_session_id"]


@pytest.fixture
def ids(client: WireClient) -> Ids:
    return Ids(client)


def _fwdbwd(ids: Ids, data: str = "", config: str = "null") -> str:
    datum = (
        '{"model_input": {"chunks": [{"tokens": [1, 2, 3]}]}, "loss_fn_inputs": '
        '{"target_tokens": {"data": [2, 3, 4], "dtype": "int64", "shape": [3]}'
        f"{data}}}}}"
    )
    return (
        f'{{"model_id": "{ids.model}", "seq_id": 1, "forward_backward_input": '
        f'{{"data": [{datum}], "loss_fn": "cross_entropy", "loss_fn_config": {config}}}}}'
    )


def _sample(ids: Ids, params: str = '"max_tokens": 2', extra: str = "") -> str:
    return (
        f'{{"sampling_session_id": "{ids.sampler}", "seq_id": 1, "num_samples": 1, '
        f'"prompt": {{"chunks": [{{"tokens": [1, 2]}}]}}, "sampling_params": {{{params}}}{extra}}}'
    )


Body = Callable[[Ids], str]
CASES: list[tuple[str, str, Body, str]] = [
    (
        "nesting 10,000 levels",
        "create_session",
        lambda ids: '{"tags": ' + "[" * 10_000 + "]" * 10_000 + "}",
        "nested deeper than 32 levels",
    ),
    (
        "nesting 40 levels",
        "create_session",
        lambda ids: '{"user_metadata": ' + '{"a": ' * 40 + "1" + "}" * 41,
        "user_metadata.a.a.a",
    ),
    (
        "a 5,000-digit integer",
        "create_model",
        lambda ids: (
            f'{{"session_id": "{ids.session}", "model_seq_id": {HUGE}, "base_model": "fake/tiny"}}'
        ),
        "model_seq_id: a number of 5000 characters is out of range",
    ),
    (
        "model_seq_id 2**70",
        "create_model",
        lambda ids: (
            f'{{"session_id": "{ids.session}", "model_seq_id": {OVER_INT64}, '
            '"base_model": "fake/tiny"}'
        ),
        f"model_seq_id: {OVER_INT64} is out of range (64-bit integers)",
    ),
    (
        "LoRA seed 2**70",
        "create_model",
        lambda ids: (
            f'{{"session_id": "{ids.session}", "model_seq_id": 5, '
            f'"base_model": "fake/tiny", "lora_config": {{"rank": 2, "seed": {OVER_INT64}}}}}'
        ),
        "lora_config.seed",
    ),
    (
        "a lone surrogate in a session id",
        "create_sampling_session",
        lambda ids: (
            '{"session_id": "\\ud800", "sampling_session_seq_id": 1, "base_model": "fake/tiny"}'
        ),
        "session_id: contains a lone surrogate (U+D800)",
    ),
    (
        "a lone surrogate in a request id",
        "retrieve_future",
        lambda ids: '{"request_id": "x\\udfff"}',
        "request_id: contains a lone surrogate (U+DFFF)",
    ),
    (
        "a lone surrogate in a metadata key",
        "create_session",
        lambda ids: '{"user_metadata": {"\\udc80": 1}}',
        "user_metadata key '\\udc80': contains a lone surrogate",
    ),
    (
        "NUL in a model id",
        "get_info",
        lambda ids: '{"model_id": "abc\\u0000def"}',
        "model_id: contains a NUL character",
    ),
    (
        "a 100,000-character model name",
        "create_model",
        lambda ids: (
            f'{{"session_id": "{ids.session}", "model_seq_id": 6, "base_model": "{"m" * 100_000}"}}'
        ),
        "base_model: 100000 characters, more than the 512 allowed",
    ),
    (
        "10**400 temperature",
        "asample",
        lambda ids: _sample(ids, f'"max_tokens": 2, "temperature": {BIG}'),
        "sampling_params.temperature: a number of 401 characters is out of range",
    ),
    (
        "1e400 temperature",
        "asample",
        lambda ids: _sample(ids, '"max_tokens": 2, "temperature": 1e400'),
        "sampling_params.temperature: inf is not a finite number",
    ),
    (
        "NaN top_p",
        "asample",
        lambda ids: _sample(ids, '"max_tokens": 2, "top_p": NaN'),
        "sampling_params.top_p: nan is not a finite number",
    ),
    (
        "sampling seed 2**70",
        "asample",
        lambda ids: _sample(ids, f'"max_tokens": 2, "seed": {OVER_INT64}'),
        "sampling_params.seed",
    ),
    (
        "20,000 samples",
        "asample",
        lambda ids: _sample(ids).replace('"num_samples": 1', '"num_samples": 20000'),
        "num_samples: 20000 is out of range (1 to 128)",
    ),
    (
        "max_tokens of a million",
        "asample",
        lambda ids: _sample(ids, '"max_tokens": 1000000'),
        "sampling_params.max_tokens: 1000000 is out of range (0 to 32768)",
    ),
    (
        "too many sample tokens",
        "asample",
        lambda ids: _sample(ids, '"max_tokens": 1000').replace(
            '"num_samples": 1', '"num_samples": 100'
        ),
        "100 x (2 + 1000) = 100200 tokens is over the limit of 32768",
    ),
    (
        "sample seq_id 2**70",
        "asample",
        lambda ids: _sample(ids).replace('"seq_id": 1', f'"seq_id": {OVER_INT64}'),
        "seq_id",
    ),
    (
        "10**400 learning rate",
        "optim_step",
        lambda ids: (
            f'{{"model_id": "{ids.model}", "seq_id": 1, "adam_params": {{"learning_rate": {BIG}}}}}'
        ),
        "adam_params.learning_rate",
    ),
    (
        "1e400 learning rate",
        "optim_step",
        lambda ids: (
            f'{{"model_id": "{ids.model}", "seq_id": 1, "adam_params": {{"learning_rate": 1e400}}}}'
        ),
        "adam_params.learning_rate: inf is not a finite number",
    ),
    (
        "1e400 in the loss config",
        "forward_backward",
        lambda ids: _fwdbwd(ids, config='{"clip_low_threshold": 1e400}'),
        "forward_backward_input.loss_fn_config.clip_low_threshold: inf",
    ),
    (
        "10**400 in the loss config",
        "forward_backward",
        lambda ids: _fwdbwd(ids, config=f'{{"clip_low_threshold": {BIG}}}'),
        "forward_backward_input.loss_fn_config.clip_low_threshold",
    ),
    (
        "a token id of 2**70",
        "forward_backward",
        lambda ids: _fwdbwd(ids).replace("[1, 2, 3]", f"[1, {OVER_INT64}, 3]"),
        "forward_backward_input.data[0].model_input.chunks[0].tokens[1]",
    ),
    (
        "10**400 ttl_seconds",
        "save_weights",
        lambda ids: (
            f'{{"model_id": "{ids.model}", "seq_id": 1, "path": "c", "ttl_seconds": {BIG}}}'
        ),
        "ttl_seconds",
    ),
    (
        "1e400 ttl_seconds",
        "save_weights",
        lambda ids: (
            f'{{"model_id": "{ids.model}", "seq_id": 1, "path": "c", "ttl_seconds": 1e400}}'
        ),
        "ttl_seconds: inf is not a finite number",
    ),
    (
        "a ttl of a trillion seconds",
        "save_weights_for_sampler",
        lambda ids: (
            f'{{"model_id": "{ids.model}", "seq_id": 1, "path": "c", "ttl_seconds": 1000000000000}}'
        ),
        "ttl_seconds: 1000000000000 is out of range (1 to 3153600000)",
    ),
]


@pytest.mark.parametrize(
    ("endpoint", "body", "needle"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_hostile_values_are_refused_with_400_naming_the_field(
    client: WireClient,
    ids: Ids,
    server: LocalServer,
    backend: FakeBackend,
    endpoint: str,
    body: Body,
    needle: str,
) -> None:
    calls = list(backend.calls)
    pending = server.engine.futures.pending_count()
    response = client.http.post(
        f"{client.url}{API}/{endpoint}",
        data=body(ids).encode("utf-8", "surrogatepass"),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 400, response.text[:500]
    assert needle in response.json()["detail"], response.json()["detail"][:500]
    assert len(response.content) < 1000  # the value is not echoed back at length
    assert server.engine.futures.pending_count() == pending  # nothing was accepted
    assert backend.calls == calls


def test_a_loss_weight_beyond_float32_is_refused_by_its_type(
    client: WireClient, ids: Ids, server: LocalServer, backend: FakeBackend
) -> None:
    calls = list(backend.calls)
    pending = server.engine.futures.pending_count()
    weights = ', "weights": {"data": [1.0, 1e39, 1.0], "dtype": "float32", "shape": [3]}'
    response = client.http.post(
        f"{client.url}{API}/forward_backward",
        data=_fwdbwd(ids, weights).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 422, response.text[:500]
    assert response.json()["detail"].endswith(
        "TensorData.data: a value does not fit float32 @ ForwardBackwardRequest."
        "forward_backward_input.data[0].loss_fn_inputs['weights']"
    )
    assert server.engine.futures.pending_count() == pending
    assert backend.calls == calls


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("offset=100000000000000000000", "offset: 100000000000000000000 is out of range"),
        (f"offset={HUGE}", "offset: a number of 5000 characters is out of range"),
        ("offset=-1", "offset: -1 is out of range"),
        ("limit=-5", "limit: -5 is out of range"),
        ("limit=ten", "Query parameter 'limit' must be an integer, got 'ten'"),
        ("limit=1%002", "Query parameter 'limit' must be an integer"),
    ],
)
@pytest.mark.parametrize("route", ["training_runs", "checkpoints", "sessions"])
def test_hostile_query_numbers_are_400(
    client: WireClient, route: str, query: str, needle: str
) -> None:
    response = client.get(f"{route}?{query}")
    assert response.status_code == 400, response.text[:300]
    assert needle in response.json()["detail"]


def test_a_huge_limit_gives_one_full_page(client: WireClient) -> None:
    response = client.get("checkpoints?limit=9223372036854775807")
    assert response.status_code == 200
    assert response.json()["cursor"]["limit"] == 1000


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("sessions/" + "s" * 600, "session_id: 600 characters, more than the 512 allowed"),
        ("samplers/abc%00def", "sampler_id: contains a NUL character"),
        ("sessions/%ED%A0%80", "not found"),  # invalid UTF-8 is decoded with replacements
    ],
)
def test_hostile_path_parameters_are_4xx(client: WireClient, path: str, needle: str) -> None:
    response = client.get(path)
    assert response.status_code in (400, 404), response.text[:300]
    assert needle in response.json()["detail"]


def test_a_ttl_of_1e400_is_refused_on_the_ttl_route(client: WireClient, ids: Ids) -> None:
    client.run("save_weights", {"model_id": ids.model, "seq_id": 1, "path": "keep"})
    response = requests.put(
        f"{client.url}{API}/training_runs/{ids.model}/checkpoints/weights/keep/ttl",
        data=b'{"ttl_seconds": 1e400}',
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "ttl_seconds: inf is not a finite number."
    listed = client.get(f"training_runs/{ids.model}/checkpoints").json()["checkpoints"]
    assert [c["expires_at"] for c in listed] == [None]
