"""Supervised fine-tuning loop: pipelined forward_backward + optim_step, loss printed per step.

Each step's operations are submitted before the previous step's result is read, so the server
always has the next step queued (operations run strictly in call order either way).

    python examples/sl_loop.py --steps 20
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from common import DEFAULT_MODEL, example_parser, supervised_datum

import tinker
from tinker import types

# The futures of one training step: the backward pass and the optimizer step.
Step = tuple[
    tinker.APIFuture[types.ForwardBackwardOutput], tinker.APIFuture[types.OptimStepResponse]
]

CORPUS = [
    "The cat sat on the mat.",
    "A bird sang in the old tree.",
    "The sun rose over the green hill.",
    "Fish swim in the deep blue sea.",
]


def main(
    base_url: str = "local",
    model: str = DEFAULT_MODEL,
    steps: int = 20,
    learning_rate: float = 1e-2,
    api_key: str | None = None,
) -> list[float]:
    """Train on CORPUS for `steps` steps; returns the loss per target token of every step."""
    with tinker.ServiceClient(base_url=base_url, api_key=api_key) as service:
        trainer = service.create_lora_training_client(base_model=model, rank=8, seed=0)
        tokenizer = trainer.get_tokenizer()
        batch = [supervised_datum(tokenizer.encode(text)) for text in CORPUS]
        target_count = sum(datum.model_input.length for datum in batch)
        adam = types.AdamParams(learning_rate=learning_rate)

        losses: list[float] = []
        previous: Step | None = None
        for step in range(steps):
            # Both calls return at once; the optimizer step is queued behind the backward pass.
            current = (trainer.forward_backward(batch, "cross_entropy"), trainer.optim_step(adam))
            if previous is not None:  # read step k only once step k+1 is queued
                losses.append(_finish(previous, target_count, step - 1))
            previous = current
        if previous is not None:
            losses.append(_finish(previous, target_count, steps - 1))

        sampler = trainer.save_weights_and_get_sampling_client()
        prompt = tokenizer.encode("The cat")
        greedy = types.SamplingParams(max_tokens=20, temperature=0.0, stop=["."])
        sample = sampler.sample(types.ModelInput.from_ints(prompt), 1, greedy).result()
        print(f"sample: {tokenizer.decode(prompt + sample.sequences[0].tokens)!r}")
    return losses


def _finish(futures: Step, target_count: int, step: int) -> float:
    """Wait for one step and print its loss per target token."""
    fb, opt = futures
    loss = fb.result().metrics["loss:sum"] / target_count
    opt.result()
    print(f"step {step:3d}  loss/token {loss:.4f}")
    return loss


def cli(argv: Sequence[str] | None = None) -> int:
    parser = example_parser(__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--learning-rate", type=float, default=1e-2)
    args = parser.parse_args(argv)
    main(args.base_url, args.model, args.steps, args.learning_rate, args.api_key)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
