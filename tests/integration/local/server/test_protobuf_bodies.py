"""forward_backward as 0.38 clients send it: protobuf bodies (zstd or not, forward_only),
chunks submitted concurrently and out of order, and what bad bodies get (400, 415, never 500)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tinker import types
from tinker._wire import compression, proto
from tinker.local.server import settings

from .fake_backend import FakeBackend
from .wire_client import WireClient, fwdbwd


def _datum(tokens: list[int]) -> types.Datum:
    return types.Datum(
        model_input=types.ModelInput.from_ints(tokens),
        loss_fn_inputs={"target_tokens": [*tokens[1:], 0], "weights": [1.0] * len(tokens)},
    )


def _call(
    model_id: str, seq_id: int, *, forward_only: bool = False, **config: float | str
) -> proto.ForwardBackwardCall:
    return proto.ForwardBackwardCall(
        model_id,
        seq_id,
        [_datum([1, 2, 3]), _datum([4, 5])],
        "cross_entropy",
        config or None,
        forward_only,
    )


@pytest.mark.parametrize("zstd", [False, True], ids=["plain", "zstd"])
def test_protobuf_forward_backward_matches_the_json_request(client: WireClient, zstd: bool) -> None:
    json_model = client.model(client.session())
    proto_model = client.model(client.session())
    data = [
        {
            "model_input": {"chunks": [{"tokens": d.model_input.to_ints()}]},
            "loss_fn_inputs": {k: v.model_dump() for k, v in d.loss_fn_inputs.items()},
        }
        for d in _call(json_model, 1).data
    ]
    as_json = client.run("forward_backward", fwdbwd(json_model, 1, data))
    response = client.poll_proto(client.submit_proto(_call(proto_model, 1), zstd=zstd))
    assert response.headers["Content-Type"] == proto.CONTENT_TYPE
    output = proto.decode_forward_backward_output(response.content)
    assert output.loss_fn_output_type == as_json["loss_fn_output_type"]
    assert [o["logprobs"].tolist() for o in output.loss_fn_outputs] == [
        o["logprobs"]["data"] for o in as_json["loss_fn_outputs"]
    ]
    assert output.metrics["loss:sum"] == as_json["metrics"]["loss:sum"]


def test_forward_only_computes_no_gradients(client: WireClient, backend: FakeBackend) -> None:
    model_id = client.model(client.session())
    client.forward_proto(_call(model_id, 1, forward_only=True))
    assert backend.calls[-1] == "forward"
    client.forward_proto(_call(model_id, 2))
    assert backend.calls[-1] == "forward_backward"


def test_v2_config_entries_win_and_strings_reach_the_backend(client: WireClient) -> None:
    """A string config value travels only in loss_fn_config_v2; the fake refuses "explode"."""
    model_id = client.model(client.session())
    request_id = client.submit_proto(_call(model_id, 1, explode="yes"))
    failure = client.result(request_id)
    assert failure == {
        "error": "Internal error: RuntimeError: the fake backend exploded",
        "category": "server",
    }


def test_chunks_submitted_concurrently_out_of_order_run_in_seq_id_order(client: WireClient) -> None:
    """As 0.38 clients with parallel_fwdbwd_chunks: chunks 2..n at once, then chunk 1 last."""
    model_id = client.model(client.session())
    ids: dict[int, str] = {}

    def submit(seq_id: int) -> None:
        with WireClient(client.url) as own:
            ids[seq_id] = own.submit_proto(_call(model_id, seq_id))

    later = [threading.Thread(target=submit, args=(seq,)) for seq in (2, 3, 4, 5)]
    for thread in later:
        thread.start()
    for thread in later:
        thread.join()
    submit(1)
    cycles = {
        seq: client.forward_proto_result(ids[seq]).metrics["clock_cycle:unique"] for seq in ids
    }
    assert sorted(cycles, key=cycles.__getitem__) == [1, 2, 3, 4, 5]
    # A resubmitted chunk (same seq_id) is a retry: the same future, run once.
    assert client.submit_proto(_call(model_id, 3)) == ids[3]


def test_bad_protobuf_bodies_get_400_saying_what_is_wrong(client: WireClient) -> None:
    model_id = client.model(client.session())
    body = proto.encode_forward_backward_request(_call(model_id, 1))
    truncated = client.post_proto("forward_backward", body[:-3])
    assert truncated.status_code == 400
    assert truncated.json()["detail"].startswith(
        "The protobuf body is not a valid ForwardBackwardRequest: "
    )
    assert int(truncated.headers["Content-Length"]) > 0  # never a bare 400
    nan = types.Datum(
        model_input=types.ModelInput.from_ints([1, 2]),
        loss_fn_inputs={"target_tokens": [2, 0], "weights": np.array([np.nan, 1.0], np.float32)},
    )
    bad = proto.ForwardBackwardCall(model_id, 1, [nan], "cross_entropy")
    refused = client.post_proto("forward_backward", proto.encode_forward_backward_request(bad))
    assert refused.status_code == 400
    assert "loss_fn_inputs" in refused.json()["detail"] and "NaN" in refused.json()["detail"]
    image = types.Datum(
        model_input=types.ModelInput(
            chunks=[types.ImageChunk(data=b"\x89PNG", format="png", height=1, width=1, tokens=1)]
        ),
        loss_fn_inputs={"target_tokens": [0], "weights": [1.0]},
    )
    with_image = proto.ForwardBackwardCall(model_id, 1, [image], "cross_entropy")
    answer = client.post_proto(
        "forward_backward", proto.encode_forward_backward_request(with_image)
    )
    assert answer.status_code == 400
    assert answer.json()["detail"] == (
        "datum 0: ImageChunk chunks are not supported by the local text models; send token "
        "chunks only."
    )


def test_bad_compressed_bodies_get_400_or_415(client: WireClient) -> None:
    model_id = client.model(client.session())
    body = proto.encode_forward_backward_request(_call(model_id, 1))
    frame = compression.compress(body)
    cut = client.http.post(
        f"{client.url}/api/v1/forward_backward",
        data=frame[:-4],
        headers={"Content-Type": proto.CONTENT_TYPE, "Content-Encoding": "zstd"},
    )
    assert cut.status_code == 400 and "cannot be decompressed" in cut.json()["detail"]
    bomb = compression.compress(bytes(settings.MAX_DECOMPRESSED_BODY_BYTES + 1))
    assert len(bomb) < 10_000
    expanded = client.http.post(
        f"{client.url}/api/v1/forward_backward",
        data=bomb,
        headers={"Content-Type": proto.CONTENT_TYPE, "Content-Encoding": "zstd"},
    )
    assert expanded.status_code == 400
    assert f"more than {settings.MAX_DECOMPRESSED_BODY_BYTES} bytes" in expanded.json()["detail"]
    gzip = client.http.post(
        f"{client.url}/api/v1/forward_backward",
        data=body,
        headers={"Content-Type": proto.CONTENT_TYPE, "Content-Encoding": "br"},
    )
    assert gzip.status_code == 415 and "'br' is not accepted" in gzip.json()["detail"]


def test_protobuf_goes_only_where_the_protocol_has_it(client: WireClient) -> None:
    answer = client.post_proto("optim_step", b"\x0a\x01x")
    assert answer.status_code == 415
    assert (
        answer.json()["detail"]
        == "This endpoint takes JSON bodies (only forward_backward takes protobuf)."
    )


def test_results_json_cannot_hold_are_sent_as_a_failure_in_json_and_as_is_in_protobuf(
    client: WireClient,
) -> None:
    model_id = client.model(client.session())
    request_id = client.submit_proto(_call(model_id, 1, diverge=1.0))
    as_json = client.result(request_id)
    assert as_json["category"] == "server" and "JSON cannot carry" in as_json["error"]
    output = client.forward_proto_result(request_id)
    assert np.isnan(output.loss_fn_outputs[0]["logprobs"].to_numpy()).all()
