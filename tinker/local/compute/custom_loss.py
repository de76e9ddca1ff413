"""Server-side custom losses: an uploaded torch.fx graph, checked once, run per datum in numpy.

A graph arrives as the JSON of `create_custom_loss` (format 1): nodes in execution order,
each `{"op", "name", "target", "args", "kwargs"}`. `CustomLoss.compile` checks everything
that can be checked without data (node kinds, targets against graph_ops' tables, references
to earlier nodes, placeholders matching the declared inputs, the output's (loss, metrics)
shape and metric names) and raises UserInputError naming the node. `evaluate` runs the graph
on one datum's logprobs (float64) and inputs, then reverse mode over the recorded tape gives
the exact d loss / d logprobs. Errors while running (shapes that do not broadcast, a loss that
is not a scalar) name the datum and the node.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from tinker.local.compute import graph_ops, graph_values
from tinker.local.compute.errors import UserInputError
from tinker.local.compute.graph_values import DType, Opaque, Tape, Var

Array = npt.NDArray[Any]

GRAPH_FORMAT = 1
MAX_INPUTS = 16
MAX_NODES = 4096
INPUT_NAME = re.compile(r"[a-z_][a-z0-9_]{0,63}")
METRIC_KEY = re.compile(r"custom/[a-z0-9_./-]{1,64}:(sum|mean)")
NODE_OPS = ("placeholder", "call_function", "call_method", "output")
_NODE_KEYS = frozenset({"op", "name", "target", "args", "kwargs"})
_OPAQUE = ("device", "layout", "memory_format")


@attrs.frozen
class Ref:
    """A reference to an earlier node's value."""

    name: str


@attrs.frozen
class LossInput:
    """One parameter of the loss function: its name and rank (0 scalar, 1 [T], 2 [T, K])."""

    name: str
    rank: int


@attrs.frozen
class Node:
    """One decoded graph node."""

    op: str
    name: str
    target: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]


@attrs.frozen
class GraphLoss:
    """One datum's loss from the graph, its gradient w.r.t. the logprobs, and its metrics."""

    loss: float
    grad: Array
    metrics: dict[str, float]


@attrs.frozen
class CustomLoss:
    """A checked graph, ready to run on datums."""

    name: str
    inputs: tuple[LossInput, ...]
    nodes: tuple[Node, ...]

    @classmethod
    def compile(
        cls, name: str, inputs: Sequence[Mapping[str, Any]], graph: Mapping[str, Any]
    ) -> CustomLoss:
        """Check a create_custom_loss request's name, inputs and graph (UserInputError)."""
        if not isinstance(name, str) or not name:
            raise UserInputError("custom loss name must be a non-empty string")
        declared = _check_inputs(inputs)
        if not isinstance(graph, Mapping) or graph.get("format") != GRAPH_FORMAT:
            raise UserInputError(f"custom loss graph must be an object with format {GRAPH_FORMAT}")
        raw_nodes = graph.get("nodes")
        if not isinstance(raw_nodes, list) or not 1 <= len(raw_nodes) <= MAX_NODES:
            raise UserInputError(f"custom loss graph must have 1..{MAX_NODES} nodes")
        nodes = tuple(_decode_node(i, raw) for i, raw in enumerate(raw_nodes))
        _check_graph(nodes, declared)
        return cls(name, declared, nodes)

    @property
    def input_names(self) -> tuple[str, ...]:
        """The loss_fn_inputs keys the graph reads (logprobs excluded)."""
        return tuple(i.name for i in self.inputs[1:])

    @property
    def logprobs_rank(self) -> int:
        """1: logprobs [T] (1-D target_tokens); 2: [T, K] (2-D target_tokens)."""
        return self.inputs[0].rank

    def check_datum(self, index: int, inputs: Mapping[str, Array]) -> None:
        """Every named input present with its declared rank; target_tokens' rank matches."""
        where = f"datum {index}"
        targets = inputs.get("target_tokens")
        if targets is None:
            raise UserInputError(f"{where}: loss_fn_inputs is missing 'target_tokens'")
        if targets.ndim != self.logprobs_rank:
            raise UserInputError(
                f"{where}: custom loss {self.name!r} takes rank-{self.logprobs_rank} logprobs, "
                f"but target_tokens has shape {list(targets.shape)}"
            )
        for spec in self.inputs[1:]:
            if spec.name not in inputs:
                raise UserInputError(
                    f"{where}: loss_fn_inputs is missing {spec.name!r} for custom loss "
                    f"{self.name!r}"
                )
            array = inputs[spec.name]
            scalar_ok = spec.rank == 0 and array.shape == (1,)
            if not scalar_ok and (
                array.ndim != spec.rank or (spec.rank and array.shape[0] != targets.shape[0])
            ):
                raise UserInputError(
                    f"{where}: loss_fn_inputs[{spec.name!r}] has shape {list(array.shape)}; "
                    f"custom loss {self.name!r} declares rank {spec.rank} with {targets.shape[0]} "
                    "rows (one per model_input position)"
                )

    def evaluate(self, index: int, logprobs: Array, inputs: Mapping[str, Array]) -> GraphLoss:
        """Run the graph on one datum; the gradient is exact (reverse mode, float64)."""
        tape = Tape()
        leaf = tape.leaf(logprobs)
        env: dict[str, Any] = {}
        placeholders = iter(self.inputs)
        for node in self.nodes:
            if node.op == "placeholder":
                spec = next(placeholders)
                env[node.name] = (
                    leaf if spec.name == "logprobs" else _constant(inputs[spec.name], spec.rank)
                )
                continue
            if node.op == "output":
                return self._finish(index, node, env, tape, leaf)
            op = (graph_ops.FUNCTIONS if node.op == "call_function" else graph_ops.METHODS)[
                node.target
            ]
            args = _resolve(node.args, env)
            kwargs = {k: _resolve(v, env) for k, v in node.kwargs.items()}
            try:
                env[node.name] = op(tape, *args, **kwargs)
            except (graph_values.GraphValueError, TypeError, ValueError, IndexError) as exc:
                raise UserInputError(
                    f"datum {index}: custom loss {self.name!r}, node {node.name!r} "
                    f"({node.target}): {exc}"
                ) from None
        raise AssertionError("compile() guarantees an output node")

    def _finish(
        self, index: int, node: Node, env: Mapping[str, Any], tape: Tape, leaf: Var
    ) -> GraphLoss:
        loss_value, metric_values = _resolve(node.args[0], env)
        loss = _scalar(index, self.name, "the loss", loss_value)
        grad = tape.backward(loss_value, leaf) if isinstance(loss_value, Var) else None
        metrics = {
            key: _scalar(index, self.name, f"metric {key!r}", metric)
            for key, metric in metric_values.items()
        }
        return GraphLoss(loss, np.zeros_like(leaf.value) if grad is None else grad, metrics)


def reduce_metrics(per_datum: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Combine per-datum metrics by their suffix: `:sum` adds, `:mean` averages."""
    totals: dict[str, float] = {}
    for metrics in per_datum:
        for key, value in metrics.items():
            totals[key] = totals.get(key, 0.0) + value
    return {
        key: total / len(per_datum) if key.endswith(":mean") else total
        for key, total in totals.items()
    }


def _scalar(index: int, loss: str, what: str, raw: Any) -> float:
    array = np.asarray(graph_values.value(raw))
    if array.dtype == object or array.size != 1 or not np.issubdtype(array.dtype, np.number):
        described = list(array.shape) if array.dtype != object else type(raw).__name__
        raise UserInputError(
            f"datum {index}: custom loss {loss!r}: {what} must be a one-element tensor, "
            f"got {described}"
        )
    return float(array.reshape(()))


def _constant(array: Array, rank: int) -> Array:
    """A loss input as the graph sees it: floats in float64, integers in int64, rank 0 as a
    0-d array (a one-element [1] tensor is accepted for it)."""
    if rank == 0:
        array = np.reshape(array, ())
    if np.issubdtype(array.dtype, np.floating):
        return np.asarray(array, dtype=np.float64)
    if np.issubdtype(array.dtype, np.integer):
        return np.asarray(array, dtype=np.int64)
    return np.asarray(array)


def _resolve(arg: Any, env: Mapping[str, Any]) -> Any:
    if isinstance(arg, Ref):
        return env[arg.name]
    if isinstance(arg, list):
        return [_resolve(a, env) for a in arg]
    if isinstance(arg, tuple):
        return tuple(_resolve(a, env) for a in arg)
    if isinstance(arg, dict):
        return {k: _resolve(v, env) for k, v in arg.items()}
    if isinstance(arg, slice):
        return slice(
            _index_value(_resolve(arg.start, env)),
            _index_value(_resolve(arg.stop, env)),
            _index_value(_resolve(arg.step, env)),
        )
    return arg


def _index_value(x: Any) -> Any:
    raw = graph_values.value(x)
    if isinstance(raw, np.ndarray) and raw.size == 1:
        return int(raw.reshape(()))
    return raw


# -- decoding and checking ----------------------------------------------------------------


def _check_inputs(inputs: Sequence[Mapping[str, Any]]) -> tuple[LossInput, ...]:
    if not isinstance(inputs, Sequence) or not 1 <= len(inputs) <= MAX_INPUTS:
        raise UserInputError(f"custom loss inputs must list 1..{MAX_INPUTS} parameters")
    declared = []
    for position, item in enumerate(inputs):
        name = item.get("name") if isinstance(item, Mapping) else None
        rank = item.get("rank") if isinstance(item, Mapping) else None
        if not isinstance(name, str) or not INPUT_NAME.fullmatch(name):
            raise UserInputError(
                f"custom loss input {position}: name {name!r} must match [a-z_][a-z0-9_]{{0,63}}"
            )
        if isinstance(rank, bool) or rank not in (0, 1, 2):
            raise UserInputError(f"custom loss input {name!r}: rank must be 0, 1 or 2")
        declared.append(LossInput(name, rank))
    if declared[0].name != "logprobs" or declared[0].rank not in (1, 2):
        raise UserInputError("the first custom loss input must be 'logprobs' with rank 1 or 2")
    names = [i.name for i in declared]
    if len(set(names)) != len(names) or "logprobs" in names[1:]:
        raise UserInputError(f"custom loss input names must be unique, got {names}")
    return tuple(declared)


def _decode_node(position: int, raw: Any) -> Node:
    if not isinstance(raw, Mapping) or set(raw) != _NODE_KEYS:
        raise UserInputError(
            f"custom loss node {position} must be an object with keys {sorted(_NODE_KEYS)}"
        )
    name, op, target = raw["name"], raw["op"], raw["target"]
    if not isinstance(name, str) or not name or not isinstance(target, str):
        raise UserInputError(f"custom loss node {position}: name and target must be strings")
    where = f"custom loss node {name!r}"
    if op not in NODE_OPS:
        raise UserInputError(
            f"{where}: op {op!r} is not allowed (allowed: {', '.join(NODE_OPS)}; custom losses "
            "may call torch, math and operator functions and tensor methods only)"
        )
    if not isinstance(raw["args"], list) or not isinstance(raw["kwargs"], Mapping):
        raise UserInputError(f"{where}: args must be a list and kwargs an object")
    args = tuple(_decode_arg(where, a) for a in raw["args"])
    kwargs = {str(k): _decode_arg(where, v) for k, v in raw["kwargs"].items()}
    return Node(op, name, target, args, kwargs)


def _decode_arg(where: str, raw: Any) -> Any:
    """The JSON argument encoding of PROTOCOL 6.10 as Python values (Ref for references)."""
    if raw is None or isinstance(raw, (bool, int, float, str)):
        return raw
    if isinstance(raw, list):
        return [_decode_arg(where, a) for a in raw]
    if isinstance(raw, Mapping) and len(raw) == 1:
        ((key, inner),) = raw.items()
        if key == "ref" and isinstance(inner, str):
            return Ref(inner)
        if key == "tuple" and isinstance(inner, list):
            return tuple(_decode_arg(where, a) for a in inner)
        if key == "dict" and isinstance(inner, Mapping):
            return {str(k): _decode_arg(where, v) for k, v in inner.items()}
        if key == "slice" and isinstance(inner, list) and len(inner) == 3:
            return slice(*(_decode_arg(where, a) for a in inner))
        if key == "ellipsis" and inner is True:
            return Ellipsis
        if key == "float" and inner in ("inf", "-inf", "nan"):
            return float(inner)
        if key == "dtype" and isinstance(inner, str):
            return DType(inner)
        if key in _OPAQUE and isinstance(inner, str):
            return Opaque(key, inner)
    raise UserInputError(f"{where}: cannot decode argument {raw!r}")


def _refs(arg: Any) -> list[str]:
    if isinstance(arg, Ref):
        return [arg.name]
    if isinstance(arg, (list, tuple)):
        return [name for a in arg for name in _refs(a)]
    if isinstance(arg, dict):
        return [name for a in arg.values() for name in _refs(a)]
    if isinstance(arg, slice):
        return _refs([arg.start, arg.stop, arg.step])
    return []


def _check_graph(nodes: Sequence[Node], inputs: Sequence[LossInput]) -> None:
    seen: set[str] = set()
    placeholders = [n for n in nodes if n.op == "placeholder"]
    if [p.target for p in placeholders] != [i.name for i in inputs]:
        raise UserInputError(
            f"custom loss graph placeholders {[p.target for p in placeholders]} do not match "
            f"the declared inputs {[i.name for i in inputs]}"
        )
    for position, node in enumerate(nodes):
        where = f"custom loss node {node.name!r}"
        if node.name in seen:
            raise UserInputError(f"{where}: duplicate node name")
        for ref in _refs((node.args, node.kwargs)):
            if ref not in seen:
                raise UserInputError(f"{where}: refers to {ref!r}, which is not an earlier node")
        if node.op == "call_function" and node.target not in graph_ops.FUNCTIONS:
            raise UserInputError(
                f"{where}: function {node.target!r} is not allowed (allowed functions are "
                "listed in the local-compute docs)"
            )
        if node.op == "call_method":
            if node.target in graph_ops.FORBIDDEN_METHODS:
                raise UserInputError(f"{where}: tensor method {node.target!r} is not allowed")
            if node.target not in graph_ops.METHODS:
                raise UserInputError(f"{where}: tensor method {node.target!r} is not supported")
            if not node.args:
                raise UserInputError(f"{where}: a method call needs the tensor as first argument")
        if node.op == "output":
            if position != len(nodes) - 1:
                raise UserInputError(f"{where}: the output node must be the last node")
            _check_output(where, node)
        seen.add(node.name)
    if nodes[-1].op != "output":
        raise UserInputError("custom loss graph has no output node")


def _check_output(where: str, node: Node) -> None:
    result = node.args[0] if len(node.args) == 1 else None
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise UserInputError(f"{where}: the output must be (loss, metrics)")
    metrics = result[1]
    if not isinstance(metrics, dict):
        raise UserInputError(f"{where}: the output's metrics must be a dict")
    for key in metrics:
        if not METRIC_KEY.fullmatch(key):
            raise UserInputError(
                f"{where}: metric key {key!r} must match custom/<name>:sum or custom/<name>:mean"
            )
