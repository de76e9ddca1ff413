"""Print what the local base models do before any fine-tuning: greedy and temperature-1
samples for plain text, chat and arithmetic prompts, and the share of correct answers to
addition questions asked as examples/arithmetic_rl.py asks them.

Run: `python scripts/evaluate_base_models.py [--model tinker-local/tiny] [--questions 200]`.
"""

from __future__ import annotations

import argparse
import pathlib
import random
import sys
from collections.abc import Sequence

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "examples"))

from arithmetic_rl import STOP, is_correct, question

import tinker
from tinker import types

PROMPTS: tuple[str, ...] = (
    "The lighthouse keeper",
    "User: Tell me about the cat.\n\nAssistant:",
    "<|user|>What color is the sky?<|endoftext|><|assistant|>",
    question(12, 7),
)


def samples(sampler: tinker.SamplingClient, tokenizer: object, prompt: str) -> list[str]:
    """One greedy and two temperature-1 (seeded) completions of `prompt`."""
    encode = tokenizer.encode  # type: ignore[attr-defined]
    decode = tokenizer.decode  # type: ignore[attr-defined]
    model_input = types.ModelInput.from_ints(encode(prompt))
    texts = []
    for temperature, seed in ((0.0, 0), (1.0, 1), (1.0, 2)):
        params = types.SamplingParams(max_tokens=60, temperature=temperature, seed=seed)
        sequence = sampler.sample(model_input, 1, params).result().sequences[0]
        texts.append(decode(list(sequence.tokens)))
    return texts


#: Operand ranges of the arithmetic check: the example's default and the cookbook's.
OPERAND_RANGES = (9, 100)


def arithmetic_accuracy(
    sampler: tinker.SamplingClient,
    tokenizer: object,
    n: int,
    max_operand: int,
    temperature: float,
    seed: int = 1234,
) -> tuple[float, float]:
    """Shares of answers that are correct and that end with the stop sequence."""
    encode = tokenizer.encode  # type: ignore[attr-defined]
    decode = tokenizer.decode  # type: ignore[attr-defined]
    rng = random.Random(seed)
    problems = [(rng.randint(0, max_operand), rng.randint(0, max_operand)) for _ in range(n)]
    futures = [
        sampler.sample(
            types.ModelInput.from_ints(encode(question(x, y))),
            1,
            types.SamplingParams(
                max_tokens=12, temperature=temperature, stop=[STOP], seed=seed + index
            ),
        )
        for index, (x, y) in enumerate(problems)
    ]
    correct = formatted = 0
    for (x, y), future in zip(problems, futures, strict=True):
        text = decode(list(future.result().sequences[0].tokens))
        formatted += text.endswith(STOP)
        correct += is_correct(text.removesuffix(STOP), x, y)
    return correct / n, formatted / n


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", action="append")
    parser.add_argument("--questions", type=int, default=200)
    args = parser.parse_args(argv)
    with tinker.ServiceClient(base_url="local") as service:
        for model in args.model or ["tinker-local/tiny", "tinker-local/small"]:
            sampler = service.create_sampling_client(base_model=model)
            tokenizer = sampler.get_tokenizer()
            print(f"== {model}")
            for prompt in PROMPTS:
                print(f"prompt {prompt!r}")
                for label, text in zip(
                    ("greedy", "T=1", "T=1"), samples(sampler, tokenizer, prompt), strict=True
                ):
                    print(f"  {label:6s} {text!r}")
            for max_operand in OPERAND_RANGES:
                for temperature in (0.0, 1.0):
                    correct, formatted = arithmetic_accuracy(
                        sampler, tokenizer, args.questions, max_operand, temperature
                    )
                    print(
                        f"X + Y with X, Y in 0..{max_operand}, temperature {temperature:g}, "
                        f"{args.questions} questions: correct {correct:.3f}, "
                        f"ends with the stop sequence {formatted:.3f}"
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
