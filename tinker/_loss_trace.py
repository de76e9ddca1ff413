"""Tracing a per-datum custom loss with torch.fx into the graph that create_custom_loss uploads.

`trace_loss(fn, input_ranks)` checks the function's parameters against the declared ranks,
traces it symbolically, checks every node (only torch, math and operator functions and tensor
methods; no torch.nn modules, no tensors captured from outside, a `(loss, metrics)` result)
and encodes the nodes in execution order as JSON (format 1): references as `{"ref": name}`,
tuples, dicts, slices, `...`, non-finite floats and torch dtypes/devices/layouts/memory
formats as one-key objects. Everything wrong raises ValueError naming the function and what is
wrong; torch itself is imported here, so a missing torch raises ImportError naming it.
"""

from __future__ import annotations

import builtins
import functools
import hashlib
import importlib
import inspect
import json
import logging
import math
import re
from collections.abc import Mapping
from typing import Any

import attrs

from tinker import types

__all__ = ["MAX_PARAMETERS", "TracedLoss", "graph_key", "import_torch", "trace_loss"]

logger = logging.getLogger(__name__)

MAX_PARAMETERS = 16
GRAPH_FORMAT = 1
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,63}")
_METRIC_KEY = re.compile(r"custom/[a-z0-9_./-]{1,64}:(sum|mean)")
_MODULES = ("torch", "math", "operator")
_FORBIDDEN_METHODS = frozenset({"backward", "item", "numpy", "tolist"})
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
# The example sizes of the trial run that checks the result's shape: T positions, K columns.
_EXAMPLE_T, _EXAMPLE_K = 3, 2


class _Rejected(Exception):
    """Raised by the tracer for something a loss graph cannot contain."""


@attrs.frozen
class TracedLoss:
    """A checked trace: the function's name, its inputs with ranks, the runnable graph module,
    the graph's JSON nodes (create_custom_loss's `graph`) and their SHA-256 key."""

    name: str
    inputs: tuple[types.CustomLossInput, ...]
    module: Any  # torch.fx.GraphModule
    graph: types.CustomLossGraph
    key: str


def import_torch(what: str) -> Any:
    """The torch module, or ImportError saying that `what` needs it."""
    try:
        importlib.import_module("torch.fx")  # the tracer; torch itself loads with it
        return importlib.import_module("torch")
    except ImportError as exc:
        raise ImportError(
            f"{what} needs torch (pip install torch): custom losses are traced and run with it"
        ) from exc


def trace_loss(fn: object, input_ranks: object) -> TracedLoss:
    """Check and trace `fn(logprobs, *inputs) -> (loss, metrics)` with the ranks of its inputs."""
    torch = import_torch("create_custom_loss")
    if not inspect.isfunction(fn):
        raise ValueError(
            f"create_custom_loss: fn must be a Python function (def or lambda), got "
            f"{type(fn).__name__}"
        )
    name = fn.__name__
    inputs = _check_inputs(name, fn, input_ranks)
    module = _trace(torch, name, fn)
    nodes = [_encode_node(torch, name, node) for node in module.graph.nodes]
    _check_output(torch, name, list(module.graph.nodes)[-1])
    _check_result_shape(torch, name, module, inputs)
    graph = types.CustomLossGraph(nodes=[types.CustomLossNode(**node) for node in nodes])
    return TracedLoss(name, inputs, module, graph, _key(inputs, nodes))


def graph_key(inputs: tuple[types.CustomLossInput, ...], module: Any) -> str:
    """The key of a traced graph module with its inputs (as `trace_loss` computed it)."""
    torch = import_torch("LossHandle.key")
    return _key(inputs, [_encode_node(torch, "key", node) for node in module.graph.nodes])


def _where(name: str) -> str:
    return f"create_custom_loss({name})"


def _check_inputs(name: str, fn: Any, input_ranks: object) -> tuple[types.CustomLossInput, ...]:
    """One positional parameter per input, `logprobs` first, each with a declared rank."""
    where = _where(name)
    params = list(inspect.signature(fn).parameters.values())
    for param in params:
        if param.kind not in _POSITIONAL:
            raise ValueError(
                f"{where}: parameter {param.name!r} is {param.kind.description}; a loss takes "
                "plain positional parameters only (no *args, **kwargs or keyword-only ones)"
            )
        if param.default is not param.empty:
            raise ValueError(f"{where}: parameter {param.name!r} has a default; none may have one")
        if not _NAME.fullmatch(param.name):
            raise ValueError(
                f"{where}: parameter {param.name!r} must match [a-z_][a-z0-9_]{{0,63}} "
                "(it names a loss_fn_inputs key)"
            )
    names = [param.name for param in params]
    if not names or names[0] != "logprobs":
        raise ValueError(f"{where}: the first parameter must be named 'logprobs', got {names}")
    if len(names) > MAX_PARAMETERS:
        raise ValueError(
            f"{where}: at most {MAX_PARAMETERS} parameters (logprobs included), got {len(names)}"
        )
    if not isinstance(input_ranks, Mapping):
        raise ValueError(
            f"{where}: input_ranks must map each parameter name to a rank, got "
            f"{type(input_ranks).__name__}"
        )
    missing = [n for n in names if n not in input_ranks]
    extra = [str(k) for k in input_ranks if k not in names]
    if missing or extra:
        raise ValueError(
            f"{where}: input_ranks must give exactly one rank per parameter {names}; "
            f"missing {missing}, not parameters {extra}"
        )
    inputs = []
    for param_name in names:
        rank = input_ranks[param_name]
        allowed = (1, 2) if param_name == "logprobs" else (0, 1, 2)
        if isinstance(rank, bool) or rank not in allowed:
            raise ValueError(
                f"{where}: input_ranks[{param_name!r}] must be one of {allowed} "
                f"(0 scalar, 1 [T], 2 [T, K]), got {rank!r}"
            )
        inputs.append(types.CustomLossInput(name=param_name, rank=rank))
    return tuple(inputs)


def _trace(torch: Any, name: str, fn: Any) -> Any:
    """The torch.fx GraphModule of `fn`; ValueError if it cannot be traced."""

    class LossTracer(torch.fx.Tracer):  # type: ignore[misc]
        """Refuses torch.nn modules and tensors that are not inputs."""

        def call_module(self, m: Any, forward: Any, args: Any, kwargs: Any) -> Any:
            raise _Rejected(
                f"it calls the torch.nn module {type(m).__name__}; losses may not use "
                "torch.nn modules (use torch.nn.functional or tensor operations)"
            )

        def create_arg(self, a: Any) -> Any:
            if isinstance(a, torch.Tensor):
                raise _Rejected(
                    f"it uses a tensor that is not one of its inputs (shape {list(a.shape)}), "
                    "captured from outside or built from Python values; pass it through "
                    "loss_fn_inputs or write it with Python numbers"
                )
            return super().create_arg(a)

    tracer = LossTracer()
    try:
        graph = tracer.trace(fn)
    except _Rejected as exc:
        raise ValueError(f"{_where(name)}: {exc}") from None
    except Exception as exc:
        raise ValueError(
            f"{_where(name)}: torch.fx cannot trace it ({type(exc).__name__}: {exc}); a loss "
            "may not branch on tensor values or convert tensors to Python values"
        ) from exc
    return torch.fx.GraphModule(tracer.root, graph, "CustomLoss")


def _encode_node(torch: Any, name: str, node: Any) -> dict[str, Any]:
    """One node as `{"op", "name", "target", "args", "kwargs"}`, after checking what it calls."""
    where = f"{_where(name)}: node {node.name!r}"
    if node.op == "placeholder" or node.op == "output":
        target = str(node.target)
    elif node.op == "call_function":
        target = qualified_name(node.target)
        allowed = target == "getattr" or target.split(".")[0] in _MODULES
        if not allowed:
            raise ValueError(
                f"{where} calls {target}; losses may call functions of torch, math and "
                "operator only"
            )
    elif node.op == "call_method":
        target = str(node.target)
        if target in _FORBIDDEN_METHODS:
            raise ValueError(f"{where} calls the tensor method {target}(), which is not allowed")
        if not hasattr(torch.Tensor, target):
            raise ValueError(f"{where} calls {target}(), which is not a tensor method")
    else:  # get_attr and call_module cannot come from the tracer above
        raise ValueError(f"{where}: {node.op} nodes are not allowed in a loss")
    return {
        "op": node.op,
        "name": node.name,
        "target": target,
        "args": [_encode_arg(torch, where, arg) for arg in node.args],
        "kwargs": {key: _encode_arg(torch, where, v) for key, v in node.kwargs.items()},
    }


def _encode_arg(torch: Any, where: str, arg: Any) -> Any:
    """An argument in the JSON encoding of create_custom_loss."""
    if isinstance(arg, torch.fx.Node):
        return {"ref": arg.name}
    if arg is None or isinstance(arg, (bool, int, str)):
        return arg
    if isinstance(arg, float):
        return arg if math.isfinite(arg) else {"float": str(arg)}
    if isinstance(arg, tuple):
        return {"tuple": [_encode_arg(torch, where, a) for a in arg]}
    if isinstance(arg, list):
        return [_encode_arg(torch, where, a) for a in arg]
    if isinstance(arg, dict):
        return {"dict": {str(k): _encode_arg(torch, where, v) for k, v in arg.items()}}
    if isinstance(arg, slice):
        return {"slice": [_encode_arg(torch, where, a) for a in (arg.start, arg.stop, arg.step)]}
    if arg is Ellipsis:
        return {"ellipsis": True}
    for kind, cls in (
        ("dtype", torch.dtype),
        ("device", torch.device),
        ("layout", torch.layout),
        ("memory_format", torch.memory_format),
    ):
        if isinstance(arg, cls):
            return {kind: str(arg).removeprefix("torch.")}
    raise ValueError(f"{where}: cannot encode the argument {arg!r} ({type(arg).__name__})")


def qualified_name(fn: Any) -> str:
    """The public dotted name of a traced function: `torch.exp`, `operator.mul`, `math.log`,
    `torch.nn.functional.softplus` (not its torch._C home), `getattr` for builtins."""
    short = getattr(fn, "__name__", repr(fn))
    if getattr(builtins, short, None) is fn:
        return short
    public = _public_torch_names().get(id(fn))
    if public is not None:
        return public
    module = getattr(fn, "__module__", None) or "?"
    if module == "_operator":
        module = "operator"
    return f"{module}.{short}"


@functools.lru_cache(maxsize=1)
def _public_torch_names() -> dict[int, str]:
    """Functions that live in private torch modules, by id, with their public names (the
    first of torch.nn.functional, torch.special, torch that has them)."""
    torch = import_torch("create_custom_loss")
    names: dict[int, str] = {}
    for prefix in ("torch", "torch.special", "torch.nn.functional"):
        namespace = importlib.import_module(prefix)
        for attr, value in list(vars(namespace).items()):  # vars: no lazy submodule imports
            home = getattr(value, "__module__", None) or ""
            private = home == "" or any(part.startswith("_") for part in home.split("."))
            if callable(value) and not isinstance(value, type) and private:
                names[id(value)] = f"{prefix}.{attr}"
    names.pop(id(torch.Tensor), None)
    return names


def _check_output(torch: Any, name: str, node: Any) -> None:
    """The result is `(loss, metrics)`: a computed tensor and a dict of computed tensors with
    keys `custom/<name>:sum` or `custom/<name>:mean`."""
    where = _where(name)
    result = node.args[0]
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise ValueError(f"{where}: fn must return (loss, metrics), got {_describe(result)}")
    loss, metrics = result
    if not isinstance(loss, torch.fx.Node):
        raise ValueError(
            f"{where}: the loss must be a tensor computed from the inputs, got {_describe(loss)}"
        )
    if not isinstance(metrics, dict):
        raise ValueError(f"{where}: metrics must be a dict of tensors, got {_describe(metrics)}")
    for key, value in metrics.items():
        if not isinstance(key, str) or not _METRIC_KEY.fullmatch(key):
            raise ValueError(
                f"{where}: metric key {key!r} must match custom/<name>:sum or "
                "custom/<name>:mean (name: lowercase [a-z0-9_./-], at most 64 characters)"
            )
        if not isinstance(value, torch.fx.Node):
            raise ValueError(
                f"{where}: metric {key!r} must be a tensor computed from the inputs, got "
                f"{_describe(value)}"
            )


def _describe(value: Any) -> str:
    if type(value).__name__ == "Node":
        return "a single tensor"
    if isinstance(value, (tuple, list)):
        return f"a {'tuple' if isinstance(value, tuple) else 'list'} of {len(value)}"
    return type(value).__name__


def _check_result_shape(
    torch: Any, name: str, module: Any, inputs: tuple[types.CustomLossInput, ...]
) -> None:
    """Run the graph once on example tensors: the loss and every metric must be one value.

    Inputs whose values matter (indices, say) may make the example run fail; then the check is
    left to the evaluation, which names the datum."""
    examples = [_example(torch, spec) for spec in inputs]
    try:
        with torch.no_grad():
            loss, metrics = module(*examples)
    except Exception as exc:
        logger.debug("%s: the shape check's example run failed (%s)", _where(name), exc)
        return
    for what, value in [("the loss", loss), *((f"metric {k!r}", v) for k, v in metrics.items())]:
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            shape = list(value.shape) if isinstance(value, torch.Tensor) else _describe(value)
            raise ValueError(
                f"{_where(name)}: {what} must be a scalar tensor (one value per datum), got "
                f"shape {shape} for inputs of {_EXAMPLE_T} positions"
            )


def _example(torch: Any, spec: types.CustomLossInput) -> Any:
    shape = ((), (_EXAMPLE_T,), (_EXAMPLE_T, _EXAMPLE_K))[spec.rank]
    if spec.name == "target_tokens":
        return torch.zeros(shape, dtype=torch.int64)
    return torch.full(shape, -0.5 if spec.name == "logprobs" else 1.0, dtype=torch.float32)


def _key(inputs: tuple[types.CustomLossInput, ...], nodes: list[dict[str, Any]]) -> str:
    """SHA-256 of the inputs and the encoded graph (the same code traces to the same key)."""
    document = {"inputs": [[i.name, i.rank] for i in inputs], "nodes": nodes}
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
