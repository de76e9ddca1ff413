"""`make demo`: fine-tune a pretrained model with LoRA, sample from it, then improve it with RL.

By default everything runs offline on the embedded server (`base_url="local"`) with the
`tinker-local/small` model. With TINKER_API_KEY set and `--base-model` naming a hosted model,
the same steps run against the Tinker service.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from collections.abc import Sequence
from importlib import resources

import tinker
from tinker import types

PROMPT_TEXT = "The lighthouse keeper"
RL_PROMPT_TEXT = "The sailor"
RL_LEARNING_RATE = 1e-3
RL_GROUPS = 4
RL_GROUP_SIZE = 8
RL_MAX_TOKENS = 24
#: Steps averaged at each end of the RL run to report the change in reward.
REPORT_WINDOW = 3


def load_corpus() -> str:
    """The short text the demo teaches the model, shipped with the package."""
    return resources.files("tinker.demo").joinpath("corpus.txt").read_text(encoding="utf-8")


def supervised_batch(tokens: Sequence[int], window: int, stride: int) -> list[types.Datum]:
    """Overlapping windows of the corpus as next-token prediction datums (weights 1)."""
    starts = range(0, max(1, len(tokens) - window), stride)
    batch = []
    for start in starts:
        piece = list(tokens[start : start + window + 1])
        batch.append(
            types.Datum(
                model_input=types.ModelInput.from_ints(piece[:-1]),
                loss_fn_inputs={"target_tokens": piece[1:], "weights": [1.0] * (len(piece) - 1)},
            )
        )
    return batch


def sea_reward(completion: bytes) -> float:
    """A verifiable toy reward: 1 when the completion mentions the sea, else 0."""
    return 1.0 if re.search(rb"\bsea\b", completion, re.IGNORECASE) else 0.0


def rl_datum(
    prompt: Sequence[int], sequence: types.SampledSequence, advantage: float
) -> types.Datum:
    """An importance_sampling datum: advantage on the sampled tokens, zero on the prompt."""
    tokens = list(prompt) + list(sequence.tokens)
    n_prompt = len(prompt) - 1
    sampled_logprobs = list(sequence.logprobs or [0.0] * len(sequence.tokens))
    return types.Datum(
        model_input=types.ModelInput.from_ints(tokens[:-1]),
        loss_fn_inputs={
            "target_tokens": tokens[1:],
            "logprobs": [0.0] * n_prompt + sampled_logprobs,
            "advantages": [0.0] * n_prompt + [advantage] * len(sequence.tokens),
        },
    )


def sample_once(sampler: tinker.SamplingClient, prompt: list[int], seed: int) -> list[int]:
    """One seeded temperature-1 completion of `prompt`, as the RL loop samples them."""
    params = types.SamplingParams(max_tokens=RL_MAX_TOKENS, temperature=1.0, seed=seed)
    response = sampler.sample(types.ModelInput.from_ints(prompt), 1, params).result()
    return list(response.sequences[0].tokens)


def complete(sampler: tinker.SamplingClient, prompt: list[int], max_tokens: int) -> list[int]:
    """Greedy completion of `prompt`."""
    params = types.SamplingParams(max_tokens=max_tokens, temperature=0.0)
    response = sampler.sample(types.ModelInput.from_ints(prompt), 1, params).result()
    return list(response.sequences[0].tokens)


def show(label: str, tokenizer: object, prompt: list[int], completion: list[int]) -> None:
    decode = tokenizer.decode  # type: ignore[attr-defined]
    text = decode(completion)
    shown = text if len(text) <= 100 else text[:100] + "..."
    print(f"  {label}: {decode(prompt)!r} -> {shown!r}")


def run(base_model: str, base_url: str | None, sft_steps: int, rl_steps: int, seed: int = 0) -> int:
    started = time.monotonic()
    with tinker.ServiceClient(base_url=base_url) as service:
        trainer = service.create_lora_training_client(base_model=base_model, rank=16, seed=seed)
        tokenizer = trainer.get_tokenizer()
        corpus = load_corpus()
        tokens = tokenizer.encode(corpus, add_special_tokens=False)
        prompt = tokenizer.encode(PROMPT_TEXT, add_special_tokens=False)
        n_new = len(tokens) - len(prompt)
        print(f"model {base_model}, corpus of {len(tokens)} tokens, session {service.session_id}")

        before = complete(trainer.save_weights_and_get_sampling_client(), prompt, n_new)
        show("before training", tokenizer, prompt, before)

        print(f"supervised fine-tuning, {sft_steps} steps:")
        batch = supervised_batch(tokens, window=64, stride=16)
        batch += supervised_batch(tokens, window=len(tokens) - 1, stride=len(tokens))
        n_targets = sum(d.model_input.length for d in batch)
        adam = types.AdamParams(learning_rate=4e-3)
        first_loss = last_loss = 0.0
        for step in range(1, sft_steps + 1):
            fb = trainer.forward_backward(batch, "cross_entropy")
            opt = trainer.optim_step(adam)  # pipelined behind forward_backward
            last_loss = fb.result().metrics["loss:sum"] / n_targets
            opt.result()
            first_loss = first_loss or last_loss
            if step == 1 or step % 5 == 0 or step == sft_steps:
                print(f"  step {step:3d}  loss/token {last_loss:.3f}")

        path = trainer.save_state("demo-sft").result().path
        print(f"  saved {path}")
        sampler = trainer.save_weights_and_get_sampling_client()
        after = complete(sampler, prompt, n_new)
        show("after training", tokenizer, prompt, after)
        matched = tokenizer.decode(prompt + after).startswith(corpus.rstrip("\n")[:80])

        rl_prompt = tokenizer.encode(RL_PROMPT_TEXT, add_special_tokens=False)
        print(f"RL, {rl_steps} steps of importance_sampling; reward 1 for mentioning the sea:")
        show("before RL", tokenizer, rl_prompt, sample_once(sampler, rl_prompt, seed))
        rewards = rl_loop(trainer, sampler, rl_prompt, rl_steps, seed)
        sampler = trainer.save_weights_and_get_sampling_client()
        show("after RL", tokenizer, rl_prompt, sample_once(sampler, rl_prompt, seed))
        window = min(REPORT_WINDOW, len(rewards))
        print(
            f"done in {time.monotonic() - started:.0f} s: loss/token {first_loss:.2f} -> "
            f"{last_loss:.2f}, sample matches text: {matched}, RL reward "
            f"{statistics.fmean(rewards[:window]):.3f} (first {window} steps) -> "
            f"{statistics.fmean(rewards[-window:]):.3f} (last {window} steps)"
        )
        return 0 if last_loss < first_loss and matched else 1


def rl_loop(
    trainer: tinker.TrainingClient,
    sampler: tinker.SamplingClient,
    prompt: list[int],
    steps: int,
    seed: int = 0,
) -> list[float]:
    """Group-baseline REINFORCE: sample, score, and push up the better-than-average samples."""
    model_input = types.ModelInput.from_ints(prompt)
    adam = types.AdamParams(learning_rate=RL_LEARNING_RATE)
    history = []
    for step in range(1, steps + 1):
        futures = [
            sampler.sample(
                model_input,
                RL_GROUP_SIZE,
                types.SamplingParams(
                    max_tokens=RL_MAX_TOKENS,
                    temperature=1.0,
                    seed=(seed * steps + step) * RL_GROUPS + group,
                ),
            )
            for group in range(RL_GROUPS)
        ]
        batch, step_rewards = [], []
        for future in futures:
            sequences = future.result().sequences
            rewards = [sea_reward(bytes(_byte_values(s.tokens))) for s in sequences]
            baseline = statistics.fmean(rewards)
            step_rewards.extend(rewards)
            for sequence, reward in zip(sequences, rewards, strict=True):
                batch.append(rl_datum(prompt, sequence, reward - baseline))
        trainer.forward_backward(batch, "importance_sampling")
        trainer.optim_step(adam).result()
        sampler = trainer.save_weights_and_get_sampling_client()
        history.append(statistics.fmean(step_rewards))
        print(f"  step {step:3d}  mean reward {history[-1]:.3f}")
    return history


def _byte_values(tokens: Sequence[int]) -> list[int]:
    """Byte-level token ids below 256 are the bytes themselves; special tokens are skipped."""
    return [t for t in tokens if t < 256]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tinker.demo", description=__doc__)
    parser.add_argument("--base-model", default=os.environ.get("TINKER_DEMO_BASE_MODEL"))
    parser.add_argument("--sft-steps", type=int, default=20)
    parser.add_argument("--rl-steps", type=int, default=12)
    parser.add_argument("--local-model", default="tinker-local/small")
    parser.add_argument("--seed", type=int, default=0, help="LoRA and sampling seed")
    args = parser.parse_args(argv)
    hosted = bool(os.environ.get("TINKER_API_KEY")) and args.base_model is not None
    base_model = args.base_model if hosted else args.local_model
    return run(base_model, None if hosted else "local", args.sft_steps, args.rl_steps, args.seed)


if __name__ == "__main__":
    sys.exit(main())
