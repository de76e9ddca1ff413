"""Custom losses with forward_backward_custom: a numpy loss, and the same loss in torch.

The service only runs its built-in losses, so a custom loss is applied on the client: a forward
pass gives the per-token logprobs of every datum's targets, your function computes the loss
and d(loss)/d(logprobs), and a weighted cross_entropy backward pass hands exactly that gradient
to the model. The loss here is a focal loss, -(1 - p)^gamma * log p per token with p = exp(lp),
averaged per sequence: it down-weights tokens the model already predicts well.

A numpy loss returns (loss, metrics, grads) and is marked with `numpy_loss`; a torch loss
returns (loss_tensor, metrics) and autograd finds the gradient. The torch part runs only when
torch is installed.

    python examples/custom_loss.py --steps 10
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
from common import DEFAULT_MODEL, example_parser, supervised_datum
from sl_loop import CORPUS

import tinker
from tinker import types
from tinker.lib.custom_loss import numpy_loss

GAMMA = 2.0


def focal_terms(lp: np.ndarray, gamma: float = GAMMA) -> tuple[np.ndarray, np.ndarray]:
    """Per-token focal loss -(1-p)^g * lp and its derivative with respect to lp (p = e^lp)."""
    lp = lp.astype(np.float64)
    p = np.exp(lp)
    q = np.clip(1.0 - p, 0.0, 1.0)
    loss = -(q**gamma) * lp
    grad = -(q**gamma) + gamma * p * lp * q ** (gamma - 1.0)
    return loss, grad


@numpy_loss
def focal_loss_numpy(
    data: list[types.Datum], logprobs: list[np.ndarray]
) -> tuple[float, dict[str, float], list[np.ndarray]]:
    """Sum over datums of the mean per-token focal loss; gradients computed by hand."""
    total = 0.0
    grads: list[np.ndarray] = []
    for lp in logprobs:
        loss, grad = focal_terms(lp)
        total += float(loss.mean())
        grads.append((grad / lp.size).astype(np.float32))
    return total, {"tokens:sum": float(sum(lp.size for lp in logprobs))}, grads


def focal_loss_torch(data: list[types.Datum], logprobs: list[Any]) -> tuple[Any, dict[str, float]]:
    """The same loss with torch tensors; autograd supplies the gradient."""
    import torch

    total = torch.zeros(())
    for lp in logprobs:
        total = total + (-((1 - lp.exp()).clamp(min=0) ** GAMMA) * lp).mean()
    return total, {"tokens:sum": float(sum(lp.numel() for lp in logprobs))}


def main(
    base_url: str = "local",
    model: str = DEFAULT_MODEL,
    steps: int = 8,
    learning_rate: float = 1e-2,
    api_key: str | None = None,
) -> dict[str, list[float]]:
    """Train with the numpy loss (and the torch one when available); returns losses per kind."""
    losses: dict[str, list[float]] = {}
    with tinker.ServiceClient(base_url=base_url, api_key=api_key) as service:
        kinds: dict[str, Any] = {"numpy": focal_loss_numpy}
        if importlib.util.find_spec("torch") is not None:
            kinds["torch"] = focal_loss_torch
        else:
            print("torch is not installed: only the numpy loss runs")
        for kind, loss_fn in kinds.items():
            # Same seed for both: the two runs start from identical weights.
            trainer = service.create_lora_training_client(base_model=model, rank=8, seed=0)
            tokenizer = trainer.get_tokenizer()
            batch = [supervised_datum(tokenizer.encode(text)) for text in CORPUS]
            adam = types.AdamParams(learning_rate=learning_rate)
            losses[kind] = []
            for step in range(steps):
                # Blocks for the forward pass, then returns the backward pass's future.
                backward = trainer.forward_backward_custom(batch, loss_fn)
                update = trainer.optim_step(adam)
                metrics = backward.result().metrics
                update.result()
                losses[kind].append(metrics["loss:sum"])
                print(
                    f"[{kind}] step {step:2d}  focal loss {metrics['loss:sum']:.4f}  "
                    f"(surrogate {metrics['surrogate_loss:sum']:.4f})"
                )
    return losses


def cli(argv: Sequence[str] | None = None) -> int:
    parser = example_parser(__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=1e-2)
    args = parser.parse_args(argv)
    main(args.base_url, args.model, args.steps, args.learning_rate, args.api_key)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
