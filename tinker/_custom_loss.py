"""Client-side custom losses for `TrainingClient.forward_backward_custom`.

The server only knows its built-in losses, so a custom loss is applied through a linear
surrogate: the client gets per-token target logprobs from a forward pass, computes the user's
loss L and g = dL/dlogprobs locally, then asks for a `cross_entropy` backward with
weights = -g. That loss is -sum(weights * logprobs), whose gradient with respect to every
logprob is g, so the model receives exactly the gradient of L at the current weights.

Two conventions for the user's function `fn(data, logprobs)`:
- torch (used when torch is installed): `logprobs` is a list of 1-D float32 tensors with
  requires_grad; `fn` returns `(loss_tensor, metrics)` and autograd supplies g.
- numpy (used without torch, or for functions wrapped with `numpy_loss`): `logprobs` is a list
  of 1-D float32 numpy arrays; `fn` returns `(loss: float, metrics: dict[str, float],
  grads: list[np.ndarray])` where `grads[i]` = dL/dlogprobs[i], same shape as `logprobs[i]`.

Regularizers (tinker._regularizers) follow the same conventions; `evaluate_objective` runs the
loss and every regularizer in parallel and combines them: L + sum(weight * R), with each
regularizer's value, weighted contribution and gradient norm in the metrics.
"""

from __future__ import annotations

import concurrent.futures
import importlib
import importlib.util
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import attrs
import numpy as np

from tinker._regularizers import Regularizer

__all__ = ["CustomLossResult", "evaluate_custom_loss", "evaluate_objective", "numpy_loss"]

F = TypeVar("F", bound=Callable[..., Any])

_NUMPY_MARK = "__tinker_numpy_loss__"


def numpy_loss(fn: F) -> F:
    """Mark `fn` as a numpy custom loss (returns loss, metrics and grads) even if torch exists."""
    setattr(fn, _NUMPY_MARK, True)
    return fn


@attrs.frozen
class CustomLossResult:
    """The user's loss value, its metrics and dL/dlogprobs per datum (float32, 1-D)."""

    loss: float
    metrics: dict[str, float]
    grads: list[np.ndarray]


def _torch() -> Any | None:
    if importlib.util.find_spec("torch") is None:
        return None
    return importlib.import_module("torch")


def evaluate_custom_loss(
    loss_fn: Callable[..., Any],
    data: Sequence[Any],
    logprobs: Sequence[np.ndarray],
    *,
    what: str = "custom loss",
) -> CustomLossResult:
    """Run the user's loss on the forward logprobs and return its value, metrics and grads.
    `what` names the function in errors (a regularizer's name, say)."""
    torch = None if getattr(loss_fn, _NUMPY_MARK, False) else _torch()
    if torch is None:
        result = loss_fn(list(data), [np.array(lp, dtype=np.float32) for lp in logprobs])
        loss, metrics, grads = _unpack(result, what, with_grads=True)
    else:
        leaves = [torch.tensor(lp, dtype=torch.float32, requires_grad=True) for lp in logprobs]
        result = loss_fn(list(data), leaves)
        loss, metrics, grads = _unpack(result, what, with_grads=False)
        if grads is None:
            loss.backward()
            grads = []
            for index, leaf in enumerate(leaves):
                if leaf.grad is None:
                    raise ValueError(
                        f"No gradient computed for the logprobs of datum {index}: "
                        f"the {what} must depend on the logprobs tensors it was given"
                    )
                grads.append(_plain(leaf.grad))
    return CustomLossResult(
        loss=_as_float(loss, f"{what} loss"),
        metrics=_check_metrics(metrics, what),
        grads=_check_grads(grads, logprobs, what),
    )


def evaluate_objective(
    loss_fn: Callable[..., Any],
    regularizers: Sequence[Regularizer],
    data: Sequence[Any],
    logprobs: Sequence[np.ndarray],
) -> CustomLossResult:
    """The loss plus every weighted regularizer, each evaluated on its own thread (at once).

    The value is L + sum(w * R) and the gradient dL + sum(w * dR); the metrics hold the loss's
    own metrics, `base_loss:sum` (L), and per regularizer `regularizer/<name>:value` (R),
    `:contribution` (w * R), `:grad_norm` (the L2 norm of dR over the batch) and its own
    metrics as `regularizer/<name>/<key>`. An error of any function is raised here.
    """
    if not regularizers:
        return evaluate_custom_loss(loss_fn, data, logprobs)
    jobs: list[tuple[Callable[..., Any], str]] = [(loss_fn, "custom loss")]
    jobs += [(r.fn, f"regularizer {r.name!r}") for r in regularizers]
    with concurrent.futures.ThreadPoolExecutor(
        max_workers=len(jobs), thread_name_prefix="tinker-regularizer"
    ) as pool:
        pending = [pool.submit(evaluate_custom_loss, fn, data, logprobs, what=what)
                   for fn, what in jobs]  # fmt: skip
        base, *terms = [job.result() for job in pending]
    total = [grad.astype(np.float64) for grad in base.grads]
    value = base.loss
    metrics = {**base.metrics, "base_loss:sum": base.loss}
    for regularizer, term in zip(regularizers, terms, strict=True):
        for grad, part in zip(total, term.grads, strict=True):
            grad += regularizer.weight * part.astype(np.float64)
        value += regularizer.weight * term.loss
        prefix = f"regularizer/{regularizer.name}"
        metrics[f"{prefix}:value"] = term.loss
        metrics[f"{prefix}:contribution"] = regularizer.weight * term.loss
        metrics[f"{prefix}:grad_norm"] = math.sqrt(
            math.fsum(float(np.dot(g.astype(np.float64), g.astype(np.float64))) for g in term.grads)
        )
        metrics.update({f"{prefix}/{key}": number for key, number in term.metrics.items()})
    grads = _check_grads(total, logprobs, "regularized loss")
    return CustomLossResult(loss=value, metrics=metrics, grads=grads)


def _unpack(result: Any, what: str, *, with_grads: bool) -> tuple[Any, Any, Any]:
    if isinstance(result, tuple) and len(result) == 3:
        return result[0], result[1], list(result[2])
    if isinstance(result, tuple) and len(result) == 2 and not with_grads:
        return result[0], result[1], None
    expected = "(loss, metrics, grads)" if with_grads else "(loss, metrics[, grads])"
    raise TypeError(
        f"{what} function must return {expected}, got {type(result).__name__}"
        + ("; numpy losses supply grads = dloss/dlogprobs per datum" if with_grads else "")
    )


def _plain(value: Any) -> Any:
    """A torch tensor as a detached numpy array; anything else unchanged."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        return value.detach().cpu().numpy()
    return value


def _as_float(value: Any, what: str) -> float:
    try:
        number = float(np.asarray(_plain(value), dtype=np.float64).reshape(()))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be a scalar number, got {value!r}") from exc
    return number


def _check_metrics(metrics: Any, what: str) -> dict[str, float]:
    if not isinstance(metrics, Mapping):
        raise TypeError(f"{what} metrics must be a dict[str, float], got {metrics!r}")
    return {str(key): _as_float(value, f"{what} metric {key!r}") for key, value in metrics.items()}


def _check_grads(
    grads: Sequence[Any], logprobs: Sequence[np.ndarray], what: str
) -> list[np.ndarray]:
    if len(grads) != len(logprobs):
        raise ValueError(f"{what} returned {len(grads)} gradients for {len(logprobs)} datums")
    checked: list[np.ndarray] = []
    for index, (grad, lp) in enumerate(zip(grads, logprobs, strict=True)):
        array = np.asarray(_plain(grad), dtype=np.float32)
        if array.size != np.asarray(lp).size:
            raise ValueError(
                f"{what}: gradient of datum {index} has {array.size} elements, "
                f"its logprobs have {np.asarray(lp).size}"
            )
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{what}: gradient of datum {index} is not finite")
        checked.append(array.reshape(-1))
    return checked
