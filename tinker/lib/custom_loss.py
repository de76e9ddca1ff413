"""Custom losses for `TrainingClient.forward_backward_custom` (public helpers).

With torch installed, a loss receives torch tensors and autograd gives its gradient. A numpy
loss `fn(data, logprobs: list[np.ndarray]) -> (loss: float, metrics: dict[str, float],
grads: list[np.ndarray])` supplies dloss/dlogprobs itself; mark it with `numpy_loss` so that it
gets numpy arrays even where torch is installed (without torch every loss is a numpy loss).
`Regularizer(name, fn, weight)` adds a weighted term, written the same way, to such a loss.
A per-datum loss traced by `ServiceClient.create_custom_loss` is a `LossHandle`.
"""

from tinker._custom_loss import numpy_loss
from tinker._loss_handle import LossHandle, PerDatumLossFn
from tinker._regularizers import Regularizer
from tinker.training_client import CustomLossFnV1

__all__ = ["CustomLossFnV1", "LossHandle", "PerDatumLossFn", "Regularizer", "numpy_loss"]
