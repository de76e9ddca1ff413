"""RL on addition questions, asked the way a base model is prompted in the role-colon format.

Each step draws questions "What is X + Y?" (X, Y in 0..9) behind a one-shot example, samples
a group of 4 answers per question, rewards a correct final number with 1 (and a missing
"\\n\\nUser:" stop with -0.1), and takes one importance_sampling step with advantage = reward -
the group's mean. The share of correct answers rises.

    python examples/arithmetic_rl.py --steps 100
"""

from __future__ import annotations

import random
import re
import sys
from collections.abc import Sequence

from common import DEFAULT_MODEL, example_parser, mean, rl_datum

import tinker
from tinker import types

FEW_SHOT = "User: What is 4 + 5?\n\nAssistant: 9\n\n"
STOP = "\n\nUser:"
FORMAT_PENALTY = 0.1
#: Largest operand by default. The cookbook's environment draws 0..100, where the pretrained
#: tiny model is right about 4% of the time; on single digits it is right about 80% of the time
#: at temperature 1 (95% greedy), which leaves RL something to sharpen.
MAX_OPERAND = 9
INTEGER = re.compile(r"-?\d+")


def question(x: int, y: int) -> str:
    """The prompt for x + y: the one-shot example, the question, and the assistant's turn."""
    return f"{FEW_SHOT}User: What is {x} + {y}?\n\nAssistant:"


def is_correct(answer: str, x: int, y: int) -> bool:
    """Whether the last integer in the answer is x + y."""
    numbers = INTEGER.findall(answer.replace(",", ""))
    return bool(numbers) and int(numbers[-1]) == x + y


def reward(completion: str, x: int, y: int) -> float:
    """1 for a correct answer, minus FORMAT_PENALTY when the completion did not end at STOP."""
    stopped = completion.endswith(STOP)
    return float(is_correct(completion.removesuffix(STOP), x, y)) - (
        0.0 if stopped else FORMAT_PENALTY
    )


def main(
    base_url: str = "local",
    model: str = DEFAULT_MODEL,
    steps: int = 100,
    questions_per_step: int = 16,
    group_size: int = 4,
    learning_rate: float = 1e-3,
    seed: int = 0,
    max_operand: int = MAX_OPERAND,
    api_key: str | None = None,
) -> list[float]:
    """Run the loop; returns the share of correct sampled answers at every step."""
    rng = random.Random(seed)
    adam = types.AdamParams(learning_rate=learning_rate)
    history: list[float] = []
    with tinker.ServiceClient(base_url=base_url, api_key=api_key) as service:
        trainer = service.create_lora_training_client(base_model=model, rank=8, seed=seed)
        tokenizer = trainer.get_tokenizer()
        for step in range(steps):
            sampler = trainer.save_weights_and_get_sampling_client()
            problems = [
                (rng.randint(0, max_operand), rng.randint(0, max_operand))
                for _ in range(questions_per_step)
            ]
            prompts = [tokenizer.encode(question(x, y)) for x, y in problems]
            futures = [
                sampler.sample(
                    types.ModelInput.from_ints(prompt),
                    group_size,
                    types.SamplingParams(
                        max_tokens=12,
                        temperature=1.0,
                        stop=[STOP],
                        seed=(seed * steps + step) * questions_per_step + index,
                    ),
                )
                for index, prompt in enumerate(prompts)
            ]
            batch: list[types.Datum] = []
            correct: list[float] = []
            for prompt, (x, y), future in zip(prompts, problems, futures, strict=True):
                sequences = future.result().sequences
                texts = [tokenizer.decode(list(s.tokens)) for s in sequences]
                rewards = [reward(text, x, y) for text in texts]
                correct.extend(float(is_correct(t.removesuffix(STOP), x, y)) for t in texts)
                baseline = mean(rewards)
                for s, r in zip(sequences, rewards, strict=True):
                    if r != baseline and s.tokens and s.logprobs is not None:
                        batch.append(rl_datum(prompt, s.tokens, s.logprobs, r - baseline))
            if batch:
                trainer.forward_backward(batch, "importance_sampling")
                trainer.optim_step(adam).result()
            history.append(mean(correct))
            print(f"step {step:3d}  correct {history[-1]:.3f}  datums {len(batch):3d}")
    return history


def cli(argv: Sequence[str] | None = None) -> int:
    parser = example_parser(__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-operand", type=int, default=MAX_OPERAND)
    args = parser.parse_args(argv)
    history = main(
        args.base_url,
        args.model,
        args.steps,
        learning_rate=args.learning_rate,
        seed=args.seed,
        max_operand=args.max_operand,
        api_key=args.api_key,
    )
    tenth = max(1, len(history) // 10)
    print(
        f"share correct: first {tenth} steps {mean(history[:tenth]):.3f}, "
        f"last {tenth} steps {mean(history[-tenth:]):.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(cli())
