"""A short training-and-sampling program written as SDK 0.5.1 code is written.

Usage: python scenario_051.py <base_url> <api_key>. Clients used directly as creation returns
them, futures read with .result(), the *_async twins awaited twice, Adam steps, a resumed
state, sampler weights, sampling and a RestClient from the ServiceClient. Prints
"idioms 0.5.1: ok" at the end.
"""

from __future__ import annotations

import asyncio
import sys

import tinker
from tinker import types

MODEL = "tinker-local/tiny"
TEXT = list(b"the cat sat on the mat.")
PROMPT = types.ModelInput.from_ints(list(b"the ca"))
PARAMS = types.SamplingParams(max_tokens=4, seed=3, temperature=1.0)


def main(url: str, api_key: str) -> None:
    service = tinker.ServiceClient(base_url=url, api_key=api_key)
    models = service.get_server_capabilities().supported_models
    assert MODEL in [m.model_name for m in models], models
    trainer = service.create_lora_training_client(base_model=MODEL, rank=4, seed=0)
    assert trainer.get_info().model_data.model_name == MODEL
    datum = types.Datum(
        model_input=types.ModelInput.from_ints(TEXT[:-1]),
        loss_fn_inputs={"target_tokens": TEXT[1:], "weights": [1.0] * (len(TEXT) - 1)},
    )
    adam = types.AdamParams(learning_rate=1e-2)
    backward = trainer.forward_backward([datum], "cross_entropy")
    step = trainer.optim_step(adam)
    first = backward.result().metrics["loss:sum"]
    step.result()

    async def twins() -> float:
        backward = await trainer.forward_backward_async([datum], "cross_entropy")
        step = await trainer.optim_step_async(adam)
        loss = (await backward).metrics["loss:sum"]
        await step
        return float(loss)

    second = asyncio.run(twins())
    assert second < first, (first, second)
    state = trainer.save_state("idioms-051-state").result().path
    resumed = service.create_training_client_from_state(state)
    assert resumed.get_info().model_data.model_name == MODEL
    resumed.forward([datum], "cross_entropy").result()

    path = trainer.save_weights_for_sampler("idioms-051").result().path
    sampler = service.create_sampling_client(model_path=path)
    response = sampler.sample(PROMPT, 2, PARAMS, include_prompt_logprobs=True).result()
    assert len(response.sequences) == 2 and response.prompt_logprobs[0] is None
    twin = asyncio.run(sampler.sample_async(PROMPT, 1, PARAMS))
    assert len(twin.sequences) == 1
    ephemeral = trainer.save_weights_and_get_sampling_client("idioms-051-ephemeral")
    assert len(ephemeral.sample(PROMPT, 1, PARAMS).result().sequences) == 1

    rest = service.create_rest_client()
    runs = rest.list_training_runs().result()
    assert trainer.model_id in [r.training_run_id for r in runs.training_runs]
    checkpoints = rest.list_checkpoints(trainer.model_id).result().checkpoints
    assert path in [c.tinker_path for c in checkpoints], checkpoints
    print("idioms 0.5.1: ok", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
