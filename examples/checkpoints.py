"""Checkpoints: save, resume with the optimizer state, sample from saved weights, list, download.

1. Train a few steps, then save the training state (weights + Adam moments) and sampler weights.
2. Resume twice: `create_training_client_from_state_with_optimizer` and `load_state_with_optimizer`
   on a new client. One more identical step on the original and on a resumed client lands on
   the same loss, because the optimizer state came back too.
3. Sample from the saved sampler weights with `create_sampling_client(model_path=...)`.
4. List the run's checkpoints with the RestClient, publish one, and download it as files.

    python examples/checkpoints.py --output-dir /tmp/checkpoints
"""

from __future__ import annotations

import pathlib
import sys
import tempfile
from collections.abc import Sequence

from common import DEFAULT_MODEL, example_parser, supervised_datum
from sl_loop import CORPUS

import tinker
from tinker import types
from tinker.checkpoints import download_checkpoint


def forward_loss(trainer: tinker.TrainingClient, batch: list[types.Datum]) -> float:
    """The batch's summed cross-entropy at the trainer's current weights (no gradients)."""
    return trainer.forward(batch, "cross_entropy").result().metrics["loss:sum"]


def train_step(trainer: tinker.TrainingClient, batch: list[types.Datum]) -> None:
    """One supervised step (both operations run in call order on the server)."""
    backward = trainer.forward_backward(batch, "cross_entropy")
    update = trainer.optim_step(types.AdamParams(learning_rate=1e-2))
    backward.result()
    update.result()


def main(
    base_url: str = "local",
    model: str = DEFAULT_MODEL,
    output_dir: str | None = None,
    api_key: str | None = None,
) -> dict[str, object]:
    """Run the walkthrough; returns the losses, paths and files it produced."""
    with tinker.ServiceClient(base_url=base_url, api_key=api_key) as service:
        trainer = service.create_lora_training_client(base_model=model, rank=8, seed=0)
        tokenizer = trainer.get_tokenizer()
        batch = [supervised_datum(tokenizer.encode(text)) for text in CORPUS]
        for _ in range(3):
            train_step(trainer, batch)

        # 1. Save. Both calls are ordered after the three steps above.
        state_path = trainer.save_state("step-3").result().path
        sampler_path = trainer.save_weights_for_sampler("step-3", ttl_seconds=3600).result().path
        print(f"training state:  {state_path}\nsampler weights: {sampler_path}")
        saved_loss = forward_loss(trainer, batch)

        # 2. Resume, and take the same next step on the original and on both resumed clients.
        resumed = service.create_training_client_from_state_with_optimizer(state_path)
        other = service.create_lora_training_client(base_model=model, rank=8, seed=99)
        other.load_state_with_optimizer(state_path).result()
        losses = {"saved": saved_loss, "resumed": forward_loss(resumed, batch)}
        for name, client in (("original", trainer), ("resumed", resumed), ("loaded", other)):
            train_step(client, batch)
            losses[f"{name} after one more step"] = forward_loss(client, batch)
        for name, value in losses.items():
            print(f"loss {name:28s} {value:.6f}")

        # 3. Sample from the saved sampler weights (a frozen snapshot of step 3).
        sampler = service.create_sampling_client(model_path=sampler_path)
        prompt = tokenizer.encode("The sun")
        greedy = types.SamplingParams(max_tokens=16, temperature=0.0)
        sample = sampler.sample(types.ModelInput.from_ints(prompt), 1, greedy).result()
        print(
            f"sample from {sampler_path}: {tokenizer.decode(prompt + sample.sequences[0].tokens)!r}"
        )

        # 4. List, publish and download through the REST API.
        rest = service.create_rest_client()
        rest.publish_checkpoint_from_tinker_path(sampler_path).result()
        listed = rest.list_checkpoints(trainer.model_id).result().checkpoints
        for checkpoint in listed:
            expiry = checkpoint.expires_at.isoformat() if checkpoint.expires_at else "never"
            print(
                f"  {checkpoint.checkpoint_type:8s} {checkpoint.tinker_path}  "
                f"public={checkpoint.public}  expires={expiry}"
            )
        target = pathlib.Path(output_dir or tempfile.mkdtemp(prefix="tinker-checkpoints-"))
        local_dir = download_checkpoint(rest, sampler_path, target, force=True)
        files = sorted(path.name for path in local_dir.iterdir())
        print(f"downloaded to {local_dir}: {', '.join(files)}")
    return {
        "losses": losses,
        "state_path": state_path,
        "sampler_path": sampler_path,
        "checkpoints": listed,
        "download_dir": local_dir,
        "files": files,
    }


def cli(argv: Sequence[str] | None = None) -> int:
    parser = example_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--output-dir", default=None, help="where to download (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    main(args.base_url, args.model, args.output_dir, args.api_key)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
