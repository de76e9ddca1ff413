"""`tinker sample`: sample completions from a base model or a saved sampler checkpoint."""

from __future__ import annotations

import argparse
import json
import pathlib
from typing import Any

from tinker.cli.context import CliError, Context
from tinker.cli.paging import positive_argument
from tinker.cli.render import printable

__all__ = ["DEFAULT_MAX_TOKENS", "add_sample_command", "parse_token_list"]

DEFAULT_MAX_TOKENS = 64


def add_sample_command(commands: Any, leaf: argparse.ArgumentParser) -> None:
    sample = commands.add_parser("sample", parents=[leaf], help="sample completions")
    model = sample.add_mutually_exclusive_group(required=True)
    model.add_argument("--base-model", metavar="MODEL", help="sample from a base model")
    model.add_argument("--model-path", metavar="TINKER_PATH", help="sample from saved weights")
    prompt = sample.add_mutually_exclusive_group(required=True)
    prompt.add_argument("--prompt", metavar="TEXT", help="prompt text")
    prompt.add_argument(
        "--prompt-tokens", type=parse_token_list, metavar="IDS", help="token ids, e.g. 1,2,3"
    )
    prompt.add_argument(
        "--prompt-file",
        type=pathlib.Path,
        metavar="FILE",
        help="file with the prompt text, or a JSON list of token ids",
    )
    sample.add_argument(
        "--max-tokens",
        type=positive_argument,
        default=DEFAULT_MAX_TOKENS,
        help=f"tokens to generate per sample (default {DEFAULT_MAX_TOKENS})",
    )
    sample.add_argument("--temperature", type=float, help="default 1.0")
    sample.add_argument("--top-k", type=int, help="default -1 (no limit)")
    sample.add_argument("--top-p", type=float, help="default 1.0")
    sample.add_argument("--seed", type=int, help="random seed for reproducible samples")
    sample.add_argument("--stop", action="append", metavar="S", help="stop string (repeatable)")
    sample.add_argument("--num-samples", type=positive_argument, default=1, help="default 1")
    sample.set_defaults(handler=sample_completions)


def parse_token_list(text: str) -> list[int]:
    """'1,2,3' -> [1, 2, 3] (argparse type; spaces allowed, at least one id)."""
    pieces = [piece.strip() for piece in text.split(",") if piece.strip()]
    try:
        tokens = [int(piece) for piece in pieces]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integer token ids, got {text!r}"
        ) from None
    if not tokens or any(token < 0 for token in tokens):
        raise argparse.ArgumentTypeError(f"expected non-negative token ids, got {text!r}")
    return tokens


def sample_completions(ctx: Context, args: argparse.Namespace) -> None:
    """Create a sampling client, sample, and print the decoded completions (or JSON)."""
    from tinker import types

    service = ctx.clients.service_client()
    if args.model_path is not None:
        sampler = service.create_sampling_client(model_path=args.model_path)
    else:
        sampler = service.create_sampling_client(base_model=args.base_model)
    tokenizer = sampler.get_tokenizer()
    prompt_tokens = _prompt_tokens(args, tokenizer)
    response = sampler.sample(
        prompt=types.ModelInput.from_ints(prompt_tokens),
        num_samples=args.num_samples,
        sampling_params=types.SamplingParams(**_sampling_options(args)),
    ).result()
    samples = [
        {
            "text": tokenizer.decode(list(sequence.tokens)),
            "tokens": list(sequence.tokens),
            "logprobs": None if sequence.logprobs is None else list(sequence.logprobs),
            "stop_reason": sequence.stop_reason,
        }
        for sequence in response.sequences
    ]
    if ctx.json:
        model = args.model_path or args.base_model
        ctx.out_json({"model": model, "prompt_tokens": prompt_tokens, "samples": samples})
        return
    for index, item in enumerate(samples, start=1):
        if len(samples) > 1:
            ctx.out(f"--- sample {index} of {len(samples)} (stop: {item['stop_reason']}) ---")
        ctx.out(printable(item["text"]))


def _sampling_options(args: argparse.Namespace) -> dict[str, Any]:
    """Only the options the user gave (the server applies its defaults to the rest)."""
    options: dict[str, Any] = {
        "max_tokens": args.max_tokens,
        "temperature": args.temperature,
        "top_k": args.top_k,
        "top_p": args.top_p,
        "seed": args.seed,
        "stop": args.stop,
    }
    return {key: value for key, value in options.items() if value is not None}


def _prompt_tokens(args: argparse.Namespace, tokenizer: Any) -> list[int]:
    if args.prompt_tokens is not None:
        return list(args.prompt_tokens)
    if args.prompt is not None:
        text = args.prompt
    else:
        text = args.prompt_file.read_text(encoding="utf-8")
        tokens = _json_token_list(text)
        if tokens is not None:
            return tokens
    tokens = [int(token) for token in tokenizer.encode(text)]
    if not tokens:
        raise CliError("the prompt is empty")
    return tokens


def _json_token_list(text: str) -> list[int] | None:
    """The token ids when `text` is a JSON list of integers, else None (plain text)."""
    if not text.lstrip().startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, list) and value and all(type(v) is int and v >= 0 for v in value):
        return list(value)
    return None
