"""Drive a local server with the official `tinker` SDK (run in that SDK's own interpreter).

Usage: <python with the official tinker SDK> official_sdk_script.py <base_url>
Exits non-zero (with a traceback) when any call fails or returns something unexpected.
"""

import sys

import tinker
from tinker import types

TINY = "tinker-local/tiny"
TOKENS = [72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100]


def main(url: str) -> None:
    service = tinker.ServiceClient(base_url=url, api_key="tml-local")
    names = [m.model_name for m in service.get_server_capabilities().supported_models]
    assert TINY in names, names
    trainer = service.create_lora_training_client(base_model=TINY, rank=8, user_metadata={"a": "b"})
    info = trainer.get_info()
    assert info.model_data.model_name == TINY and info.lora_rank == 8
    datum = types.Datum(
        model_input=types.ModelInput.from_ints(TOKENS),
        loss_fn_inputs={"target_tokens": [*TOKENS[1:], 0], "weights": [1.0] * len(TOKENS)},
    )
    losses = []
    for _ in range(4):
        result = trainer.forward_backward([datum, datum], "cross_entropy")
        step = trainer.optim_step(types.AdamParams(learning_rate=1e-2))
        losses.append(result.result().metrics["loss:sum"])
        step.result()
    assert losses[-1] < losses[0], losses
    assert len(trainer.forward([datum], "cross_entropy").result().loss_fn_outputs) == 1

    state = trainer.save_state("ckpt1").result().path
    trainer.load_state(state).result()
    sampler_path = trainer.save_weights_for_sampler("s1").result().path
    sampler = trainer.save_weights_and_get_sampling_client()
    params = types.SamplingParams(max_tokens=5, stop=["\n"], seed=1)
    prompt = types.ModelInput.from_ints([72, 101])
    sample = sampler.sample(prompt=prompt, num_samples=2, sampling_params=params).result()
    assert len(sample.sequences) == 2
    logprobs = sampler.compute_logprobs(types.ModelInput.from_ints([72, 101, 108])).result()
    assert logprobs[0] is None and len(logprobs) == 3
    from_path = service.create_sampling_client(model_path=sampler_path)
    assert from_path.sample(prompt=prompt, num_samples=1, sampling_params=params).result().sequences
    from_base = service.create_sampling_client(base_model=TINY)
    assert from_base.sample(prompt=prompt, num_samples=1, sampling_params=params).result().sequences

    restored = service.create_training_client_from_state(state)
    assert restored.get_info().lora_rank == 8
    rest = service.create_rest_client()
    assert len(rest.list_training_runs().result().training_runs) == 2
    checkpoints = rest.list_checkpoints(info.model_id).result().checkpoints
    assert {c.tinker_path for c in checkpoints} == {state, sampler_path}
    assert rest.get_checkpoint_archive_url_from_tinker_path(sampler_path).result().url
    rest.publish_checkpoint_from_tinker_path(sampler_path).result()
    rest.unpublish_checkpoint_from_tinker_path(sampler_path).result()
    assert rest.list_sessions().result().sessions
    rest.delete_checkpoint_from_tinker_path(state).result()
    assert rest.get_training_run_by_tinker_path(sampler_path).result().user_metadata == {"a": "b"}
    print("official SDK: all calls succeeded")


if __name__ == "__main__":
    main(sys.argv[1])
