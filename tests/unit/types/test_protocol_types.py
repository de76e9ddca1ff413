"""The 0.38 protocol plumbing types: wire bodies as the 0.38 protocol defines them, discriminators
always sent, the two forms of load_weights."""

from __future__ import annotations

import pytest

from tinker import _wire, types


def test_batch_poller_bodies_round_trip() -> None:
    request = {
        "target": {
            "type": "sampling_session",
            "sampling_session_id": "s:sample:0",
            "cloned_sampler_id": 3,
        },
        "prev_cursor": 7,
        "timeout": 0.0,
        "retrieved_request_ids": ["a", "b"],
    }
    parsed = _wire.structure(request, types.FuturesRetrieveRequest)
    assert parsed.target.cloned_sampler_id == 3 and parsed.timeout == 0.0
    assert _wire.unstructure(parsed) == request
    built = types.SamplingSessionFuturesTarget(sampling_session_id="s", cloned_sampler_id=0)
    assert _wire.unstructure(built) == {
        "type": "sampling_session",
        "sampling_session_id": "s",
        "cloned_sampler_id": 0,
    }
    answer = types.FuturesRetrieveResponse(
        completions=[types.FutureFinished(request_id="a"), types.FutureFailed(request_id="b")],
        cursor=9,
    )
    wire = {
        "completions": [
            {"state": "finished", "request_id": "a"},
            {"state": "failed", "request_id": "b"},
        ],
        "cursor": 9,
    }
    assert _wire.unstructure(answer) == wire  # the discriminator is sent though defaulted
    again = _wire.structure(wire, types.FuturesRetrieveResponse)
    assert [type(c) for c in again.completions] == [types.FutureFinished, types.FutureFailed]
    with pytest.raises(_wire.WireFormatError, match="unknown completion state 'done'"):
        _wire.structure(
            {"completions": [{"state": "done", "request_id": "x"}], "cursor": 1},
            types.FuturesRetrieveResponse,
        )


def test_start_up_answers_default_every_field() -> None:
    empty = _wire.structure({}, types.ClientConfigResponse)
    assert (empty.pjwt_auth_enabled, empty.fwdbwd_max_chunk_len, empty.parallel_fwdbwd_chunks) == (
        False,
        1024,
        True,
    )
    assert (
        _wire.structure({"extra": 1}, types.ClientDynamicConfigResponse).refresh_interval_sec == 300
    )
    assert _wire.unstructure(types.FutureCompleteMetadata(response_payload_size=5)) == {
        "status": "complete_metadata",
        "response_payload_size": 5,
    }


def test_finish_and_join_bodies() -> None:
    finish = _wire.structure(
        {"reason": {"type": "interrupted"}, "detail": None}, types.SessionFinishRequest
    )
    assert finish.reason.type == "interrupted" and finish.detail is None
    with pytest.raises(_wire.WireFormatError):
        _wire.structure({"reason": {"type": "crashed"}}, types.SessionFinishRequest)
    joined = _wire.structure({"client_counter": 3}, types.JoinSamplingSessionResponse)
    assert joined.client_counter == 3 and joined.type is None


def test_load_weights_takes_one_of_its_two_forms() -> None:
    onto = types.LoadWeightsRequest(model_id="s:train:0", path="tinker://r/weights/a", seq_id=2)
    assert _wire.unstructure(onto) == {
        "model_id": "s:train:0",
        "path": "tinker://r/weights/a",
        "seq_id": 2,
    }
    wire = {
        "session_id": "sess1",
        "model_seq_id": 1,
        "path": "tinker://r/weights/a",
        "optimizer": False,
        "type": "load_weights",
    }
    creates = _wire.structure(wire, types.LoadWeightsRequest)
    assert (creates.model_id, creates.session_id, creates.model_seq_id) == (None, "sess1", 1)
    with pytest.raises(ValueError, match="needs model_id"):
        types.LoadWeightsRequest(path="tinker://r/weights/a", session_id="s")
    with pytest.raises(ValueError, match="not both"):
        types.LoadWeightsRequest(
            model_id="m", path="tinker://r/weights/a", session_id="s", model_seq_id=0
        )


def test_submit_and_poll_fields_of_0_38() -> None:
    future = _wire.structure(
        {"request_id": "r", "sample_sequence_ids": ["r/0", "r/1"]}, types.UntypedAPIFuture
    )
    assert future.sample_sequence_ids == ["r/0", "r/1"]
    assert types.FutureRetrieveRequest(request_id="r").allow_metadata_only is False
    assert _wire.unstructure(
        types.FutureRetrieveRequest(request_id="r", allow_metadata_only=True)
    ) == {
        "request_id": "r",
        "allow_metadata_only": True,
    }
