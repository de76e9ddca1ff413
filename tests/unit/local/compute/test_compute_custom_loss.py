"""Custom-loss graphs: exact gradients against finite differences (float64), the whole path
through the trainer, metric reduction, and clear errors for graphs and data that cannot run."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from compute_helpers import TINY, directional_check, random_adapter
from graph_builder import GraphBuilder, ref

from tinker.local.compute.custom_loss import CustomLoss
from tinker.local.compute.errors import UserInputError
from tinker.local.compute.trainer import DatumArrays, LoraTrainer

FIXTURE = pathlib.Path(__file__).parents[3] / "fixtures" / "official-0.38" / "calls"


def _compile(body: dict[str, Any]) -> CustomLoss:
    return CustomLoss.compile(body["name"], body["inputs"], body["graph"])


def _fd_check(loss: CustomLoss, lp: np.ndarray, inputs: dict[str, np.ndarray]) -> None:
    """The graph's gradient equals central differences of its loss, element by element."""
    result = loss.evaluate(0, lp, inputs)
    h = 1e-6
    numeric = np.zeros_like(lp)
    for index in np.ndindex(lp.shape):
        plus, minus = lp.copy(), lp.copy()
        plus[index] += h
        minus[index] -= h
        numeric[index] = (
            loss.evaluate(0, plus, inputs).loss - loss.evaluate(0, minus, inputs).loss
        ) / (2 * h)
    np.testing.assert_allclose(result.grad, numeric, rtol=1e-6, atol=1e-8)
    assert np.abs(result.grad).sum() > 0


def _ppo_like() -> dict[str, Any]:
    g = GraphBuilder(logprobs=1, logprobs_old=1, advantages=1)
    diff = g.fn("sub", "operator.sub", ref("logprobs"), ref("logprobs_old"))
    ratio = g.fn("exp", "torch.exp", diff)
    clipped = g.fn("clamp", "torch.clamp", ratio, min=0.8, max=1.2)
    a = g.fn("mul", "operator.mul", ratio, ref("advantages"))
    b = g.fn("mul_1", "operator.mul", clipped, ref("advantages"))
    low = g.fn("minimum", "torch.minimum", a, b)
    total = g.method("sum_1", "sum", low)
    loss = g.fn("neg", "operator.neg", total)
    mean_ratio = g.method("mean", "mean", ratio)
    return g.graph(loss, {"custom/ratio:mean": mean_ratio, "custom/loss:sum": loss})


def _rank2_mixture() -> dict[str, Any]:
    """Rank-2 logprobs through log_softmax, logsumexp, max along a dim, getitem, where, cumsum,
    stack, pow, sigmoid, softplus, shape attributes and a method-style reshape."""
    g = GraphBuilder(logprobs=2, weights=1)
    norm = g.fn("log_softmax", "torch.nn.functional.log_softmax", ref("logprobs"), dim=-1,
                _stacklevel=3, dtype=None)  # fmt: skip
    lse = g.fn("logsumexp", "torch.logsumexp", ref("logprobs"), 1)
    best = g.method("max_1", "max", ref("logprobs"), dim=1)
    values = g.fn("getattr_1", "getattr", best, "values")
    first = g.fn("getitem", "operator.getitem", norm, {"tuple": [{"slice": [None, None, None]}, 0]})
    shape = g.fn("getattr_2", "getattr", ref("logprobs"), "shape")
    rows = g.fn("getitem_1", "operator.getitem", shape, 0)
    flat = g.method("view", "view", norm, rows, -1)
    positive = g.fn("gt", "operator.gt", ref("weights"), 0)
    chosen = g.fn("where", "torch.where", positive, first, values)
    running = g.fn("cumsum", "torch.cumsum", chosen, dim=0)
    stacked = g.fn("stack", "torch.stack", [running, lse], dim=0)
    squared = g.fn("pow_1", "operator.pow", stacked, 2)
    soft = g.fn("softplus", "torch.nn.functional.softplus", squared)
    gate = g.fn("sigmoid", "torch.sigmoid", g.method("sum_2", "sum", flat, dim=1))
    weighted = g.fn("mul", "operator.mul", g.method("mean_1", "mean", soft, 0), gate)
    total = g.method("sum_3", "sum", weighted)
    scaled = g.fn("truediv", "operator.truediv", total, rows)
    return g.graph(scaled, {"custom/rows:sum": rows})


def test_the_captured_official_graph_is_a_weighted_nll() -> None:
    body = json.loads((FIXTURE / "ServiceClient.create_custom_loss.json").read_text())
    loss = _compile(body["modes"]["features"][0]["body"]["json"])
    lp = np.log(np.array([0.2, 0.5, 0.9]))
    weights = np.array([1.0, 0.5, 2.0], np.float32)
    result = loss.evaluate(0, lp, {"weights": weights})
    assert result.loss == pytest.approx(float(-(lp * weights).sum()))
    np.testing.assert_array_equal(result.grad, -weights.astype(np.float64))
    assert result.metrics == {"custom/nll:sum": pytest.approx(result.loss)}


@pytest.mark.parametrize("build", [_ppo_like, _rank2_mixture])
def test_graph_gradients_match_finite_differences(build: Callable[[], dict[str, Any]]) -> None:
    rng = np.random.default_rng(0)
    loss = _compile(build())
    if loss.logprobs_rank == 1:
        lp = np.log(rng.uniform(0.1, 0.9, 6))
        inputs = {"logprobs_old": lp + rng.normal(0, 0.1, 6), "advantages": rng.normal(size=6)}
    else:
        lp = np.log(rng.uniform(0.1, 0.9, (5, 3)))
        inputs = {"weights": np.array([1.0, -1.0, 2.0, 0.0, 3.0])}
    _fd_check(loss, lp, inputs)


def test_elementwise_and_shape_ops_match_finite_differences() -> None:
    g = GraphBuilder(logprobs=1)
    x = ref("logprobs")
    terms = [
        g.fn("exp", "torch.exp", x),
        g.method("log1p", "log1p", g.fn("abs_1", "torch.abs", x)),
        g.fn("tanh", "torch.tanh", x),
        g.fn("sqrt", "torch.sqrt", g.fn("neg", "operator.neg", x)),
        g.method("reciprocal", "reciprocal", x),
        g.fn("logsig", "torch.nn.functional.logsigmoid", x),
        g.fn("expm1", "math.exp", x),
        g.fn("rsub", "operator.sub", 1.0, g.fn("square", "torch.square", x)),
        g.fn("maximum", "torch.max", x, g.fn("full", "torch.full_like", x, -1.0)),
        g.fn("amax", "torch.amax", g.method("unsq", "unsqueeze", x, 0), dim=1),
        g.fn("softmax", "torch.softmax", x, 0),
        g.fn("div", "torch.div", x, g.fn("add", "torch.add", x, 5.0, alpha=2.0)),
        g.method("masked", "masked_fill", x, g.fn("lt", "operator.lt", x, -1.0), 0.0),
        g.fn("flip", "operator.getitem", x, {"slice": [None, None, -1]}),
        g.method("rev", "gather", x, 0, g.fn("idx", "torch.tensor", [2, 0, 1, 1])),
    ]
    total = None
    for position, term in enumerate(terms):
        summed = g.method(f"s{position}", "sum", term)
        total = summed if total is None else g.fn(f"t{position}", "operator.add", total, summed)
    loss = _compile(g.graph(total))
    lp = np.log(np.array([0.3, 0.6, 0.2, 0.5]))
    _fd_check(loss, lp, {})


def _float64_trainer(seed: int) -> LoraTrainer:
    trainer = LoraTrainer(TINY, rank=2, seed=seed, dtype=np.float64)
    trainer.load(random_adapter(trainer, np.random.default_rng(seed)), None)
    return trainer


def test_custom_loss_through_the_trainer_matches_finite_differences() -> None:
    """The parameter gradient of the graph's loss, through the model, rank-1 and rank-2."""
    rng = np.random.default_rng(2)
    for body, targets in ((_ppo_like(), rng.integers(0, 260, 7)),
                          (_rank2_mixture(), rng.integers(0, 260, (5, 3)))):  # fmt: skip
        _check_through_the_trainer(_compile(body), targets, rng)


def _check_through_the_trainer(
    loss: CustomLoss, targets: np.ndarray, rng: np.random.Generator
) -> None:
    n = len(targets)
    inputs: dict[str, np.ndarray] = {"target_tokens": targets}
    if loss.logprobs_rank == 1:
        inputs |= {"logprobs_old": rng.normal(-5.5, 0.2, n), "advantages": rng.normal(size=n)}
    else:
        inputs |= {"weights": rng.normal(size=n)}
    data = [DatumArrays(rng.integers(0, 260, n), inputs)]
    trainer = _float64_trainer(3)
    point = {k: v.astype(np.float64) for k, v in random_adapter(trainer, rng).items()}

    def loss_at(params: dict[str, np.ndarray]) -> float:
        trainer.load(params, None)
        result = trainer.forward(data, "custom", {"loss_id": "x"}, custom_loss=loss)
        return result.metrics["loss:sum"]

    trainer.load(point, None)
    trainer.forward_backward(data, "custom", {"loss_id": "x"}, custom_loss=loss)
    grads = trainer.accumulated_gradients()
    for name, (numeric, analytic) in directional_check(loss_at, point, grads, rng).items():
        assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-9), name


def test_custom_outputs_and_metrics_reduce_by_suffix() -> None:
    loss = _compile(_ppo_like())
    rng = np.random.default_rng(4)
    data = [
        DatumArrays(
            rng.integers(0, 260, n),
            {
                "target_tokens": rng.integers(0, 260, n),
                "logprobs_old": np.full(n, -5.5, np.float32),
                "advantages": np.ones(n, np.float32),
                "weights": np.ones(n, np.float32),  # not read by the graph: allowed
            },
        )
        for n in (3, 5)
    ]
    trainer = LoraTrainer(TINY, rank=2, seed=0)
    result = trainer.forward(data, "custom", {"loss_id": "x"}, custom_loss=loss)
    assert result.loss_fn_output_type == "CustomLossReturn"
    assert [set(out) for out in result.outputs] == [{"logprobs"}, {"logprobs"}]
    per_datum = [
        loss.evaluate(i, out["logprobs"].astype(np.float64), d.inputs)
        for i, (out, d) in enumerate(zip(result.outputs, data, strict=True))
    ]
    total = sum(r.loss for r in per_datum)
    assert result.metrics["loss:sum"] == pytest.approx(total, rel=1e-5)
    assert result.metrics["custom/loss:sum"] == pytest.approx(total, rel=1e-5)
    mean_ratio = np.mean([r.metrics["custom/ratio:mean"] for r in per_datum])
    assert result.metrics["custom/ratio:mean"] == pytest.approx(mean_ratio, rel=1e-5)


def _nodes_with(extra: dict[str, Any]) -> dict[str, Any]:
    g = GraphBuilder(logprobs=1)
    g.nodes.append(extra)
    return g.graph(ref(extra["name"]))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            _nodes_with(
                {"op": "call_module", "name": "m", "target": "lin", "args": [], "kwargs": {}}
            ),
            "op 'call_module' is not allowed",
        ),
        (
            _nodes_with(
                {
                    "op": "call_function",
                    "name": "f",
                    "target": "os.system",
                    "args": ["ls"],
                    "kwargs": {},
                }
            ),
            "function 'os.system' is not allowed",
        ),
        (
            _nodes_with(
                {
                    "op": "call_method",
                    "name": "f",
                    "target": "item",
                    "args": [ref("logprobs")],
                    "kwargs": {},
                }
            ),
            "tensor method 'item' is not allowed",
        ),
        (
            _nodes_with(
                {
                    "op": "call_function",
                    "name": "f",
                    "target": "torch.exp",
                    "args": [ref("later")],
                    "kwargs": {},
                }
            ),
            "refers to 'later', which is not an earlier node",
        ),
        (
            _nodes_with(
                {
                    "op": "call_function",
                    "name": "f",
                    "target": "torch.exp",
                    "args": [{"lambda": "x"}],
                    "kwargs": {},
                }
            ),
            "cannot decode argument",
        ),
    ],
)
def test_graphs_that_cannot_run_are_rejected_at_upload(body: dict[str, Any], message: str) -> None:
    with pytest.raises(UserInputError, match=message):
        _compile(body)


def test_upload_checks_inputs_placeholders_and_metrics() -> None:
    body = _ppo_like()
    with pytest.raises(UserInputError, match="first custom loss input must be 'logprobs'"):
        CustomLoss.compile("l", body["inputs"][1:], body["graph"])
    with pytest.raises(UserInputError, match="name 'Bad' must match"):
        CustomLoss.compile("l", [*body["inputs"], {"name": "Bad", "rank": 1}], body["graph"])
    with pytest.raises(UserInputError, match=r"placeholders .* do not match"):
        CustomLoss.compile("l", [*body["inputs"], {"name": "extra", "rank": 1}], body["graph"])
    g = GraphBuilder(logprobs=1)
    with pytest.raises(UserInputError, match="metric key 'custom/x' must match"):
        _compile(g.graph(ref("logprobs"), {"custom/x": ref("logprobs")}))
    with pytest.raises(UserInputError, match="format 1"):
        CustomLoss.compile("l", body["inputs"], {"format": 2, "nodes": []})


def test_runtime_errors_name_the_datum_and_the_node() -> None:
    g = GraphBuilder(logprobs=1, weights=1)
    short = g.fn("getitem", "operator.getitem", ref("weights"), {"slice": [None, 2, None]})
    product = g.fn("mul", "operator.mul", ref("logprobs"), short)
    loss = _compile(g.graph(g.method("sum_1", "sum", product)))
    with pytest.raises(UserInputError, match=r"datum 0: .*node 'mul' \(operator.mul\).*\[4\]"):
        loss.evaluate(0, np.zeros(4), {"weights": np.ones(4)})

    g = GraphBuilder(logprobs=1)
    not_scalar = _compile(g.graph(g.fn("exp", "torch.exp", ref("logprobs"))))
    with pytest.raises(UserInputError, match="the loss must be a one-element tensor, got \\[3\\]"):
        not_scalar.evaluate(0, np.zeros(3), {})


def test_trainer_checks_custom_inputs() -> None:
    loss = _compile(_ppo_like())
    trainer = LoraTrainer(TINY, rank=1, seed=0)
    datum = DatumArrays(np.array([1, 2]), {"target_tokens": np.array([1, 2])})
    with pytest.raises(UserInputError, match="missing 'logprobs_old' for custom loss"):
        trainer.forward([datum], "custom", {"loss_id": "x"}, custom_loss=loss)
    with pytest.raises(UserInputError, match="needs the loss_id of a loss created"):
        trainer.forward([datum], "custom", {"loss_id": "x"})
    rank2 = DatumArrays(np.array([1, 2]), {"target_tokens": np.array([[1, 2], [3, 4]])})
    with pytest.raises(UserInputError, match="takes rank-1 logprobs"):
        trainer.forward([rank2], "custom", None, custom_loss=loss)
