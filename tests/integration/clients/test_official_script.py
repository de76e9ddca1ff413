"""A training script written for the official SDK runs unchanged against the local server.

`official_sdk_script` only uses the official public API (names, arguments, return values);
it pipelines forward_backward with optim_step, saves and resumes, samples through futures and
lists runs and checkpoints over REST.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tinker
from tinker import types
from tinker.local import LocalServer

EXAMPLES = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog"]


def official_sdk_script(base_url: str, api_key: str) -> dict[str, Any]:
    service_client = tinker.ServiceClient(base_url=base_url, api_key=api_key)
    capabilities = service_client.get_server_capabilities()
    base_model = "tinker-local/tiny"
    assert base_model in [m.model_name for m in capabilities.supported_models]
    training_client = service_client.create_lora_training_client(base_model=base_model, rank=8)
    tokenizer = training_client.get_tokenizer()

    def make_datum(text: str) -> types.Datum:
        tokens = tokenizer.encode(text)
        return types.Datum(
            model_input=types.ModelInput.from_ints(tokens[:-1]),
            loss_fn_inputs=dict(weights=[1.0] * (len(tokens) - 1), target_tokens=tokens[1:]),
        )

    data = [make_datum(text) for text in EXAMPLES]
    losses = []
    for _ in range(6):
        fwdbwd_future = training_client.forward_backward(data, "cross_entropy")
        optim_future = training_client.optim_step(types.AdamParams(learning_rate=3e-3))
        fwdbwd_result = fwdbwd_future.result()
        optim_future.result()
        logprobs = np.concatenate([o["logprobs"].tolist() for o in fwdbwd_result.loss_fn_outputs])
        weights = np.concatenate([d.loss_fn_inputs["weights"].tolist() for d in data])
        losses.append(float(-np.dot(logprobs, weights) / weights.sum()))

    state_path = training_client.save_state("after-training").result().path
    sampler_path = training_client.save_weights_for_sampler(name="final").result().path
    sampling_client = service_client.create_sampling_client(model_path=sampler_path)
    prompt = types.ModelInput.from_ints(tokenizer.encode("the cat"))
    params = types.SamplingParams(max_tokens=6, temperature=1.0, seed=3)
    futures = [
        sampling_client.sample(prompt=prompt, sampling_params=params, num_samples=2)
        for _ in range(3)
    ]
    samples = [future.result() for future in futures]
    texts = [tokenizer.decode(seq.tokens) for result in samples for seq in result.sequences]
    prompt_logprobs = sampling_client.compute_logprobs(prompt).result()

    ephemeral = training_client.save_weights_and_get_sampling_client(name="ephemeral")
    ephemeral_result = ephemeral.sample(prompt, 1, params).result()

    resumed = service_client.create_training_client_from_state(state_path)
    resumed_loss = resumed.forward(data, "cross_entropy").result().metrics["loss:sum"]
    final_loss = training_client.forward(data, "cross_entropy").result().metrics["loss:sum"]

    rest_client = service_client.create_rest_client()
    runs = rest_client.list_training_runs().result()
    checkpoints = rest_client.list_checkpoints(training_client.model_id).result()
    run = rest_client.get_training_run_by_tinker_path(state_path).result()
    return {
        "losses": losses,
        "state_path": state_path,
        "sampler_path": sampler_path,
        "samples": samples,
        "texts": texts,
        "prompt_logprobs": prompt_logprobs,
        "ephemeral": ephemeral_result,
        "resumed_loss": resumed_loss,
        "final_loss": final_loss,
        "run_ids": [r.training_run_id for r in runs.training_runs],
        "checkpoints": sorted(c.checkpoint_id for c in checkpoints.checkpoints),
        "run": run,
        "model_id": training_client.model_id,
    }


def test_official_script_runs_unchanged(tinker_server: LocalServer) -> None:
    out = official_sdk_script(tinker_server.url, "tml-local-test-key")
    assert out["losses"][-1] < 0.9 * out["losses"][0]
    assert out["state_path"] == f"tinker://{out['model_id']}/weights/after-training"
    assert out["sampler_path"] == f"tinker://{out['model_id']}/sampler_weights/final"
    for result in out["samples"]:
        assert len(result.sequences) == 2
        for seq in result.sequences:
            assert 1 <= len(seq.tokens) <= 6
            assert seq.stop_reason in ("length", "stop")
    assert all(isinstance(text, str) for text in out["texts"])
    assert out["prompt_logprobs"][0] is None
    assert all(lp is not None and lp <= 0 for lp in out["prompt_logprobs"][1:])
    assert len(out["ephemeral"].sequences) == 1
    # the resumed model has exactly the saved weights: same loss as the trained one
    assert out["resumed_loss"] == pytest.approx(out["final_loss"], rel=1e-5)
    assert out["model_id"] in out["run_ids"]
    assert out["checkpoints"] == ["sampler_weights/final", "weights/after-training"]
    assert out["run"].training_run_id == out["model_id"]
