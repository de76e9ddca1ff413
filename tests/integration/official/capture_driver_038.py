"""Make every public call of the official SDK 0.38.0 against the capture server, labelled.

Run in the official 0.38 venv: `python capture_driver_038.py <capture server url> plain|features`.
Before each call it posts the call's label to the capture server (`/_capture/mark`), so every
request recorded afterwards is attributed to that call. Exits non-zero if any call fails.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import pickle
import subprocess
import sys
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from capture_common import API_KEY, TINY, TOKENS, CaptureChannel

import tinker
from tinker import types

PROMPT = types.ModelInput.from_ints([72, 101, 108, 108, 111])
TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)

URL = sys.argv[1] if len(sys.argv) > 1 else ""
MODE = sys.argv[2] if len(sys.argv) > 2 else "plain"


CHANNEL = CaptureChannel(URL, probe=MODE == "probe")
mark, seen, step = CHANNEL.mark, CHANNEL.seen, CHANNEL.step


def datum(n: int = len(TOKENS)) -> types.Datum:
    tokens = TOKENS[:n]
    return types.Datum(
        model_input=types.ModelInput.from_ints(tokens),
        loss_fn_inputs={"target_tokens": [*tokens[1:], 0], "weights": [1.0] * (n - 1) + [0.5]},
    )


def rl_datum() -> types.Datum:
    n = len(TOKENS)
    return types.Datum(
        model_input=types.ModelInput.from_ints(TOKENS),
        loss_fn_inputs={
            "target_tokens": np.array([*TOKENS[1:], 0], dtype=np.int64),
            "logprobs": np.linspace(-2.0, -0.5, n, dtype=np.float32),
            "advantages": np.linspace(-1.0, 1.0, n, dtype=np.float32),
        },
    )


def main() -> None:
    features = MODE == "features"

    # --- a session with every default, closed with success
    service0 = tinker.ServiceClient(base_url=URL, api_key=API_KEY)
    step(
        "ServiceClient.create_lora_training_client.defaults",
        lambda: service0.create_lora_training_client(TINY).result(),
    )
    step("ServiceClient.close.success", lambda: service0.close("success").result())

    # --- the main session, every constructor argument set
    service = tinker.ServiceClient(
        user_metadata={"who": "capture"},
        project_id="capture-project",
        display_name="capture run",
        base_url=URL,
        api_key=API_KEY,
        default_headers_overrides={"X-Capture-Override": "override-value"},
    )
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
            optimizer=types.AdamOptimizerConfig(),
        ).result(),
    )
    dimuon = step(
        "ServiceClient.create_lora_training_client.dimuon",
        lambda: service.create_lora_training_client(
            TINY, rank=4, optimizer=types.DimuonOptimizerConfig()
        ).result(),
    )
    step(
        "TrainingClient.optim_step.dimuon",
        lambda: dimuon.optim_step(
            types.DimuonParams(learning_rate=0.01, grad_clip_norm=1.0, beta1=0.8)
        ).result(),
    )

    # --- forward / forward_backward
    step(
        "TrainingClient.forward_backward.cross_entropy_lists",
        lambda: trainer.forward_backward([datum()], "cross_entropy").result(),
    )
    step(
        "TrainingClient.forward.cross_entropy",
        lambda: trainer.forward([datum(5)], "cross_entropy").result(),
    )
    step(
        "TrainingClient.forward_backward.importance_sampling_numpy_config",
        lambda: trainer.forward_backward(
            [rl_datum()], "importance_sampling", {"clip_low_threshold": 0.8, "mode": "token"}
        ).result(),
    )
    step(
        "TrainingClient.forward_backward.ppo_config",
        lambda: trainer.forward_backward(
            [rl_datum()], "ppo", {"clip_low_threshold": 0.8, "clip_high_threshold": 1.2}
        ).result(),
    )
    step(
        "TrainingClient.forward_backward.five_datums",
        lambda: trainer.forward_backward([datum(n) for n in range(3, 8)], "cross_entropy").result(),
    )
    step(
        "TrainingClient.forward_backward.image_chunk",
        lambda: trainer.forward_backward(
            [
                types.Datum(
                    model_input=types.ModelInput(
                        chunks=[
                            types.EncodedTextChunk(tokens=[1, 2]),
                            types.ImageChunk(data=TINY_PNG, format="png", expected_tokens=3),
                        ]
                    ),
                    loss_fn_inputs={"target_tokens": [2, 3, 4, 5, 6], "weights": [0, 0, 1, 1, 1]},
                )
            ],
            "cross_entropy",
        ).result(),
    )
    import torch

    step(
        "TrainingClient.forward.sparse_2d_target_tokens",
        lambda: trainer.forward(
            [
                types.Datum(
                    model_input=types.ModelInput.from_ints([1, 2, 3, 4]),
                    loss_fn_inputs={
                        "target_tokens": torch.tensor(
                            [[2, 0, 0, 0], [3, 0, 0, 0], [4, 9, 0, 0], [5, 0, 0, 0]]
                        ),
                        "weights": torch.tensor(
                            [[1.0, 0, 0, 0], [1.0, 0, 0, 0], [0.5, 0.5, 0, 0], [1.0, 0, 0, 0]]
                        ),
                    },
                )
            ],
            "cross_entropy",
        ).result(),
    )

    # --- optimizer steps
    step(
        "TrainingClient.optim_step.adam_defaults",
        lambda: trainer.optim_step(types.AdamParams()).result(),
    )
    step(
        "TrainingClient.optim_step.adam_all_fields",
        lambda: trainer.optim_step(
            types.AdamParams(
                learning_rate=2e-4,
                beta1=0.8,
                beta2=0.99,
                eps=1e-8,
                weight_decay=0.01,
                grad_clip_norm=1.0,
            )
        ).result(),
    )
    step(
        "TrainingClient.optim_step.adam_params_keyword",
        lambda: trainer.optim_step(adam_params=types.AdamParams(learning_rate=1e-3)).result(),
    )

    # --- checkpoints and loading
    state = step(
        "TrainingClient.save_state.defaults", lambda: trainer.save_state("ck-default").result()
    )
    step(
        "TrainingClient.save_state.all_arguments",
        lambda: trainer.save_state(
            "ck-all", ttl_seconds=7200, overwrite=True, user_metadata={"k": "v"}
        ).result(),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        step("TrainingClient.load_state", lambda: trainer.load_state(state.path).result())
        step(
            "TrainingClient.load_state_with_optimizer.weights_access_token",
            lambda: trainer.load_state_with_optimizer(
                state.path, weights_access_token="wat-fake-token"
            ).result(),
        )
    step(
        "ServiceClient.create_training_client_from_state.defaults",
        lambda: service.create_training_client_from_state(state.path).result(),
    )
    step(
        "ServiceClient.create_training_client_from_state.all_arguments",
        lambda: service.create_training_client_from_state(
            state.path,
            base_model=TINY,
            user_metadata={"resumed": "yes"},
            weights_access_token="wat-fake-token",
            optimizer=types.AdamOptimizerConfig(),
        ).result(),
    )
    step(
        "ServiceClient.create_training_client_from_state_with_optimizer",
        lambda: service.create_training_client_from_state_with_optimizer(state.path).result(),
    )
    sampler_ckpt = step(
        "TrainingClient.save_weights_for_sampler.defaults",
        lambda: trainer.save_weights_for_sampler("s-default").result(),
    )
    step(
        "TrainingClient.save_weights_for_sampler.all_arguments",
        lambda: trainer.save_weights_for_sampler(
            "s-all", ttl_seconds=7200, user_metadata={"k": "v"}
        ).result(),
    )
    external = step(
        "TrainingClient.save_weights_external.defaults",
        lambda: trainer.save_weights_external("ext-default").result(),
    )
    step(
        "TrainingClient.save_weights_external.all_arguments",
        lambda: trainer.save_weights_external(
            "ext-all",
            ttl_seconds=7200,
            age_encryption_recipients=[
                "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
            ],
        ).result(),
    )

    # --- sampling clients
    step(
        "TrainingClient.save_weights_and_get_sampling_client.defaults",
        lambda: trainer.save_weights_and_get_sampling_client().result(),
    )
    step(
        "TrainingClient.save_weights_and_get_sampling_client.inflight_stability",
        lambda: trainer.save_weights_and_get_sampling_client(
            kind="inflight", record_stability_info=True
        ).result(),
    )
    step(
        "TrainingClient.create_sampling_client",
        lambda: trainer.create_sampling_client(sampler_ckpt.path).result(),
    )
    sampler = step(
        "ServiceClient.create_sampling_client.model_path",
        lambda: service.create_sampling_client(model_path=sampler_ckpt.path).result(),
    )
    base_sampler = step(
        "ServiceClient.create_sampling_client.base_model_stability",
        lambda: service.create_sampling_client(
            base_model=TINY, record_stability_info=True
        ).result(),
    )

    # --- sample
    first = step(
        "SamplingClient.sample.defaults",
        lambda: sampler.sample(PROMPT, 1, types.SamplingParams()).result(),
    )
    target = np.array([[101, -1], [108, 7], [108, -1], [111, 3]], dtype=np.int64)
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
            topk_sample_logprobs=2,
            target_prompt_logprobs=types.TensorData.from_numpy(target),
            prompt_alt_tokens_k=2,
            prompt_logprobs_last_n=2,
        ).result(),
    )
    step(
        "SamplingClient.sample.sparse_target_prompt_logprobs",
        lambda: base_sampler.sample(
            PROMPT,
            1,
            types.SamplingParams(max_tokens=2, stop=[13, 10]),
            target_prompt_logprobs=types.TensorData.from_torch_sparse(
                torch.tensor(
                    [[101, -1, -1, -1], [-1, -1, -1, -1], [-1, -1, -1, -1], [111, -1, -1, -1]]
                ),
                pad_value=-1,
            ),
        ).result(),
    )
    step(
        "SamplingClient.sample.stop_empty_list",
        lambda: sampler.sample(PROMPT, 1, types.SamplingParams(max_tokens=2, stop=[])).result(),
    )
    step(
        "SamplingClient.compute_logprobs.defaults",
        lambda: sampler.compute_logprobs(PROMPT).result(),
    )
    step(
        "SamplingClient.compute_logprobs.last_n",
        lambda: sampler.compute_logprobs(PROMPT, prompt_logprobs_last_n=2).result(),
    )

    async def abandoned_sample() -> None:
        future = sampler.sample(PROMPT, 1, types.SamplingParams(max_tokens=99))
        try:
            await asyncio.wait_for(future.result_async(), 1.0)
        except (asyncio.TimeoutError, TimeoutError):
            return
        raise AssertionError("the never-finishing sample finished")

    step("SamplingClient.sample.abandoned_then_cancelled", lambda: asyncio.run(abandoned_sample()))
    if features:
        CHANNEL.wait_for("/api/v1/cancel_future", seconds=15)

    # --- provenance spans referring to the sampled sequence
    # (In probe mode a failed sample leaves no sequence: the spans then name a made-up id.)
    sequence_id = first.sequences[0].sequence_id if first else "probe-missing-sequence"
    spans = [
        types.PromptProvenanceSpan(sequence_id=sequence_id, offset=0, length=5),
        types.SampledProvenanceSpan(sequence_id=sequence_id, offset=0, length=4),
    ]
    provenance = types.Datum(
        model_input=types.ModelInput.from_ints(TOKENS[:9]),
        loss_fn_inputs={"target_tokens": TOKENS[1:10], "weights": [0.0] * 5 + [1.0] * 4},
    ).with_provenance(spans, spans)
    step(
        "TrainingClient.forward_backward.provenance_spans",
        lambda: trainer.forward_backward([provenance], "cross_entropy").result(),
    )
    step(
        "TrainingClient.forward_backward.stable_reinforce",
        lambda: trainer.forward_backward([rl_datum()], "stable_reinforce").result(),
    )

    # --- pickled sampler in another process, and sampler handles
    def sample_in_child() -> None:
        child = subprocess.run(
            [sys.executable, "-c", CHILD],
            input=pickle.dumps(sampler),
            capture_output=True,
            timeout=120,
        )
        assert child.returncode == 0, child.stderr.decode()[-3000:]

    step("SamplingClient.pickled_in_subprocess", sample_in_child)
    handle = step("SamplingClient.get_sampler_handle", sampler.get_sampler_handle)
    rebuilt = step(
        "SamplingClient.from_sampler_handle",
        lambda: tinker.SamplingClient.from_sampler_handle(handle, api_key=API_KEY),
    )
    step(
        "SamplingClient.sample.from_handle",
        lambda: rebuilt.sample(PROMPT, 1, types.SamplingParams(max_tokens=2)).result(),
    )

    # --- custom losses: traced (uploaded when the server says so) and the 0.5.1 callable
    def nll(logprobs: torch.Tensor, weights: torch.Tensor) -> Any:
        loss = -(logprobs * weights).sum()
        return loss, {"custom/nll:sum": loss}

    loss_handle = step(
        "ServiceClient.create_custom_loss",
        lambda: service.create_custom_loss(nll, {"logprobs": 1, "weights": 1}).result(),
    )
    step(
        "TrainingClient.forward_backward_custom.loss_handle",
        lambda: trainer.forward_backward_custom([datum()], loss_handle).result(),
    )

    def batch_loss(data: list[types.Datum], logprobs: list[torch.Tensor]) -> Any:
        loss = sum(
            -(lp * d.loss_fn_inputs["weights"].to_torch()).sum()
            for d, lp in zip(data, logprobs, strict=True)
        )
        return loss, {"batch_nll": float(loss.detach())}

    step(
        "TrainingClient.forward_backward_custom.callable",
        lambda: trainer.forward_backward_custom([datum()], batch_loss).result(),
    )

    # --- copy_weights
    step(
        "ServiceClient.copy_weights",
        lambda: service.copy_weights(
            state.path, ttl_seconds=7200, weights_access_token="wat-fake-token"
        ).result(),
    )

    # --- REST
    rest = step("RestClient.constructor", lambda: tinker.RestClient(base_url=URL, api_key=API_KEY))
    run_id = trainer.model_id
    rest_calls: list[tuple[str, Callable[[], Any]]] = [
        ("RestClient.get_server_capabilities", lambda: rest.get_server_capabilities()),
        ("RestClient.get_training_run.defaults", lambda: rest.get_training_run(run_id)),
        (
            "RestClient.get_training_run.accessible",
            lambda: rest.get_training_run(run_id, access_scope="accessible"),
        ),
        (
            "RestClient.get_training_run_by_tinker_path",
            lambda: rest.get_training_run_by_tinker_path(state.path),
        ),
        (
            "RestClient.get_weights_info_by_tinker_path",
            lambda: rest.get_weights_info_by_tinker_path(state.path),
        ),
        ("RestClient.list_training_runs.defaults", lambda: rest.list_training_runs()),
        (
            "RestClient.list_training_runs.all_arguments",
            lambda: rest.list_training_runs(
                limit=5, offset=2, access_scope="accessible", project_id="capture-project"
            ),
        ),
        ("RestClient.list_checkpoints", lambda: rest.list_checkpoints(run_id)),
        ("RestClient.list_user_checkpoints.defaults", lambda: rest.list_user_checkpoints()),
        (
            "RestClient.list_user_checkpoints.all_arguments",
            lambda: rest.list_user_checkpoints(limit=10, offset=5),
        ),
        (
            "RestClient.publish_checkpoint_from_tinker_path",
            lambda: rest.publish_checkpoint_from_tinker_path(sampler_ckpt.path),
        ),
        (
            "RestClient.unpublish_checkpoint_from_tinker_path",
            lambda: rest.unpublish_checkpoint_from_tinker_path(sampler_ckpt.path),
        ),
        (
            "RestClient.set_checkpoint_ttl_from_tinker_path.seconds",
            lambda: rest.set_checkpoint_ttl_from_tinker_path(state.path, 7200),
        ),
        (
            "RestClient.set_checkpoint_ttl_from_tinker_path.remove",
            lambda: rest.set_checkpoint_ttl_from_tinker_path(state.path, None),
        ),
        (
            "RestClient.get_external_weights_urls",
            lambda: rest.get_external_weights_urls(external.path),
        ),
        (
            "RestClient.copy_weights",
            lambda: rest.copy_weights(state.path, destination_project_id="other-project"),
        ),
        ("RestClient.get_sampler", lambda: rest.get_sampler(_sampler_id(sampler))),
        ("RestClient.list_sessions.defaults", lambda: rest.list_sessions()),
        (
            "RestClient.list_sessions.all_arguments",
            lambda: rest.list_sessions(limit=5, offset=1, access_scope="accessible"),
        ),
        ("RestClient.get_session.defaults", lambda: rest.get_session(_session_id(service))),
        (
            "RestClient.get_session.accessible",
            lambda: rest.get_session(_session_id(service), access_scope="accessible"),
        ),
        (
            "RestClient.assign_session_project",
            lambda: rest.assign_session_project(_session_id(service), "capture-project-2"),
        ),
        (
            "RestClient.export_session_trace",
            lambda: rest.export_session_trace(_session_id(service)),
        ),
        (
            "RestClient.search_sessions.defaults",
            lambda: rest.search_sessions(types.SessionSearchRequest()),
        ),
        (
            "RestClient.search_sessions.all_fields",
            lambda: rest.search_sessions(
                types.SessionSearchRequest(
                    session_id="capture-session-2",
                    project_ids=["capture-project"],
                    user_metadata={"who": "capture"},
                    display_name="capture run",
                    owner=types.UserSearchOwner(owner_urns=["tml:user:capture-user"]),
                    statuses=[
                        types.ActiveSessionStatusQuery(),
                        types.ClientFinishedSessionStatusQuery(reasons=["success", "errored"]),
                    ],
                    limit=10,
                    cursor=types.SessionSearchCursor(
                        last_created_at=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
                        last_session_id="capture-session-1",
                    ),
                )
            ),
        ),
        (
            "RestClient.delete_checkpoint",
            lambda: rest.delete_checkpoint(run_id, "weights/ck-all"),
        ),
        (
            "RestClient.delete_checkpoint_from_tinker_path",
            lambda: rest.delete_checkpoint_from_tinker_path(sampler_ckpt.path),
        ),
    ]
    if features:
        rest_calls.append(("RestClient.whoami", lambda: rest.whoami()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for label, call in rest_calls:
            step(label, lambda call=call: call().result())
        admin = step(
            "AdminClient.constructor", lambda: tinker.AdminClient(base_url=URL, api_key=API_KEY)
        )
        step(
            "AdminClient.get_billing_usage",
            lambda: admin.get_billing_usage(
                "2026-01-01T00:00:00Z", dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc)
            ).result(),
        )
        step(
            "AdminClient.get_current_checkpoint_storage_usage.defaults",
            lambda: admin.get_current_checkpoint_storage_usage().result(),
        )
        step(
            "AdminClient.get_current_checkpoint_storage_usage.project",
            lambda: admin.get_current_checkpoint_storage_usage(
                project_id="capture-project"
            ).result(),
        )
        step("AdminClient.get_audit_log.defaults", lambda: admin.get_audit_log().result())
        step(
            "AdminClient.get_audit_log.all_arguments",
            lambda: admin.get_audit_log("checkpoints", dt.date(2026, 1, 1)).result(),
        )
        step("ServiceClient.create_rest_client", lambda: service.create_rest_client())
        step("ServiceClient.get_server_capabilities", lambda: service.get_server_capabilities())
        # The *_async twins and the backcompat future carry their own x-sdk-method names.
        step(
            "SamplingClient.sample_async",
            lambda: asyncio.run(
                sampler.sample_async(PROMPT, 1, types.SamplingParams(max_tokens=2))
            ),
        )
        backcompat = service.create_lora_training_client(TINY, rank=4)
        step(
            "BackcompatTrainingClientFuture.forward_backward",
            lambda: backcompat.forward_backward([datum()], "cross_entropy").result(),
        )

    # --- background traffic: wait for at least one heartbeat and one telemetry batch
    mark("background")
    CHANNEL.wait_for("/api/v1/session_heartbeat", "/api/v1/telemetry", seconds=25)

    # --- session ends: errored through the context manager, interrupted with a detail
    def leave_with_an_exception() -> None:
        try:
            with tinker.ServiceClient(base_url=URL, api_key=API_KEY) as errored:
                errored.create_sampling_client(base_model=TINY).result()
                raise KeyError("leave the block with an exception")
        except KeyError:
            pass

    step("ServiceClient.context_manager.errored", leave_with_an_exception)
    interrupted = tinker.ServiceClient(base_url=URL, api_key=API_KEY)
    step(
        "ServiceClient.create_sampling_client.before_interrupt",
        lambda: interrupted.create_sampling_client(base_model=TINY).result(),
    )
    step(
        "ServiceClient.close.interrupted_with_detail",
        lambda: interrupted.close("interrupted", detail="stopped by the capture driver").result(),
    )
    step("ServiceClient.close.main_session", lambda: service.close("success").result())
    mark("after-close")
    finish(CHANNEL)


def finish(channel: CaptureChannel) -> None:
    """Exit 0 when every call succeeded; in probe mode list the failed calls and exit 1."""
    if channel.failures:
        print(f"{len(channel.failures)} calls failed: {', '.join(channel.failures)}", flush=True)
        sys.exit(1)
    print("capture driver: all calls succeeded", flush=True)


def _session_id(service: Any) -> str:
    """The session id (private attribute: the public API has no getter for it)."""
    return str(service.holder._session_id)


def _sampler_id(sampler: Any) -> str:
    """The sampling session id (private attribute: no public getter)."""
    return str(sampler._sampling_session_id)


CHILD = """
import pickle, sys
from tinker import types
sampler = pickle.loads(sys.stdin.buffer.read())
params = types.SamplingParams(max_tokens=2)
result = sampler.sample(types.ModelInput.from_ints([72, 101]), 2, params).result()
assert len(result.sequences) == 2 and all(s.sequence_id for s in result.sequences)
"""


if __name__ == "__main__":
    main()
