"""Pieces shared by the examples: the command-line options and the datum builders.

Every example talks to `--base-url` (default "local": the embedded server, started in this
process) and trains `--model` (default the tiny local model, which runs in seconds on a CPU).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from tinker import types

DEFAULT_MODEL = "tinker-local/tiny"


def example_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every example takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--base-url",
        default="local",
        help='Tinker service URL; "local" (the default) runs the embedded server in-process',
    )
    parser.add_argument(
        "--api-key", default=None, help="API key (default: $TINKER_API_KEY; none for local)"
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help="base model to train")
    return parser


def supervised_datum(tokens: Sequence[int], prompt_length: int = 0) -> types.Datum:
    """A next-token-prediction datum for `tokens`, not training on the first `prompt_length`.

    The service does not shift anything: position i of the input predicts target i, so the
    input is tokens[:-1] and the targets are tokens[1:]. A target that is still part of the
    prompt gets weight 0.
    """
    if len(tokens) < 2:
        raise ValueError(f"a datum needs at least 2 tokens, got {len(tokens)}")
    targets = list(tokens[1:])
    weights = [0.0 if i + 1 < prompt_length else 1.0 for i in range(len(targets))]
    return types.Datum(
        model_input=types.ModelInput.from_ints(list(tokens[:-1])),
        loss_fn_inputs={"target_tokens": targets, "weights": weights},
    )


def rl_datum(
    prompt: Sequence[int],
    completion: Sequence[int],
    sampler_logprobs: Sequence[float],
    advantage: float,
) -> types.Datum:
    """A policy-gradient datum for one sampled completion (importance_sampling / ppo inputs).

    Same shift as `supervised_datum`. Prompt targets carry advantage 0 (and sampler logprob 0),
    so only the sampled tokens are pushed up or down, by the completion's advantage.
    """
    if len(completion) != len(sampler_logprobs):
        raise ValueError(
            f"{len(completion)} completion tokens but {len(sampler_logprobs)} logprobs"
        )
    tokens = [*prompt, *completion]
    padding = len(prompt) - 1
    return types.Datum(
        model_input=types.ModelInput.from_ints(tokens[:-1]),
        loss_fn_inputs={
            "target_tokens": tokens[1:],
            "logprobs": [0.0] * padding + list(sampler_logprobs),
            "advantages": [0.0] * padding + [advantage] * len(completion),
        },
    )


def mean(values: Sequence[float]) -> float:
    """The arithmetic mean (0.0 for no values)."""
    return sum(values) / len(values) if values else 0.0
