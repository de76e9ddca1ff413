"""A pickled SamplingClient re-attaches in a fresh process and samples on the same session."""

from __future__ import annotations

import multiprocessing
import pickle
from typing import Any

import tinker
from tinker import types
from tinker.local import LocalServer

API_KEY = "tml-process-test-key"


def _sample_in_child(blob: bytes, prompt: list[int], queue: Any) -> None:
    client = pickle.loads(blob)
    params = types.SamplingParams(max_tokens=4, seed=1)
    result = client.sample(types.ModelInput.from_ints(prompt), 2, params).result(timeout=60)
    queue.put(
        (
            client.holder.session_id,
            client.sampling_session_id,
            [list(seq.tokens) for seq in result.sequences],
        )
    )


def test_pickled_sampler_samples_in_a_spawned_process(tinker_server: LocalServer) -> None:
    with tinker.ServiceClient(base_url=tinker_server.url, api_key=API_KEY) as service:
        sampler = service.create_sampling_client(base_model="tinker-local/tiny")
        blob = pickle.dumps(sampler)
        assert API_KEY not in repr(sampler)
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        child = context.Process(target=_sample_in_child, args=(blob, [1, 2, 3], queue))
        child.start()
        session_id, sampler_id, sequences = queue.get(timeout=120)
        child.join(timeout=30)
        assert child.exitcode == 0
        assert session_id == service.session_id
        assert sampler_id == sampler.sampling_session_id
        assert len(sequences) == 2
        rest = service.create_rest_client()
        sessions = rest.list_sessions(limit=100).result(timeout=30).sessions
        assert sessions.count(service.session_id) == 1
        assert len(sessions) == 1, "the child must not have created a session"
