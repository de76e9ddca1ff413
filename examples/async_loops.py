"""The supervised and the RL loop written with asyncio, running concurrently on one session.

Training calls are two-stage: `await trainer.forward_backward_async(...)` queues the operation
(its place in the order is taken right there) and gives an APIFuture; awaiting that future
gives the result. Sampling is one await: `await sampler.sample_async(...)`. Nothing here blocks
the event loop; the two blocking calls (the session, the tokenizer) run in a worker thread.

    python examples/async_loops.py
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections import defaultdict
from collections.abc import Sequence

from common import DEFAULT_MODEL, example_parser, mean, supervised_datum
from rl_loop import PROMPTS, policy_batch
from sl_loop import CORPUS

import tinker
from tinker import types


async def supervised(
    service: tinker.ServiceClient, model: str, steps: int, learning_rate: float
) -> list[float]:
    """The supervised loop; returns the loss per target token of every step."""
    trainer = await service.create_lora_training_client_async(base_model=model, rank=8, seed=0)
    tokenizer = await asyncio.to_thread(trainer.get_tokenizer)
    batch = [supervised_datum(tokenizer.encode(text)) for text in CORPUS]
    target_count = sum(datum.model_input.length for datum in batch)
    adam = types.AdamParams(learning_rate=learning_rate)
    losses: list[float] = []
    for step in range(steps):
        backward = await trainer.forward_backward_async(batch, "cross_entropy")
        update = await trainer.optim_step_async(adam)
        output, _ = await asyncio.gather(backward, update)
        losses.append(output.metrics["loss:sum"] / target_count)
        print(f"[sl] step {step:2d}  loss/token {losses[-1]:.4f}")
    # The two-await form in one expression: queue a forward pass, then wait for its result.
    final = await (await trainer.forward_async(batch, "cross_entropy"))
    print(f"[sl] final forward loss/token {final.metrics['loss:sum'] / target_count:.4f}")
    return losses


async def reinforce(
    service: tinker.ServiceClient,
    model: str,
    iterations: int,
    samples_per_prompt: int,
    learning_rate: float,
) -> list[float]:
    """The RL loop (importance sampling, digit reward); returns each iteration's mean reward."""
    trainer = await service.create_lora_training_client_async(base_model=model, rank=8, seed=1)
    tokenizer = await asyncio.to_thread(trainer.get_tokenizer)
    prompts = [tokenizer.encode(text) for text in PROMPTS]
    seeds = itertools.count()  # one seed per sample: reruns are reproducible
    adam = types.AdamParams(learning_rate=learning_rate)
    mean_rewards: list[float] = []
    for iteration in range(iterations):
        sampler = await trainer.save_weights_and_get_sampling_client_async()
        owners = [index for index in range(len(prompts)) for _ in range(samples_per_prompt)]
        responses = await asyncio.gather(
            *(
                sampler.sample_async(
                    types.ModelInput.from_ints(prompts[index]),
                    1,
                    types.SamplingParams(max_tokens=8, temperature=1.0, seed=next(seeds)),
                )
                for index in owners
            )
        )
        groups: dict[int, list[types.SampledSequence]] = defaultdict(list)
        for index, response in zip(owners, responses, strict=True):
            groups[index].append(response.sequences[0])
        batch, rewards = policy_batch(prompts, groups)
        if batch:  # every group scored alike: no advantage, nothing to learn this round
            backward = await trainer.forward_backward_async(batch, "importance_sampling")
            update = await trainer.optim_step_async(adam)
            await asyncio.gather(backward, update)
        mean_rewards.append(mean(rewards))
        print(f"[rl] iteration {iteration:2d}  samples {len(owners)}  reward {mean(rewards):.3f}")
    return mean_rewards


async def main_async(
    base_url: str = "local",
    model: str = DEFAULT_MODEL,
    sl_steps: int = 15,
    rl_iterations: int = 6,
    samples_per_prompt: int = 16,
    api_key: str | None = None,
) -> tuple[list[float], list[float]]:
    """Run both loops concurrently; returns (supervised losses, RL mean rewards)."""
    # Opening a session blocks (one HTTP round trip), so it runs in a worker thread.
    service = await asyncio.to_thread(tinker.ServiceClient, base_url=base_url, api_key=api_key)
    try:
        losses, rewards = await asyncio.gather(
            supervised(service, model, sl_steps, learning_rate=1e-2),
            reinforce(service, model, rl_iterations, samples_per_prompt, learning_rate=5e-2),
        )
    finally:
        service.close()
    return losses, rewards


def main(
    base_url: str = "local",
    model: str = DEFAULT_MODEL,
    sl_steps: int = 15,
    rl_iterations: int = 6,
    samples_per_prompt: int = 16,
    api_key: str | None = None,
) -> tuple[list[float], list[float]]:
    """`main_async` in a fresh event loop."""
    return asyncio.run(
        main_async(base_url, model, sl_steps, rl_iterations, samples_per_prompt, api_key)
    )


def cli(argv: Sequence[str] | None = None) -> int:
    parser = example_parser(__doc__.splitlines()[0])
    parser.add_argument("--sl-steps", type=int, default=15)
    parser.add_argument("--rl-iterations", type=int, default=6)
    parser.add_argument("--samples-per-prompt", type=int, default=16)
    args = parser.parse_args(argv)
    main(
        args.base_url,
        args.model,
        args.sl_steps,
        args.rl_iterations,
        args.samples_per_prompt,
        args.api_key,
    )
    return 0


if __name__ == "__main__":
    sys.exit(cli())
