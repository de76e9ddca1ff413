"""Tracing per-datum losses for create_custom_loss: the exact JSON graph, the key, and every
rejection with its message (ValueError in the caller's thread)."""

from __future__ import annotations

import json
import math
import pathlib
import sys
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from tinker._loss_trace import qualified_name, trace_loss  # noqa: E402

FIXTURE = pathlib.Path(__file__).parents[2] / "fixtures" / "official-0.38" / "calls"
CAPTURED = torch.ones(3)


@torch.fx.wrap
def _outside_helper(x: Any) -> Any:
    return x * 2


def nll(logprobs: Any, weights: Any) -> Any:
    loss = -(logprobs * weights).sum()
    return loss, {"custom/nll:sum": loss}


def _nodes(fn: Any, ranks: dict[str, int]) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = trace_loss(fn, ranks).graph.model_dump(mode="json")["nodes"]
    return nodes


def test_the_official_example_traces_to_the_captured_graph() -> None:
    """What the official SDK 0.38 uploaded for the same function, node for node."""
    body = json.loads((FIXTURE / "ServiceClient.create_custom_loss.json").read_text())
    sent = body["modes"]["features"][0]["body"]["json"]
    traced = trace_loss(nll, {"logprobs": 1, "weights": 1})
    assert traced.name == sent["name"] == "nll"
    assert [i.model_dump(mode="json") for i in traced.inputs] == sent["inputs"]
    assert traced.graph.model_dump(mode="json") == sent["graph"]


def test_arguments_use_the_one_key_encodings() -> None:
    def shaped(logprobs: Any, mask: Any, scale: Any) -> Any:
        tail = logprobs[..., 1:] + float("-inf") * 0 + math.log(2.0)
        wide = logprobs.to(torch.float64).sum(dim=-1, keepdim=True)
        rows = logprobs.shape[0]
        soft = torch.nn.functional.softplus(logprobs)
        loss = (tail.sum() + wide.sum() / rows + soft.sum()) * scale + mask.sum() + math.inf
        return loss, {"custom/rows:mean": wide.mean()}

    ref = {"ref": "logprobs"}
    assert _nodes(shaped, {"logprobs": 2, "mask": 2, "scale": 0}) == [
        {"op": "placeholder", "name": "logprobs", "target": "logprobs", "args": [], "kwargs": {}},
        {"op": "placeholder", "name": "mask", "target": "mask", "args": [], "kwargs": {}},
        {"op": "placeholder", "name": "scale", "target": "scale", "args": [], "kwargs": {}},
        {
            "op": "call_function",
            "name": "getitem",
            "target": "operator.getitem",
            "args": [ref, {"tuple": [{"ellipsis": True}, {"slice": [1, None, None]}]}],
            "kwargs": {},
        },
        {
            "op": "call_function",
            "name": "add",
            "target": "operator.add",
            "args": [{"ref": "getitem"}, {"float": "nan"}],
            "kwargs": {},
        },
        {
            "op": "call_function",
            "name": "add_1",
            "target": "operator.add",
            "args": [{"ref": "add"}, 0.6931471805599453],
            "kwargs": {},
        },
        {
            "op": "call_method",
            "name": "to",
            "target": "to",
            "args": [ref, {"dtype": "float64"}],
            "kwargs": {},
        },
        {
            "op": "call_method",
            "name": "sum_1",
            "target": "sum",
            "args": [{"ref": "to"}],
            "kwargs": {"dim": -1, "keepdim": True},
        },
        {
            "op": "call_function",
            "name": "getattr_1",
            "target": "getattr",
            "args": [ref, "shape"],
            "kwargs": {},
        },
        {
            "op": "call_function",
            "name": "getitem_1",
            "target": "operator.getitem",
            "args": [{"ref": "getattr_1"}, 0],
            "kwargs": {},
        },
        {
            "op": "call_function",
            "name": "softplus",
            "target": "torch.nn.functional.softplus",
            "args": [ref],
            "kwargs": {},
        },
        {
            "op": "call_method",
            "name": "sum_2",
            "target": "sum",
            "args": [{"ref": "add_1"}],
            "kwargs": {},
        },
        {
            "op": "call_method",
            "name": "sum_3",
            "target": "sum",
            "args": [{"ref": "sum_1"}],
            "kwargs": {},
        },
        {
            "op": "call_function",
            "name": "truediv",
            "target": "operator.truediv",
            "args": [{"ref": "sum_3"}, {"ref": "getitem_1"}],
            "kwargs": {},
        },
        {
            "op": "call_function",
            "name": "add_2",
            "target": "operator.add",
            "args": [{"ref": "sum_2"}, {"ref": "truediv"}],
            "kwargs": {},
        },
        {
            "op": "call_method",
            "name": "sum_4",
            "target": "sum",
            "args": [{"ref": "softplus"}],
            "kwargs": {},
        },
        {
            "op": "call_function",
            "name": "add_3",
            "target": "operator.add",
            "args": [{"ref": "add_2"}, {"ref": "sum_4"}],
            "kwargs": {},
        },
        {
            "op": "call_function",
            "name": "mul",
            "target": "operator.mul",
            "args": [{"ref": "add_3"}, {"ref": "scale"}],
            "kwargs": {},
        },
        {
            "op": "call_method",
            "name": "sum_5",
            "target": "sum",
            "args": [{"ref": "mask"}],
            "kwargs": {},
        },
        {
            "op": "call_function",
            "name": "add_4",
            "target": "operator.add",
            "args": [{"ref": "mul"}, {"ref": "sum_5"}],
            "kwargs": {},
        },
        {
            "op": "call_function",
            "name": "add_5",
            "target": "operator.add",
            "args": [{"ref": "add_4"}, {"float": "inf"}],
            "kwargs": {},
        },
        {
            "op": "call_method",
            "name": "mean",
            "target": "mean",
            "args": [{"ref": "sum_1"}],
            "kwargs": {},
        },
        {
            "op": "output",
            "name": "output",
            "target": "output",
            "args": [
                {"tuple": [{"ref": "add_5"}, {"dict": {"custom/rows:mean": {"ref": "mean"}}}]}
            ],
            "kwargs": {},
        },
    ]


def test_qualified_names_are_the_public_ones() -> None:
    import operator

    assert qualified_name(operator.mul) == "operator.mul"
    assert qualified_name(getattr) == "getattr"
    assert qualified_name(math.log) == "math.log"
    assert qualified_name(torch.exp) == "torch.exp"
    assert qualified_name(torch.nn.functional.log_softmax) == "torch.nn.functional.log_softmax"
    assert qualified_name(torch.nn.functional.logsigmoid) == "torch.nn.functional.logsigmoid"
    assert qualified_name(torch.special.expit) == "torch.special.expit"


def test_the_key_is_the_graph_and_inputs_not_the_name() -> None:
    def again(logprobs: Any, weights: Any) -> Any:
        loss = -(logprobs * weights).sum()
        return loss, {"custom/nll:sum": loss}

    def other(logprobs: Any, weights: Any) -> Any:
        loss = -(logprobs * weights).mean()
        return loss, {"custom/nll:sum": loss}

    first = trace_loss(nll, {"logprobs": 1, "weights": 1})
    assert len(first.key) == 64 and int(first.key, 16) >= 0
    assert trace_loss(again, {"logprobs": 1, "weights": 1}).key == first.key
    assert trace_loss(nll, {"logprobs": 1, "weights": 2}).key != first.key
    assert trace_loss(other, {"logprobs": 1, "weights": 1}).key != first.key


SEVENTEEN = eval(
    f"lambda logprobs, {', '.join(f'x{i}' for i in range(16))}: (logprobs.sum(), {{}})"
)


def _scalar(logprobs: Any) -> Any:
    return logprobs.sum(), {}


REJECTED: list[tuple[Any, Any, str]] = [
    (len, {"logprobs": 1}, "fn must be a Python function"),
    (lambda lp: (lp.sum(), {}), {"lp": 1}, "the first parameter must be named 'logprobs'"),
    (lambda: (0, {}), {}, "the first parameter must be named 'logprobs'"),
    (lambda logprobs, Weights: (logprobs.sum(), {}), {"logprobs": 1, "Weights": 1},
     r"parameter 'Weights' must match \[a-z_\]\[a-z0-9_\]\{0,63\}"),
    (lambda logprobs, w=None: (logprobs.sum(), {}), {"logprobs": 1, "w": 1},
     "parameter 'w' has a default"),
    (lambda logprobs, *rest: (logprobs.sum(), {}), {"logprobs": 1},
     "parameter 'rest' is variadic positional"),
    (lambda logprobs, **more: (logprobs.sum(), {}), {"logprobs": 1},
     "parameter 'more' is variadic keyword"),
    (lambda logprobs, *, w: (logprobs.sum(), {}), {"logprobs": 1, "w": 1},
     "parameter 'w' is keyword-only"),
    (SEVENTEEN, {"logprobs": 1, **{f"x{i}": 1 for i in range(16)}},
     "at most 16 parameters .* got 17"),
    (_scalar, [("logprobs", 1)], "input_ranks must map each parameter name to a rank, got list"),
    (lambda logprobs, w: (logprobs.sum(), {}), {"logprobs": 1},
     r"exactly one rank per parameter \['logprobs', 'w'\]; missing \['w'\], not parameters \[\]"),
    (_scalar, {"logprobs": 1, "extra": 1}, r"missing \[\], not parameters \['extra'\]"),
    (_scalar, {"logprobs": 0}, r"input_ranks\['logprobs'\] must be one of \(1, 2\)"),
    (lambda logprobs, w: (logprobs.sum(), {}), {"logprobs": 1, "w": 3},
     r"input_ranks\['w'\] must be one of \(0, 1, 2\) .* got 3"),
    (lambda logprobs, w: (logprobs.sum(), {}), {"logprobs": 1, "w": True},
     r"input_ranks\['w'\] must be one of \(0, 1, 2\) .* got True"),
    (lambda logprobs: (logprobs.sum() if logprobs.sum() > 0 else -logprobs.sum(), {}),
     {"logprobs": 1}, "torch.fx cannot trace it .*control flow"),
    (lambda logprobs: (float(logprobs.sum()), {}), {"logprobs": 1}, "torch.fx cannot trace it"),
    (lambda logprobs: (_outside_helper(logprobs).sum(), {}), {"logprobs": 1},
     f"node '_outside_helper' calls {__name__}._outside_helper; losses may call functions of "
     "torch, math and operator only"),
    (lambda logprobs: (logprobs.sum().item(), {}), {"logprobs": 1},
     r"node 'item' calls the tensor method item\(\), which is not allowed"),
    (lambda logprobs: (logprobs.numpy().sum(), {}), {"logprobs": 1}, r"method numpy\(\)"),
    (lambda logprobs: (logprobs.tolist(), {}), {"logprobs": 1}, r"method tolist\(\)"),
    (lambda logprobs: (logprobs.sum().backward(), {}), {"logprobs": 1}, r"method backward\(\)"),
    (lambda logprobs: (logprobs.keys(), {}), {"logprobs": 1},
     r"node 'keys' calls keys\(\), which is not a tensor method"),
    (lambda logprobs: (torch.nn.Linear(3, 1)(logprobs).sum(), {}), {"logprobs": 1},
     "it calls the torch.nn module Linear; losses may not use torch.nn modules"),
    (lambda logprobs: ((logprobs * CAPTURED).sum(), {}), {"logprobs": 1},
     r"uses a tensor that is not one of its inputs \(shape \[3\]\)"),
    (lambda logprobs: (logprobs.sum() * torch.tensor(2.0), {}), {"logprobs": 1},
     r"uses a tensor that is not one of its inputs \(shape \[\]\)"),
    (lambda logprobs: logprobs.sum(), {"logprobs": 1},
     "fn must return \\(loss, metrics\\), got a single tensor"),
    (lambda logprobs: (logprobs.sum(), {}, 1), {"logprobs": 1}, "got a tuple of 3"),
    (lambda logprobs: (1.0, {}), {"logprobs": 1}, "the loss must be a tensor computed from the "
     "inputs, got float"),
    (lambda logprobs: (logprobs.sum(), [logprobs.sum()]), {"logprobs": 1},
     "metrics must be a dict of tensors, got a list of 1"),
    (lambda logprobs: (logprobs.sum(), {"custom/x": logprobs.sum()}), {"logprobs": 1},
     "metric key 'custom/x' must match custom/<name>:sum or custom/<name>:mean"),
    (lambda logprobs: (logprobs.sum(), {"custom/X:sum": logprobs.sum()}), {"logprobs": 1},
     "metric key 'custom/X:sum' must match"),
    (lambda logprobs: (logprobs.sum(), {"custom/x:sum": 1.0}), {"logprobs": 1},
     "metric 'custom/x:sum' must be a tensor computed from the inputs, got float"),
    (lambda logprobs: (logprobs * 2, {}), {"logprobs": 1},
     r"the loss must be a scalar tensor \(one value per datum\), got shape \[3\]"),
    (lambda logprobs: (logprobs.sum(), {"custom/x:mean": logprobs}), {"logprobs": 2},
     r"metric 'custom/x:mean' must be a scalar tensor .* got shape \[3, 2\]"),
]  # fmt: skip


@pytest.mark.parametrize(("fn", "ranks", "message"), REJECTED)
def test_rejections_name_what_is_wrong(fn: Any, ranks: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        trace_loss(fn, ranks)


def test_a_loss_whose_example_run_fails_is_left_to_the_evaluation() -> None:
    """The shape check's example inputs are float; an int64 index input makes `gather` fail
    there, yet the loss is valid: it is accepted and runs on real inputs."""

    def picked(logprobs: Any, index: Any) -> Any:
        return -logprobs.gather(1, index).sum(), {}

    traced = trace_loss(picked, {"logprobs": 2, "index": 2})
    logprobs = torch.tensor([[-1.0, -2.0], [-3.0, -4.0]])
    loss, metrics = traced.module(logprobs, torch.tensor([[1], [0]]))
    assert float(loss) == 5.0 and metrics == {}


def test_without_torch_the_error_names_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "torch.fx", None)
    with pytest.raises(ImportError, match="create_custom_loss needs torch"):
        trace_loss(nll, {"logprobs": 1, "weights": 1})
