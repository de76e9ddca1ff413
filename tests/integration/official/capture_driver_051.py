"""Make the official SDK 0.5.1's calls whose requests tests/unit/types/test_request_bodies.py
does not pin (REST, capabilities, resume from state, custom loss, chunking, sampling clients).

Run in the official 0.5.1 venv: `python capture_driver_051.py <capture server url> plain`.
Every call is labelled through the capture server's side channel; exits non-zero on a failure.
"""

from __future__ import annotations

import sys
from typing import Any

from capture_common import API_KEY, TINY, TOKENS, CaptureChannel

import tinker
from tinker import types

URL = sys.argv[1] if len(sys.argv) > 1 else ""
MODE = sys.argv[2] if len(sys.argv) > 2 else "plain"
CHANNEL = CaptureChannel(URL, probe=MODE == "probe")
step = CHANNEL.step
PROMPT = types.ModelInput.from_ints([72, 101, 108, 108, 111])


def datum(n: int = len(TOKENS)) -> types.Datum:
    tokens = TOKENS[:n]
    return types.Datum(
        model_input=types.ModelInput.from_ints(tokens),
        loss_fn_inputs={"target_tokens": [*tokens[1:], 0], "weights": [1.0] * n},
    )


def main() -> None:
    service = step(
        "ServiceClient.constructor",
        lambda: tinker.ServiceClient(
            user_metadata={"who": "capture"}, base_url=URL, api_key=API_KEY
        ),
    )
    step("ServiceClient.get_server_capabilities", service.get_server_capabilities)
    trainer = step(
        "ServiceClient.create_lora_training_client.all_arguments",
        lambda: service.create_lora_training_client(
            TINY,
            rank=8,
            seed=3,
            train_mlp=True,
            train_attn=False,
            train_unembed=True,
            user_metadata={"run": "capture"},
        ),
    )
    step("TrainingClient.get_info", trainer.get_info)
    step(
        "TrainingClient.forward_backward.130_datums_two_chunks",
        lambda: trainer.forward_backward([datum(3)] * 130, "cross_entropy").result(),
    )
    step(
        "TrainingClient.forward_backward.ppo_config",
        lambda: trainer.forward_backward(
            [
                types.Datum(
                    model_input=types.ModelInput.from_ints(TOKENS),
                    loss_fn_inputs={
                        "target_tokens": [*TOKENS[1:], 0],
                        "logprobs": [-1.0] * len(TOKENS),
                        "advantages": [0.5] * len(TOKENS),
                    },
                )
            ],
            "ppo",
            {"clip_low_threshold": 0.8, "clip_high_threshold": 1.2},
        ).result(),
    )

    def batch_loss(data: list[types.Datum], logprobs: list[Any]) -> Any:
        loss = sum(
            -(lp * d.loss_fn_inputs["weights"].to_torch()).sum()
            for d, lp in zip(data, logprobs, strict=True)
        )
        return loss, {"batch_nll": float(loss.detach())}

    step(
        "TrainingClient.forward_backward_custom",
        lambda: trainer.forward_backward_custom([datum()], batch_loss).result(),
    )
    state = step("TrainingClient.save_state", lambda: trainer.save_state("ck-a").result())
    step(
        "ServiceClient.create_training_client_from_state",
        lambda: service.create_training_client_from_state(state.path, user_metadata={"r": "1"}),
    )
    sampler_ckpt = step(
        "TrainingClient.save_weights_for_sampler",
        lambda: trainer.save_weights_for_sampler("s-a").result(),
    )
    step(
        "TrainingClient.save_weights_and_get_sampling_client.named",
        lambda: trainer.save_weights_and_get_sampling_client(name="ephemeral-name"),
    )
    step(
        "TrainingClient.save_weights_and_get_sampling_client_submit",
        lambda: trainer.save_weights_and_get_sampling_client_submit().result(),
    )
    step(
        "TrainingClient.create_sampling_client",
        lambda: trainer.create_sampling_client(sampler_ckpt.path),
    )
    sampler = step(
        "ServiceClient.create_sampling_client.model_path",
        lambda: service.create_sampling_client(model_path=sampler_ckpt.path),
    )
    step(
        "ServiceClient.create_sampling_client.base_model",
        lambda: service.create_sampling_client(base_model=TINY),
    )
    step(
        "SamplingClient.sample.all_arguments",
        lambda: sampler.sample(
            PROMPT,
            2,
            types.SamplingParams(
                max_tokens=3, seed=5, stop=["\n"], temperature=0.7, top_k=10, top_p=0.9
            ),
            include_prompt_logprobs=True,
            topk_prompt_logprobs=2,
        ).result(),
    )

    rest = step("ServiceClient.create_rest_client", service.create_rest_client)
    run_id = trainer.model_id
    for label, call in [
        ("RestClient.get_training_run", lambda: rest.get_training_run(run_id)),
        (
            "RestClient.get_training_run_by_tinker_path",
            lambda: rest.get_training_run_by_tinker_path(state.path),
        ),
        ("RestClient.list_training_runs.defaults", lambda: rest.list_training_runs()),
        (
            "RestClient.list_training_runs.all_arguments",
            lambda: rest.list_training_runs(limit=5, offset=2),
        ),
        ("RestClient.list_checkpoints", lambda: rest.list_checkpoints(run_id)),
        ("RestClient.list_user_checkpoints.defaults", lambda: rest.list_user_checkpoints()),
        (
            "RestClient.list_user_checkpoints.all_arguments",
            lambda: rest.list_user_checkpoints(limit=10, offset=5),
        ),
        (
            "RestClient.get_checkpoint_archive_url_from_tinker_path",
            lambda: rest.get_checkpoint_archive_url_from_tinker_path(state.path),
        ),
        (
            "RestClient.publish_checkpoint_from_tinker_path",
            lambda: rest.publish_checkpoint_from_tinker_path(sampler_ckpt.path),
        ),
        (
            "RestClient.unpublish_checkpoint_from_tinker_path",
            lambda: rest.unpublish_checkpoint_from_tinker_path(sampler_ckpt.path),
        ),
        ("RestClient.list_sessions.defaults", lambda: rest.list_sessions()),
        ("RestClient.list_sessions.all_arguments", lambda: rest.list_sessions(limit=5, offset=1)),
        ("RestClient.get_session", lambda: rest.get_session("capture-session-1")),
        ("RestClient.delete_checkpoint", lambda: rest.delete_checkpoint(run_id, "weights/ck-a")),
        (
            "RestClient.delete_checkpoint_from_tinker_path",
            lambda: rest.delete_checkpoint_from_tinker_path(sampler_ckpt.path),
        ),
    ]:
        step(label, lambda call=call: call().result())

    CHANNEL.mark("background")
    CHANNEL.wait_for("/api/v1/session_heartbeat", "/api/v1/telemetry", seconds=25)
    if CHANNEL.failures:
        print(f"{len(CHANNEL.failures)} calls failed: {', '.join(CHANNEL.failures)}", flush=True)
        sys.exit(1)
    print("capture driver: all calls succeeded", flush=True)


if __name__ == "__main__":
    main()
