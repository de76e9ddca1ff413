"""examples/custom_loss.py: the focal loss's hand-written gradient and its training run."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import numpy as np
import pytest

import tinker


def test_focal_gradient_matches_finite_differences(example: Callable[[str], ModuleType]) -> None:
    focal_terms = example("custom_loss").focal_terms
    lp = np.array([-0.01, -0.3, -1.0, -2.5, -7.0], dtype=np.float64)
    h = 1e-6
    loss_plus, _ = focal_terms(lp + h)
    loss_minus, _ = focal_terms(lp - h)
    _, grad = focal_terms(lp)
    np.testing.assert_allclose(grad, (loss_plus - loss_minus) / (2 * h), rtol=1e-6, atol=1e-9)


def test_numpy_loss_averages_per_sequence(example: Callable[[str], ModuleType]) -> None:
    custom_loss = example("custom_loss")
    logprobs = [np.array([-1.0, -2.0], np.float32), np.array([-0.5], np.float32)]
    loss, metrics, grads = custom_loss.focal_loss_numpy([], logprobs)
    per_token = [custom_loss.focal_terms(lp) for lp in logprobs]
    assert loss == pytest.approx(per_token[0][0].mean() + per_token[1][0].mean())
    assert metrics == {"tokens:sum": 3.0}
    np.testing.assert_allclose(grads[0], per_token[0][1] / 2, rtol=1e-6)
    np.testing.assert_allclose(grads[1], per_token[1][1], rtol=1e-6)


def test_training_lowers_the_focal_loss_it_reports(
    example: Callable[[str], ModuleType], connection: dict[str, str]
) -> None:
    custom_loss = example("custom_loss")
    losses = custom_loss.main(steps=4, **connection)["numpy"]
    assert len(losses) == 4 and losses[-1] < losses[0]

    # The first reported loss is the focal loss of the untrained model (same seed), computed
    # here independently from a plain forward pass.
    common, sl_loop = example("common"), example("sl_loop")
    with tinker.ServiceClient(**connection) as service:
        trainer = service.create_lora_training_client(
            base_model=common.DEFAULT_MODEL, rank=8, seed=0
        )
        tokenizer = trainer.get_tokenizer()
        batch = [common.supervised_datum(tokenizer.encode(text)) for text in sl_loop.CORPUS]
        outputs = trainer.forward(batch, "cross_entropy").result().loss_fn_outputs
    expected = sum(
        float(custom_loss.focal_terms(out["logprobs"].to_numpy())[0].mean()) for out in outputs
    )
    assert losses[0] == pytest.approx(expected, rel=1e-5)


def test_torch_loss_agrees_with_the_numpy_loss(
    example: Callable[[str], ModuleType], connection: dict[str, str]
) -> None:
    pytest.importorskip("torch")
    losses = example("custom_loss").main(steps=3, **connection)
    np.testing.assert_allclose(losses["torch"], losses["numpy"], rtol=1e-4)
