"""Fuzzing every route of the local server with hypothesis: never a 5xx, never a hang.

Each example is one request to a route of server.routes.ROUTES: path parameters that are live
ids or hostile text, a query string of hostile numbers and strings, and a body in one of the
formats the route is fuzzed with (BODY_FORMATS: JSON for every route; protobuf, plain or
zstd-compressed, for forward_backward): random JSON, a valid body with one field replaced by a
hostile value, nesting far beyond the limit, or a valid protobuf body truncated, flipped or
extended (and its zstd frame likewise, or a small frame that expands past the limit). The
answer must come within REQUEST_TIMEOUT and be no 5xx, and an accepted future must resolve
without a server-side failure.

The default profile sends a few requests per route (seconds); TINKER_OPTIN=1 sends hundreds.
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinker.local
from tinker import types
from tinker._wire import compression, proto
from tinker.local.server.routes import ROUTES

from .conftest import API_KEY
from .target import Target

EXAMPLES_PER_ROUTE = 200 if os.environ.get("TINKER_OPTIN") == "1" else 6
REQUEST_TIMEOUT = 30.0
FIELD = re.compile(r"\(\?P<(\w+)>[^)]*\)")


@attrs.frozen
class Raw:
    """JSON text written as is: number literals no encoder writes, escaped lone surrogates."""

    text: str


def _dump(value: Any) -> str:
    """JSON text of a tree whose leaves may be Raw."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_dump(item) for item in value) + "]"
    return json.dumps(value)


HOSTILE_LEAVES = st.sampled_from(
    [
        Raw("1" * 5000),
        Raw(str(10**400)),
        Raw("1e400"),
        Raw("-1e400"),
        Raw("NaN"),
        Raw("Infinity"),
        Raw("1." + "0" * 500 + "1"),
        Raw('"\\ud800"'),
        Raw('"a\\udfffb"'),
        Raw('"\\u0000"'),
        2**63,
        -(2**63) - 1,
        2**70,
        -1,
        0,
        20_000,
        "x" * 70_000,
        "",
        "../../etc/passwd",
        "tinker://../weights/x",
    ]
)
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=20)
    | HOSTILE_LEAVES
)
JSON = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    server = tinker.local.serve(
        data_dir=tmp_path_factory.mktemp("fuzz"),
        api_key=API_KEY,
        long_poll_seconds=0.2,
        seq_gap_seconds=0.1,  # fuzzed seq_ids leave gaps: do not wait long for them
    )
    try:
        aimed = Target(server)
        yield aimed
        assert aimed.healthy()  # still serving after everything it was sent
    finally:
        server.close()


def _valid_body(name: str, target: Target) -> dict[str, Any]:
    """A body the route accepts (mutations start from here)."""
    prompt = {"chunks": [{"type": "encoded_text", "tokens": [1, 2, 3]}]}
    datum = {
        "model_input": prompt,
        "loss_fn_inputs": {
            "target_tokens": {"data": [2, 3, 4], "dtype": "int64", "shape": [3]},
            "weights": {"data": [1.0, 1.0, 1.0], "dtype": "float32", "shape": [3]},
        },
    }
    batch = {"data": [datum], "loss_fn": "cross_entropy"}
    model = {"model_id": target.model_id, "seq_id": None}
    bodies: dict[str, dict[str, Any]] = {
        "create_session": {"tags": ["t"], "user_metadata": {"k": "v"}, "sdk_version": "0"},
        "session_heartbeat": {"session_id": target.session_id},
        "create_sampling_session": {
            "session_id": target.session_id,
            "sampling_session_seq_id": 1,
            "model_path": target.checkpoint,
        },
        "create_model": {
            "session_id": target.session_id,
            "model_seq_id": 1,
            "base_model": "tinker-local/tiny",
            "lora_config": {"rank": 2, "seed": 3},
        },
        "get_info": {"model_id": target.model_id},
        "forward": {**model, "forward_input": batch},
        "forward_backward": {**model, "forward_backward_input": batch},
        "optim_step": {**model, "adam_params": {"learning_rate": 1e-3}},
        "save_weights": {**model, "path": "fuzz", "ttl_seconds": 3600},
        "load_weights": {**model, "path": target.checkpoint, "optimizer": True},
        "save_weights_for_sampler": {**model, "path": "fuzz-sampler"},
        "unload_model": {"model_id": "nobody:train:0"},  # the target's run stays loaded
        "asample": {
            "sampling_session_id": target.sampler_id,
            "num_samples": 2,
            "prompt": prompt,
            "sampling_params": {"max_tokens": 3, "seed": 1, "temperature": 0.7},
            "prompt_logprobs": True,
        },
        "retrieve_future": {"request_id": f"{target.model_id}:1"},
        "telemetry": {"events": [], "session_id": target.session_id},
        "client_config": {"sdk_version": "0.38.0"},
        "dynamic_config": {"sdk_version": "0.38.0"},
        "finish_session": {"reason": {"type": "success"}, "detail": None},
        "join_sampling_session": {"sampling_session_id": target.sampler_id},
        "retrieve_futures": {
            "target": {
                "type": "sampling_session",
                "sampling_session_id": target.sampler_id,
                "cloned_sampler_id": 0,
            },
            "prev_cursor": 0,
            "timeout": 0.0,
            "retrieved_request_ids": [],
        },
        "cancel_future": {"request_id": f"{target.sampler_id}:0"},
        "save_weights_external": {**model, "path": "fuzz-export", "ttl_seconds": 3600},
        "copy_weights": {"source_path": target.checkpoint, "destination_project_id": "fuzz"},
        "search_sessions": {"display_name": "x", "statuses": [{"type": "active"}], "limit": 5},
        "assign_session_project": {"project_id": "fuzz"},
        "create_custom_loss": {
            "session_id": target.session_id,
            "custom_loss_seq_id": 0,
            "name": "loss",
            "inputs": [{"name": "logprobs", "rank": 1}],
            "graph": {"format": 1, "nodes": []},
        },
        "weights_info": {"tinker_path": target.checkpoint},
        "set_checkpoint_ttl": {"ttl_seconds": 3600},
    }
    return bodies.get(name, {})


def _mutated(draw: st.DrawFn, body: Any) -> Any:
    """`body` with one value, anywhere inside it, replaced by a hostile or random one."""
    if isinstance(body, dict) and body and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(body)))
        return {**body, key: _mutated(draw, body[key])}
    if isinstance(body, list) and body and draw(st.booleans()):
        index = draw(st.integers(0, len(body) - 1))
        return [*body[:index], _mutated(draw, body[index]), *body[index + 1 :]]
    return draw(JSON)


def _json_body(draw: st.DrawFn, name: str, target: Target) -> tuple[bytes, str]:
    choice = draw(st.sampled_from(["mutated", "random", "deep", "bytes"]))
    if choice == "mutated":
        text = _dump(_mutated(draw, _valid_body(name, target)))
    elif choice == "random":
        text = _dump(draw(JSON))
    elif choice == "deep":
        depth = draw(st.sampled_from([33, 100, 5000, 100_000]))
        text = '{"data": ' + "[" * depth + "]" * depth + "}"
    else:
        return draw(st.binary(max_size=64)), "application/json"
    return text.encode("utf-8", "surrogatepass"), "application/json"


def _protobuf_body(draw: st.DrawFn, name: str, target: Target) -> tuple[bytes, str]:
    """A forward_backward request as protobuf, then truncated, flipped or extended."""
    datum = types.Datum(
        model_input=types.ModelInput.from_ints([1, 2, 3]),
        loss_fn_inputs={"target_tokens": [2, 3, 4], "weights": [1.0, 1.0, 1.0]},
    )
    seq_id = draw(st.integers(0, 2**31 - 1))  # int32 on the wire
    call = proto.ForwardBackwardCall(target.model_id, seq_id, [datum], "cross_entropy")
    body = bytearray(proto.encode_forward_backward_request(call))
    index = draw(st.integers(0, len(body) - 1))
    edit = draw(st.sampled_from(["keep", "truncate", "flip", "insert"]))
    if edit == "truncate":
        del body[index:]
    elif edit == "flip":
        body[index] ^= draw(st.integers(1, 255))
    elif edit == "insert":
        body[index:index] = draw(st.binary(min_size=1, max_size=16))
    return bytes(body), proto.CONTENT_TYPE


def _zstd_body(draw: st.DrawFn, name: str, target: Target) -> tuple[bytes, str]:
    """A protobuf body as a zstd frame, then damaged; or a bomb (a tiny frame of 80 MB)."""
    if draw(st.booleans()):
        return compression.compress(bytes(80 * 1024 * 1024)), proto.CONTENT_TYPE
    body, content_type = _protobuf_body(draw, name, target)
    frame = bytearray(compression.compress(body))
    index = draw(st.integers(0, len(frame) - 1))
    edit = draw(st.sampled_from(["keep", "truncate", "flip"]))
    if edit == "truncate":
        del frame[index:]
    elif edit == "flip":
        frame[index] ^= draw(st.integers(1, 255))
    return bytes(frame), content_type


#: How bodies go on the wire (and their Content-Encoding); the routes fuzzed with each format
#: besides JSON.
BODY_FORMATS: dict[str, Callable[[st.DrawFn, str, Target], tuple[bytes, str]]] = {
    "json": _json_body,
    "protobuf": _protobuf_body,
    "zstd": _zstd_body,
}
ENCODINGS = {"zstd": "zstd"}
EXTRA_FORMATS: dict[str, tuple[str, ...]] = {"forward_backward": ("protobuf", "zstd")}


def _parameter(draw: st.DrawFn, field: str, name: str, target: Target) -> str:
    live = {
        "run": [target.model_id, target.model_id.replace(":", "_")],
        "ckpt": ["weights/target", "sampler_weights/target", "weights/..", "optimizer/x"],
        # A finish ends its session: fuzz it on one kept for that.
        "session": [target.spare_session_id if name == "finish_session" else target.session_id],
        "sampler": [target.sampler_id],
        "token": ["abc", "A" * 300],
    }[field]
    if draw(st.booleans()):
        value = draw(st.sampled_from(live))
        return urllib.parse.quote(value, safe="/" if field == "ckpt" else "")
    raw = draw(st.sampled_from(["%00", "%ED%A0%80", "%FF", "%2e%2e", "..", "s" * 600]))
    text = urllib.parse.quote(draw(st.text(min_size=1, max_size=12)), safe="")
    return draw(st.sampled_from([raw, text]))


QUERY_VALUES = st.sampled_from(
    ["", "-1", "0", "5", "1000", "9223372036854775807", "9223372036854775808", "1" * 5000]
) | st.text(max_size=8)


@pytest.mark.parametrize(
    ("method", "pattern", "name", "family", "era"), ROUTES, ids=[r[2] for r in ROUTES]
)
@settings(
    max_examples=EXAMPLES_PER_ROUTE,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=EXAMPLES_PER_ROUTE < 100,
)
@given(data=st.data())
def test_every_route_answers_hostile_requests_without_a_server_error(
    target: Target,
    method: str,
    pattern: str,
    name: str,
    family: str,
    era: str,
    data: st.DataObject,
) -> None:
    draw = data.draw
    path = FIELD.sub(lambda match: _parameter(draw, match.group(1), name, target), pattern)
    query = draw(
        st.dictionaries(st.sampled_from(["limit", "offset", "x"]), QUERY_VALUES, max_size=3)
    )
    fmt = draw(st.sampled_from(["json", *EXTRA_FORMATS.get(name, ())]))
    body, content_type = BODY_FORMATS[fmt](draw, name, target)
    headers = {"Content-Type": content_type}
    if fmt in ENCODINGS:
        headers["Content-Encoding"] = ENCODINGS[fmt]
    if method == "GET" and draw(st.booleans()):
        body = b""
    url = f"{target.url}/api/v1/{path}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    reply = target.http.request(method, url, data=body, headers=headers, timeout=REQUEST_TIMEOUT)
    assert reply.status_code < 500, (method, url[:200], reply.text[:300])
    if reply.status_code == 200 and reply.headers.get("Content-Type") == "application/json":
        answer = reply.json()
        submitted = isinstance(answer, dict) and isinstance(answer.get("request_id"), str)
        if submitted and answer.get("type") != "try_again":
            outcome = target.result(answer["request_id"])
            assert outcome.get("category") != "server", outcome
