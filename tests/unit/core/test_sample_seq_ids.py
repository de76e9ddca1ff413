"""SampleSeqIds: which seq_id each attempt of one sample is sent with."""

from __future__ import annotations

import itertools

from tinker._futures import APIFuture
from tinker._limits import SampleSeqIds
from tinker.errors import InternalServerError, RateLimitError


def _failed(error: Exception) -> APIFuture[object]:
    future: APIFuture[object] = APIFuture()
    future.set_exception(error)
    return future


def _rate_limited() -> RateLimitError:
    return RateLimitError("429", status_code=429, response=None, body=None)


def test_today_a_429_resubmit_keeps_the_seq_id_and_other_failures_take_a_new_one() -> None:
    seq_ids = SampleSeqIds(itertools.count(7).__next__, keep_after_429=True)
    assert seq_ids.take() == 7
    seq_ids.attempt_done(_failed(_rate_limited()))
    assert seq_ids.take() == 7
    seq_ids.attempt_done(_failed(_rate_limited()))
    assert seq_ids.take() == 7
    seq_ids.attempt_done(
        _failed(InternalServerError("503", status_code=503, response=None, body=None))
    )
    assert seq_ids.take() == 8


def test_in_the_0_5_1_protocol_every_attempt_takes_a_new_seq_id() -> None:
    seq_ids = SampleSeqIds(itertools.count().__next__, keep_after_429=False)
    assert seq_ids.take() == 0
    seq_ids.attempt_done(_failed(_rate_limited()))
    assert seq_ids.take() == 1
