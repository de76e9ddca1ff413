"""base_url="local": the embedded server in this process, no API key needed."""

from __future__ import annotations

import asyncio
import pathlib

import pytest

import tinker
import tinker.local
from tinker import types


def test_local_base_url_trains_and_samples_without_a_key(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TINKER_LOCAL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TINKER_TELEMETRY", "0")
    monkeypatch.delenv("TINKER_API_KEY", raising=False)
    monkeypatch.delenv("TINKER_BASE_URL", raising=False)
    try:
        with tinker.ServiceClient(base_url="local") as service:
            trainer = service.create_lora_training_client("tinker-local/tiny", rank=4, seed=0)
            tokens = trainer.get_tokenizer().encode("hello local", add_special_tokens=False)
            datum = types.Datum(
                model_input=types.ModelInput.from_ints(tokens[:-1]),
                loss_fn_inputs={"target_tokens": tokens[1:], "weights": [1.0] * (len(tokens) - 1)},
            )

            async def train_and_sample() -> types.SampleResponse:
                fb = await trainer.forward_backward_async([datum], "cross_entropy")
                step = await trainer.optim_step_async(types.AdamParams(learning_rate=1e-3))
                assert (await fb).metrics["loss:sum"] > 0
                await step.result_async()
                sampler = await trainer.save_weights_and_get_sampling_client_async()
                prompt = types.ModelInput.from_ints(tokens[:2])
                return await sampler.sample_async(prompt, 1, types.SamplingParams(max_tokens=3))

            response = asyncio.run(train_and_sample())
            assert 1 <= len(response.sequences[0].tokens) <= 3
    finally:  # the next user of shared_server() gets its own
        tinker.local.close_shared_server()
