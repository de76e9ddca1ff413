"""Sampling from a multiprocessing pool: the SamplingClient is pickled to the workers.

A SamplingClient pickles to a small handle (service URL, API key, session and sampler ids), and
the worker re-attaches to the same session without creating a new one. This works with both
start methods: "fork" (the child rebuilds the client's threads and sockets on first use) and
"spawn" (a fresh interpreter imports this module, so the worker function lives at top level
and the entry point is guarded by `if __name__ == "__main__"`). With base_url="local" the
workers reach the parent's embedded server over loopback HTTP.

Samples with a fixed seed are reproducible, so every pool returns exactly what the parent
process gets for the same requests.

    python examples/multiprocessing_sampling.py --workers 2
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Sequence

from common import DEFAULT_MODEL, example_parser

import tinker
from tinker import types

PROMPTS = ["Once upon a time", "The weather today", "My favourite food", "In the year 3000"]


def generate(job: tuple[tinker.SamplingClient, list[int], int]) -> list[int]:
    """Worker: one seeded sample of 12 tokens (the client arrives pickled with the job)."""
    sampler, prompt, seed = job
    params = types.SamplingParams(max_tokens=12, temperature=1.0, seed=seed)
    return (
        sampler.sample(types.ModelInput.from_ints(prompt), 1, params).result().sequences[0].tokens
    )


def main(
    base_url: str = "local",
    model: str = DEFAULT_MODEL,
    workers: int = 2,
    start_methods: Sequence[str] = ("spawn", "fork"),
    api_key: str | None = None,
) -> dict[str, list[list[int]]]:
    """Sample the same jobs in this process and in a pool per start method; returns the tokens."""
    with tinker.ServiceClient(base_url=base_url, api_key=api_key) as service:
        sampler = service.create_sampling_client(base_model=model)
        tokenizer = sampler.get_tokenizer()
        jobs = [(sampler, tokenizer.encode(text), seed) for seed, text in enumerate(PROMPTS)]

        results = {"parent": [generate(job) for job in jobs]}
        for method in start_methods:
            context = multiprocessing.get_context(method)
            with context.Pool(workers) as pool:
                results[method] = pool.map(generate, jobs)

        for index, (_, prompt, _) in enumerate(jobs):
            text = tokenizer.decode(prompt + results["parent"][index])
            same = all(results[method][index] == results["parent"][index] for method in results)
            print(f"{text!r}  identical in {', '.join(results)}: {same}")
    return results


def cli(argv: Sequence[str] | None = None) -> int:
    parser = example_parser(__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--start-method",
        action="append",
        choices=multiprocessing.get_all_start_methods(),
        help="start method(s) to use (default: spawn and fork)",
    )
    args = parser.parse_args(argv)
    main(
        args.base_url,
        args.model,
        args.workers,
        args.start_method or ("spawn", "fork"),
        args.api_key,
    )
    return 0


if __name__ == "__main__":
    sys.exit(cli())
