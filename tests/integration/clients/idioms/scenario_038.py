"""A short training-and-sampling program written as SDK 0.38 code is written.

Usage: python scenario_038.py <base_url> <api_key>. Creation futures read with .result() and
awaited (the sync method and its *_async twin), top-level type names, dataclasses.replace on a
Datum, optim_step with OptimParams, save_state with a TTL and metadata, sample with the new
scoring parameters and sequence ids, get_base_model, a standalone RestClient,
APIFuture.coroutine(), a RetryConfig with 0.38's fields, ServiceClient as a context manager
and ServiceClient.close(status) awaited. Prints "idioms 0.38: ok".
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys

import numpy as np

import tinker

MODEL = "tinker-local/tiny"
TEXT = list(b"the cat sat on the mat.")
PROMPT = tinker.ModelInput.from_ints(list(b"the ca"))
PARAMS = tinker.SamplingParams(max_tokens=4, seed=3, temperature=1.0)


def datum() -> tinker.Datum:
    """A next-byte datum, its weights replaced through dataclasses.replace."""
    plain = tinker.Datum(
        model_input=tinker.ModelInput.from_ints(TEXT[:-1]),
        loss_fn_inputs={"target_tokens": TEXT[1:]},
    )
    weights = tinker.TensorData.from_numpy(np.ones(len(TEXT) - 1, dtype=np.float32))
    return dataclasses.replace(plain, loss_fn_inputs={**plain.loss_fn_inputs, "weights": weights})


async def train_and_sample(service: tinker.ServiceClient, url: str, api_key: str) -> None:
    trainer = await service.create_lora_training_client(MODEL, rank=4, seed=0)
    twin = await service.create_lora_training_client_async(MODEL, rank=4, seed=1)
    assert twin.model_id != trainer.model_id
    data = [datum()]
    params: tinker.OptimParams = tinker.AdamParams(learning_rate=1e-2, weight_decay=0.0)
    backward = trainer.forward_backward(data, "cross_entropy")
    step = trainer.optim_step(params)
    first = (await backward).metrics["loss:sum"]
    await step
    second = (await trainer.forward(data, "cross_entropy")).metrics["loss:sum"]
    assert second < first, (first, second)

    saved = await trainer.save_state("idioms-038", ttl_seconds=7200, user_metadata={"k": "v"})
    sampler = await trainer.save_weights_and_get_sampling_client()
    assert sampler.get_base_model() == MODEL
    rows = PROMPT.length - 1
    targets = tinker.TensorData.from_numpy(np.full((rows, 1), ord("t"), dtype=np.int64))
    response = await sampler.sample(
        PROMPT,
        2,
        PARAMS,
        include_prompt_logprobs=True,
        topk_sample_logprobs=2,
        target_prompt_logprobs=targets,
        prompt_alt_tokens_k=1,
        prompt_logprobs_last_n=2,
    )
    ids = [sequence.sequence_id for sequence in response.sequences]
    assert len(set(ids)) == 2 and all(ids), ids
    assert response.prompt_logprobs[:-2] == [None] * (PROMPT.length - 2), response.prompt_logprobs
    assert response.target_prompt_logprobs is not None
    assert response.target_prompt_logprobs.shape == [rows, 1]
    assert response.prompt_alt_tokens is not None
    assert all(s.topk_logprobs is not None for s in response.sequences)
    task = asyncio.create_task(sampler.sample(PROMPT, 1, PARAMS).coroutine())
    assert len((await task).sequences) == 1
    snapshot = await trainer.save_weights_for_sampler("idioms-038-sampler", ttl_seconds=7200)
    retry = tinker.RetryConfig(max_connections=None, enable_stuck_detection=False)
    from_path = await service.create_sampling_client(model_path=snapshot.path, retry_config=retry)
    assert from_path.get_base_model() == MODEL
    logprobs = await from_path.compute_logprobs(PROMPT, prompt_logprobs_last_n=1)
    assert logprobs[:-1] == [None] * (PROMPT.length - 1) and logprobs[-1] is not None, logprobs

    rest = tinker.RestClient(base_url=url, api_key=api_key)
    checkpoints = (await rest.list_checkpoints(trainer.model_id)).checkpoints
    by_path = {c.tinker_path: c for c in checkpoints}
    assert by_path[saved.path].user_metadata == {"k": "v"}, by_path[saved.path]
    assert by_path[saved.path].expires_at is not None
    await service.close("success")


def main(url: str, api_key: str) -> None:
    with tinker.ServiceClient(base_url=url, api_key=api_key) as scoped:
        created = scoped.create_lora_training_client(MODEL, rank=4).result()
        assert created.get_info().model_data.model_name == MODEL
    service = tinker.ServiceClient(base_url=url, api_key=api_key, display_name="idioms")
    asyncio.run(train_and_sample(service, url, api_key))
    print("idioms 0.38: ok", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
