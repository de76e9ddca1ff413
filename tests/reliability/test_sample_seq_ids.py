"""Sample seq_ids of re-attached and forked SamplingClients, and the server's asample de-dup key."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from typing import Any

import pytest
import requests

from tinker import _wire, types

from .runs import MODEL

# The local server speaks today's protocol and hands out clone ids (join_sampling_session):
# copies number their samples clone_id x 1e9 + n.
CLONE_STRIDE = 1_000_000_000


@pytest.fixture
def sampler(make_server: Callable[..., Any], make_client: Callable[..., Any]) -> Any:
    server = make_server()
    return make_client(server.url).create_sampling_client(base_model=MODEL)


def test_original_counts_from_zero_and_reattached_copies_from_their_clone_ids(
    sampler: Any,
) -> None:
    assert [sampler._next_seq_id() for _ in range(3)] == [0, 1, 2]
    copies = [pickle.loads(pickle.dumps(sampler)) for _ in range(2)]
    firsts = [copy._next_seq_id() for copy in copies]
    assert firsts == [CLONE_STRIDE, 2 * CLONE_STRIDE]
    assert copies[0]._next_seq_id() == firsts[0] + 1
    assert sampler._next_seq_id() == 3  # the original is unaffected


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_draws_from_another_range(sampler: Any) -> None:
    assert sampler._next_seq_id() == 0
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report the inherited client's next seq_id, then leave at once
        os.close(read)
        os.write(write, str(sampler._next_seq_id()).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child_seq = int(pipe.read())
    os.waitpid(pid, 0)
    # No request from a fork hook: the child picks a clone id of its own.
    assert child_seq >= CLONE_STRIDE and child_seq % CLONE_STRIDE == 0
    assert sampler._next_seq_id() == 1


def _asample(url: str, sampler_id: str, seq_id: int, key: str | None, seed: int) -> str:
    body = types.SampleRequest(
        num_samples=1,
        prompt=types.ModelInput.from_ints([1, 2, 3]),
        sampling_params=types.SamplingParams(max_tokens=4, seed=seed),
        sampling_session_id=sampler_id,
        seq_id=seq_id,
    )
    headers = {"X-API-Key": "k", "Content-Type": "application/json"}
    if key is not None:
        headers["X-Idempotency-Key"] = key
    reply = requests.post(
        f"{url}/api/v1/asample", data=_wire.dumps(body), headers=headers, timeout=10
    )
    assert reply.status_code == 200, reply.text
    return str(reply.json()["request_id"])


def test_server_dedups_asample_on_seq_id_together_with_the_idempotency_key(
    make_server: Callable[..., Any], make_client: Callable[..., Any]
) -> None:
    server = make_server()
    sampler = make_client(server.url).create_sampling_client(base_model=MODEL)
    sampler_id = sampler.sampling_session_id
    first = _asample(server.url, sampler_id, 7, "key-a", seed=1)
    assert _asample(server.url, sampler_id, 7, "key-a", seed=1) == first  # a transport retry
    other = _asample(server.url, sampler_id, 7, "key-b", seed=2)  # another client's request
    assert other != first
    # Without a key, (sampler, seq_id) alone identifies the request.
    bare = _asample(server.url, sampler_id, 8, None, seed=1)
    assert _asample(server.url, sampler_id, 8, None, seed=1) == bare
