"""One end-to-end Tinker scenario, written twice: in the idioms of SDK 0.5.1 and of SDK 0.38.

Usage: <python with a tinker SDK> scenario.py <base_url> --idioms 0.5.1|0.38
Runs unchanged with the official SDK 0.5.1, the official SDK 0.38.0 or tinker-sync. Steps: train
on a fixed text until the loss halves, forward, save_state, resume from the state (weights only,
and with the optimizer: the continuation must be bit-identical), sampler weights and sampling with
logprobs (and sequence ids in 0.38), a pickled sampler used in a subprocess, an RL loss, REST calls
and a clean session close. Prints `step ok: <name>` per step, `STEP FAILED: <name>: <error>` on the
first failure (exit 1), and on success one JSON line of results (losses, sampled tokens, skipped
steps) after the line `scenario: all steps passed`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import pickle
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import tinker
from tinker import types

TINY = "tinker-local/tiny"
API_KEY = "tml-scenario-key"
TEXTS = ["the cat sat on the mat.", "the dog sat on the log.", "a cat and a dog sat."]
LEARNING_RATE = 2e-2
MAX_STEPS = 60
RESUME_STEPS = 2
PROMPT_TOKENS = list(b"the ca")
SAMPLING = {"max_tokens": 8, "seed": 7, "temperature": 1.0}
Result = TypeVar("Result")


class Steps:
    """Runs named steps, prints each outcome, and collects what the checks compare."""

    def __init__(self) -> None:
        self.results: dict[str, Any] = {"skipped": []}

    def run(self, name: str, call: Callable[[], Result]) -> Result:
        try:
            value = call()
        except BaseException as exc:
            self.fail(name, exc)
            raise
        print(f"step ok: {name}", flush=True)
        return value

    async def run_async(self, name: str, call: Callable[[], Awaitable[Result]]) -> Result:
        try:
            value = await call()
        except BaseException as exc:
            self.fail(name, exc)
            raise
        print(f"step ok: {name}", flush=True)
        return value

    def skip(self, name: str, why: str) -> None:
        print(f"step skipped: {name}: {why}", flush=True)
        self.results["skipped"].append(name)

    @staticmethod
    def fail(name: str, exc: BaseException) -> None:
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:600]
        print(f"STEP FAILED: {name}: {detail}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- shared data


def training_data() -> list[types.Datum]:
    """Next-byte prediction on three short sentences (tinker-local/tiny's tokens are bytes)."""
    data = []
    for text in TEXTS:
        tokens = list(text.encode())
        data.append(
            types.Datum(
                model_input=types.ModelInput.from_ints(tokens[:-1]),
                loss_fn_inputs={"target_tokens": tokens[1:], "weights": [1.0] * (len(tokens) - 1)},
            )
        )
    return data


TOKENS_IN_DATA = sum(len(t.encode()) - 1 for t in TEXTS)


def mean_loss(output: Any) -> float:
    return float(output.metrics["loss:sum"]) / TOKENS_IN_DATA


def rl_data(response: Any) -> list[types.Datum]:
    """Importance-sampling datums from sampled sequences: reward = share of letter tokens."""
    data = []
    for sequence in response.sequences:
        sampled = list(sequence.tokens)
        tokens = PROMPT_TOKENS + sampled
        reward = sum(chr(t).isalpha() for t in sampled if t < 128) / max(1, len(sampled)) - 0.5
        prompt_part = len(PROMPT_TOKENS) - 1
        data.append(
            types.Datum(
                model_input=types.ModelInput.from_ints(tokens[:-1]),
                loss_fn_inputs={
                    "target_tokens": tokens[1:],
                    "logprobs": [0.0] * prompt_part + [float(v) for v in sequence.logprobs],
                    "advantages": [0.0] * prompt_part + [reward] * len(sampled),
                },
            )
        )
    return data


def check_sample(response: Any, *, num_samples: int, with_prompt_logprobs: bool) -> list[Any]:
    """Shape checks shared by both idioms; returns the sampled token lists."""
    assert len(response.sequences) == num_samples, response
    for sequence in response.sequences:
        assert 1 <= len(sequence.tokens) <= SAMPLING["max_tokens"], sequence
        assert len(sequence.logprobs) == len(sequence.tokens), sequence
        assert all(math.isfinite(v) and v <= 0 for v in sequence.logprobs), sequence.logprobs
    if with_prompt_logprobs:
        prompt_logprobs = response.prompt_logprobs
        assert len(prompt_logprobs) == len(PROMPT_TOKENS), prompt_logprobs
        assert prompt_logprobs[0] is None and all(v is not None for v in prompt_logprobs[1:])
    return [list(s.tokens) for s in response.sequences]


def same_floats(first: list[float], second: list[float], what: str) -> None:
    """Bit-identical: the same float64 values, compared exactly."""
    assert first == second, f"{what} differ: {first} vs {second}"


def sample_in_subprocess(sampler: Any) -> list[list[int]]:
    """Unpickle the sampler in a fresh interpreter and sample there with the scenario's seed."""
    child = (
        "import json, pickle, sys\n"
        "from tinker import types\n"
        "sampler = pickle.loads(sys.stdin.buffer.read())\n"
        f"params = types.SamplingParams(**{SAMPLING!r})\n"
        f"prompt = types.ModelInput.from_ints({PROMPT_TOKENS!r})\n"
        "result = sampler.sample(prompt, 2, params).result()\n"
        "print(json.dumps([list(s.tokens) for s in result.sequences]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", child],
        input=pickle.dumps(sampler),
        capture_output=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    tokens: list[list[int]] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return tokens


def can_pickle(sampler: Any) -> bool:
    try:
        pickle.dumps(sampler)
    except Exception:
        return False
    return True


# ----------------------------------------------------------------------------- 0.5.1 idioms


def scenario_051(url: str, steps: Steps) -> None:
    """Blocking client creation, futures with .result(), the *_async twins with double await."""
    out = steps.results
    service = steps.run("connect", lambda: tinker.ServiceClient(base_url=url, api_key=API_KEY))
    names = steps.run(
        "get_server_capabilities",
        lambda: [m.model_name for m in service.get_server_capabilities().supported_models],
    )
    assert TINY in names, names
    trainer = steps.run(
        "create_lora_training_client",
        lambda: service.create_lora_training_client(
            base_model=TINY, rank=8, seed=0, user_metadata={"scenario": "0.5.1"}
        ),
    )
    data = training_data()
    adam = types.AdamParams(learning_rate=LEARNING_RATE)

    def train_step() -> float:
        backward = trainer.forward_backward(data, "cross_entropy")
        optimizer = trainer.optim_step(adam)
        loss = mean_loss(backward.result())
        optimizer.result()
        return loss

    async def train_step_async() -> float:
        backward = await trainer.forward_backward_async(data, "cross_entropy")
        optimizer = await trainer.optim_step_async(adam)
        loss = mean_loss(await backward)
        await optimizer
        return loss

    def train_until_halved() -> list[float]:
        losses = [train_step()]
        while losses[-1] > losses[0] / 2:
            assert len(losses) < MAX_STEPS, f"loss did not halve in {MAX_STEPS} steps: {losses}"
            # Every other step through the *_async twins (double await), as 0.5.1 code did.
            step = asyncio.run(train_step_async()) if len(losses) % 2 else train_step()
            losses.append(step)
        return losses

    out["losses"] = steps.run("train_until_loss_halves", train_until_halved)
    forward = steps.run("forward", lambda: trainer.forward(data, "cross_entropy").result())
    assert len(forward.loss_fn_outputs) == len(data)
    for datum, output in zip(data, forward.loss_fn_outputs, strict=True):
        assert len(output["logprobs"].tolist()) == len(
            datum.loss_fn_inputs["target_tokens"].tolist()
        )
    out["forward_at_save"] = mean_loss(forward)
    state_path = steps.run("save_state", lambda: trainer.save_state("scenario-state").result().path)
    out["continuation"] = steps.run(
        "continue_after_save", lambda: [train_step() for _ in range(RESUME_STEPS)]
    )

    resumed = steps.run(
        "create_training_client_from_state",
        lambda: service.create_training_client_from_state(state_path),
    )
    out["resumed_forward"] = steps.run(
        "resumed_forward", lambda: mean_loss(resumed.forward(data, "cross_entropy").result())
    )
    same_floats([out["resumed_forward"]], [out["forward_at_save"]], "forward loss after resume")
    if hasattr(trainer, "load_state_with_optimizer"):

        def resume_with_optimizer() -> list[float]:
            fresh = service.create_lora_training_client(base_model=TINY, rank=8, seed=0)
            fresh.load_state_with_optimizer(state_path).result()
            losses = []
            for _ in range(RESUME_STEPS):
                backward = fresh.forward_backward(data, "cross_entropy")
                optimizer = fresh.optim_step(adam)
                losses.append(mean_loss(backward.result()))
                optimizer.result()
            return losses

        out["resumed_continuation"] = steps.run("resume_with_optimizer", resume_with_optimizer)
        same_floats(out["resumed_continuation"], out["continuation"], "continuation losses")
    else:
        steps.skip("resume_with_optimizer", "this SDK has no load_state_with_optimizer")

    sampler_path = steps.run(
        "save_weights_for_sampler",
        lambda: trainer.save_weights_for_sampler("scenario-sampler").result().path,
    )
    sampler = steps.run(
        "create_sampling_client", lambda: service.create_sampling_client(model_path=sampler_path)
    )
    prompt = types.ModelInput.from_ints(PROMPT_TOKENS)
    params = types.SamplingParams(**SAMPLING)
    response = steps.run(
        "sample_with_logprobs",
        lambda: sampler.sample(prompt, 2, params, include_prompt_logprobs=True).result(),
    )
    out["sample_tokens"] = check_sample(response, num_samples=2, with_prompt_logprobs=True)
    twin = steps.run(
        "sample_async_twin", lambda: asyncio.run(sampler.sample_async(prompt, 2, params))
    )
    assert check_sample(twin, num_samples=2, with_prompt_logprobs=False) == out["sample_tokens"]
    logprobs = steps.run("compute_logprobs", lambda: sampler.compute_logprobs(prompt).result())
    assert logprobs[0] is None and len(logprobs) == len(PROMPT_TOKENS), logprobs
    ephemeral = steps.run(
        "save_weights_and_get_sampling_client",
        lambda: trainer.save_weights_and_get_sampling_client(),
    )
    steps.run("sample_ephemeral", lambda: ephemeral.sample(prompt, 1, params).result())
    if can_pickle(sampler):
        tokens = steps.run("pickled_sampler_in_subprocess", lambda: sample_in_subprocess(sampler))
        assert tokens == out["sample_tokens"], (tokens, out["sample_tokens"])
    else:
        steps.skip("pickled_sampler_in_subprocess", "this SDK's SamplingClient does not pickle")

    rl = rl_data(response)
    out["rl_losses"] = steps.run(
        "rl_losses",
        lambda: [
            trainer.forward_backward(rl, loss).result().metrics["loss:sum"]
            for loss in ("importance_sampling", "ppo")
        ],
    )
    steps.run("rl_optim_step", lambda: trainer.optim_step(adam).result())

    rest = steps.run("create_rest_client", service.create_rest_client)
    runs = steps.run("list_training_runs", lambda: rest.list_training_runs().result())
    assert trainer.model_id in [r.training_run_id for r in runs.training_runs]
    run = steps.run("get_training_run", lambda: rest.get_training_run(trainer.model_id).result())
    assert run.user_metadata == {"scenario": "0.5.1"}, run.user_metadata
    checkpoints = steps.run(
        "list_checkpoints", lambda: rest.list_checkpoints(trainer.model_id).result()
    )
    assert {state_path, sampler_path} <= {c.tinker_path for c in checkpoints.checkpoints}
    steps.run("publish", lambda: rest.publish_checkpoint_from_tinker_path(sampler_path).result())
    steps.run(
        "unpublish", lambda: rest.unpublish_checkpoint_from_tinker_path(sampler_path).result()
    )
    if hasattr(service, "close"):
        steps.run("close_session", service.close)
    else:
        steps.skip("close_session", "this SDK's ServiceClient has no close(); the process exits")


# ----------------------------------------------------------------------------- 0.38 idioms


async def scenario_038(url: str, steps: Steps) -> None:
    """Lazy ServiceClient, awaited creation futures and APIFutures, RestClient, close(status)."""
    out = steps.results
    service = steps.run(
        "connect",
        lambda: tinker.ServiceClient(
            base_url=url, api_key=API_KEY, display_name="scenario", project_id="scenario-project"
        ),
    )
    rest = steps.run("rest_client", lambda: tinker.RestClient(base_url=url, api_key=API_KEY))
    capabilities = await steps.run_async("get_server_capabilities", rest.get_server_capabilities)
    assert TINY in [m.model_name for m in capabilities.supported_models]
    trainer = await steps.run_async(
        "create_lora_training_client",
        lambda: service.create_lora_training_client(
            TINY, rank=8, seed=0, user_metadata={"scenario": "0.38"}
        ),
    )
    # The creation future also answers .result(); the awaited value is the same client.
    assert trainer.get_info().model_data.model_name == TINY
    data = training_data()
    adam = types.AdamParams(learning_rate=LEARNING_RATE)

    async def train_step(client: Any = None) -> float:
        client = client or trainer
        backward = client.forward_backward(data, "cross_entropy")
        optimizer = client.optim_step(adam)
        loss = mean_loss(await backward)
        await optimizer
        return loss

    async def train_until_halved() -> list[float]:
        losses = [await train_step()]
        while losses[-1] > losses[0] / 2:
            assert len(losses) < MAX_STEPS, f"loss did not halve in {MAX_STEPS} steps: {losses}"
            losses.append(await train_step())
        return losses

    out["losses"] = await steps.run_async("train_until_loss_halves", train_until_halved)
    forward = await steps.run_async("forward", lambda: trainer.forward(data, "cross_entropy"))
    assert len(forward.loss_fn_outputs) == len(data)
    out["forward_at_save"] = mean_loss(forward)
    saved = await steps.run_async(
        "save_state", lambda: trainer.save_state("scenario-state", ttl_seconds=7200)
    )
    state_path = saved.path

    async def continuation() -> list[float]:
        return [await train_step() for _ in range(RESUME_STEPS)]

    out["continuation"] = await steps.run_async("continue_after_save", continuation)
    resumed = await steps.run_async(
        "create_training_client_from_state",
        lambda: service.create_training_client_from_state(state_path),
    )

    async def resumed_forward() -> float:
        return mean_loss(await resumed.forward(data, "cross_entropy"))

    out["resumed_forward"] = await steps.run_async("resumed_forward", resumed_forward)
    same_floats([out["resumed_forward"]], [out["forward_at_save"]], "forward loss after resume")
    with_optimizer = await steps.run_async(
        "create_training_client_from_state_with_optimizer",
        lambda: service.create_training_client_from_state_with_optimizer(state_path),
    )

    async def resumed_continuation() -> list[float]:
        return [await train_step(with_optimizer) for _ in range(RESUME_STEPS)]

    out["resumed_continuation"] = await steps.run_async(
        "resume_with_optimizer", resumed_continuation
    )
    same_floats(out["resumed_continuation"], out["continuation"], "continuation losses")

    sampler_save = await steps.run_async(
        "save_weights_for_sampler", lambda: trainer.save_weights_for_sampler("scenario-sampler")
    )
    sampler_path = sampler_save.path
    sampler = await steps.run_async(
        "create_sampling_client", lambda: service.create_sampling_client(model_path=sampler_path)
    )
    assert sampler.get_base_model() == TINY
    prompt = types.ModelInput.from_ints(PROMPT_TOKENS)
    params = types.SamplingParams(**SAMPLING)
    response = await steps.run_async(
        "sample_with_logprobs",
        lambda: sampler.sample(prompt, 2, params, include_prompt_logprobs=True),
    )
    out["sample_tokens"] = check_sample(response, num_samples=2, with_prompt_logprobs=True)
    ids = [s.sequence_id for s in response.sequences]
    assert all(isinstance(i, str) and i for i in ids) and len(set(ids)) == 2, ids
    logprobs = await steps.run_async("compute_logprobs", lambda: sampler.compute_logprobs(prompt))
    assert logprobs[0] is None and len(logprobs) == len(PROMPT_TOKENS), logprobs
    ephemeral = await steps.run_async(
        "save_weights_and_get_sampling_client", trainer.save_weights_and_get_sampling_client
    )
    await steps.run_async("sample_ephemeral", lambda: ephemeral.sample(prompt, 1, params))
    tokens = steps.run("pickled_sampler_in_subprocess", lambda: sample_in_subprocess(sampler))
    assert tokens == out["sample_tokens"], (tokens, out["sample_tokens"])

    rl = rl_data(response)

    async def rl_losses() -> list[float]:
        outputs = [
            await trainer.forward_backward(rl, loss) for loss in ("importance_sampling", "ppo")
        ]
        return [o.metrics["loss:sum"] for o in outputs]

    out["rl_losses"] = await steps.run_async("rl_losses", rl_losses)
    await steps.run_async("rl_optim_step", lambda: trainer.optim_step(adam))

    runs = await steps.run_async("list_training_runs", rest.list_training_runs)
    assert trainer.model_id in [r.training_run_id for r in runs.training_runs]
    run = await steps.run_async("get_training_run", lambda: rest.get_training_run(trainer.model_id))
    assert run.user_metadata == {"scenario": "0.38"}, run.user_metadata
    checkpoints = await steps.run_async(
        "list_checkpoints", lambda: rest.list_checkpoints(trainer.model_id)
    )
    by_path = {c.tinker_path: c for c in checkpoints.checkpoints}
    assert {state_path, sampler_path} <= set(by_path), sorted(by_path)
    assert by_path[state_path].expires_at is not None, by_path[state_path]
    await steps.run_async(
        "set_checkpoint_ttl_none",
        lambda: rest.set_checkpoint_ttl_from_tinker_path(state_path, None),
    )
    await steps.run_async("publish", lambda: rest.publish_checkpoint_from_tinker_path(sampler_path))
    await steps.run_async(
        "unpublish", lambda: rest.unpublish_checkpoint_from_tinker_path(sampler_path)
    )
    await steps.run_async("close_session", lambda: service.close("success"))
    try:
        service.create_sampling_client(base_model=TINY)
    except RuntimeError as exc:
        assert "closed" in str(exc), exc
    else:
        raise AssertionError("a closed ServiceClient accepted a new call")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--idioms", choices=("0.5.1", "0.38"), required=True)
    args = parser.parse_args()
    steps = Steps()
    steps.results["idioms"] = args.idioms
    try:
        if args.idioms == "0.5.1":
            scenario_051(args.url, steps)
        else:
            asyncio.run(scenario_038(args.url, steps))
    except Exception:
        import traceback

        traceback.print_exc()
        return 1
    print("scenario: all steps passed", flush=True)
    print(json.dumps(steps.results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
