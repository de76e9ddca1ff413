"""The operation tables of custom-loss graphs: what each `call_function` target and tensor
method name runs, plus the shape, indexing, conversion and creation operations.

Each operation follows the torch function or tensor method of the same name (same argument
names: dim, keepdim, min, max, alpha, ...; same broadcasting) and records its gradient on the
tape (graph_values). `FUNCTIONS` maps the qualified names a traced graph uses (`torch.exp`,
`operator.mul`, `math.log`, `torch.nn.functional.softplus`, `getattr`) to operations, `METHODS`
the tensor method names (`sum`, `clamp`, `view`, ...). Anything else is rejected when the graph
is uploaded (custom_loss.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from tinker.local.compute.graph_math import (
    BINARY,
    UNARY,
    add,
    clamp,
    cumsum,
    detach,
    extreme,
    identity,
    log_softmax,
    logsumexp,
    masked_fill,
    max_or_min,
    mean,
    rsub,
    softmax,
    sub,
    sum_,
    true_divide,
    where,
)
from tinker.local.compute.graph_values import (
    FLOAT_DTYPES,
    INT_DTYPES,
    DType,
    GraphValueError,
    Opaque,
    Tape,
    ValuesIndices,
    Var,
    as_array,
    axes_of,
    check_size,
    is_tensor,
    plain_scalar,
    unbroadcast,
    value,
)

Array = npt.NDArray[Any]


def _shape_args(shape: tuple[Any, ...]) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def _reshape(tape: Tape, x: Any, *shape: Any) -> Any:
    xv = as_array(x)
    try:
        y = xv.reshape(_shape_args(shape))
    except ValueError as exc:
        raise GraphValueError(str(exc)) from None
    return tape.record(y, [x], lambda g: (g.reshape(xv.shape),))


def _reshaper(fn: Callable[..., Array]) -> Any:
    """A shape op whose gradient is its inverse reshape."""

    def op(tape: Tape, x: Any, *args: Any, **kwargs: Any) -> Any:
        xv = as_array(x)
        try:
            y = fn(xv, *args, **kwargs)
        except (ValueError, IndexError) as exc:
            raise GraphValueError(str(exc)) from None
        return tape.record(y, [x], lambda g: (np.reshape(g, xv.shape),))

    return op


def _squeeze(xv: Array, dim: Any = None) -> Array:
    if dim is None:
        return np.squeeze(xv)
    axes = tuple(d for d in (axes_of(dim, xv.ndim) or ()) if xv.shape[d] == 1)
    return np.squeeze(xv, axis=axes) if axes else xv


def _flatten(xv: Array, start_dim: int = 0, end_dim: int = -1) -> Array:
    if xv.ndim == 0:
        return xv.reshape(1)
    start, end = start_dim % xv.ndim, end_dim % xv.ndim
    return xv.reshape((*xv.shape[:start], -1, *xv.shape[end + 1 :]))


def _transpose(tape: Tape, x: Any, dim0: int = 0, dim1: int = 1) -> Any:
    xv = as_array(x)
    if xv.ndim < 2:
        return x
    y = np.swapaxes(xv, dim0, dim1)
    return tape.record(y, [x], lambda g: (np.swapaxes(g, dim0, dim1),))


def _permute(tape: Tape, x: Any, *dims: Any) -> Any:
    xv = as_array(x)
    order = _shape_args(dims)
    y = np.transpose(xv, order)
    return tape.record(y, [x], lambda g: (np.transpose(g, np.argsort(order)),))


def _expand(tape: Tape, x: Any, *sizes: Any) -> Any:
    xv = as_array(x)
    target = list(_shape_args(sizes))
    offset = len(target) - xv.ndim
    for i, size in enumerate(target):
        if size == -1:
            target[i] = xv.shape[i - offset]
    check_size(target)
    y = np.broadcast_to(xv, tuple(target))
    return tape.record(y, [x], lambda g: (unbroadcast(g, xv.shape),))


def _expand_as(tape: Tape, x: Any, other: Any) -> Any:
    return _expand(tape, x, *as_array(other).shape)


def _index(idx: Any) -> Any:
    """An index with Vars unwrapped and tensors of indices as numpy arrays."""
    raw = value(idx)
    if isinstance(raw, tuple):
        return tuple(_index(i) for i in raw)
    if isinstance(raw, list):
        return np.asarray(raw)
    return raw


def _getitem(tape: Tape, x: Any, idx: Any) -> Any:
    if isinstance(x, (tuple, list)) and not isinstance(x, ValuesIndices | np.ndarray):
        try:
            return x[idx]
        except (IndexError, TypeError) as exc:
            raise GraphValueError(str(exc)) from None
    if isinstance(x, ValuesIndices):
        return x[idx]
    xv = as_array(x)
    index = _index(idx)
    try:
        y = xv[index]
    except (IndexError, TypeError, ValueError) as exc:
        raise GraphValueError(f"bad index: {exc}") from None

    def vjp(g: Array) -> tuple[Array]:
        grad = np.zeros(xv.shape, dtype=np.float64)
        np.add.at(grad, index, g)
        return (grad,)

    return tape.record(np.array(y), [x], vjp)


def _gather(tape: Tape, x: Any, dim: int, index: Any) -> Any:
    xv, ix = as_array(x), as_array(index).astype(np.int64)
    axis = int(dim) % max(xv.ndim, 1)
    try:
        y = np.take_along_axis(xv, ix, axis=axis)
    except (IndexError, ValueError) as exc:
        raise GraphValueError(f"gather: {exc}") from None

    def vjp(g: Array) -> tuple[Array]:
        grad = np.zeros(xv.shape, dtype=np.float64)
        grids: list[Any] = list(np.indices(ix.shape, sparse=True))
        grids[axis] = ix
        np.add.at(grad, tuple(grids), g)
        return (grad,)

    return tape.record(y, [x], vjp)


def _stack_or_cat(stack: bool) -> Any:
    def op(tape: Tape, tensors: Any, dim: int = 0) -> Any:
        if not isinstance(tensors, (list, tuple)) or not tensors:
            raise GraphValueError("expected a non-empty list of tensors")
        parts = [as_array(t) for t in tensors]
        try:
            y = np.stack(parts, axis=dim) if stack else np.concatenate(parts, axis=dim)
        except ValueError as exc:
            raise GraphValueError(str(exc)) from None
        axis = int(dim) % y.ndim

        def vjp(g: Array) -> tuple[list[Array]]:
            if stack:
                return ([np.take(g, i, axis=axis) for i in range(len(parts))],)
            bounds = np.cumsum([p.shape[axis] for p in parts])[:-1]
            return (np.split(g, bounds, axis=axis),)

        return tape.record(y, [list(tensors)], vjp)

    return op


# -- conversions, creation and attributes -------------------------------------------------


def _convert(tape: Tape, x: Any, name: str) -> Any:
    if name in FLOAT_DTYPES:
        return x if isinstance(x, Var) else as_array(x).astype(np.float64)
    if name in INT_DTYPES:
        return as_array(x).astype(np.int64)
    if name == "bool":
        return as_array(x).astype(bool)
    raise GraphValueError(f"dtype {name} is not supported")


def _converter(name: str) -> Any:
    return lambda tape, x, *_, **__: _convert(tape, x, name)


def _to(tape: Tape, x: Any, *args: Any, **kwargs: Any) -> Any:
    dtypes = [a for a in (*args, *kwargs.values()) if isinstance(a, DType)]
    return _convert(tape, x, dtypes[0].name) if dtypes else x


def _type_as(tape: Tape, x: Any, other: Any) -> Any:
    kind = np.asarray(value(other)).dtype
    name = "bool" if kind.kind == "b" else "int64" if np.issubdtype(kind, np.integer) else "float64"
    return _convert(tape, x, name)


def _dtype_of(kwargs: dict[str, Any], default: Any) -> Any:
    dtype = kwargs.pop("dtype", None)
    for key in ("device", "layout", "requires_grad", "pin_memory", "memory_format"):
        kwargs.pop(key, None)
    if kwargs:
        raise TypeError(f"unexpected arguments {sorted(kwargs)}")
    if isinstance(dtype, DType):
        if dtype.name in INT_DTYPES:
            return np.int64
        if dtype.name == "bool":
            return bool
        return np.float64
    return default


def _like(fill: float | None) -> Any:
    def op(tape: Tape, x: Any, *args: Any, **kwargs: Any) -> Any:
        xv = as_array(x)
        level = args[0] if fill is None else fill
        kind = _dtype_of(dict(kwargs), xv.dtype if fill is not None else np.result_type(level))
        return np.full(xv.shape, level, dtype=kind)

    return op


def _creator(fill: float | None) -> Any:
    def op(tape: Tape, *size: Any, **kwargs: Any) -> Any:
        kwargs = dict(kwargs)
        if fill is None:
            shape, level = _shape_args((size[0],)), size[1]
        else:
            shape, level = _shape_args(size), fill
        check_size(shape)
        return np.full(shape, level, dtype=_dtype_of(kwargs, np.float64))

    return op


def _new_tensor(tape: Tape, data: Any, **kwargs: Any) -> Any:
    array = np.asarray(value(data))
    default = np.float64 if np.issubdtype(array.dtype, np.floating) else array.dtype
    return array.astype(_dtype_of(dict(kwargs), default))


def _arange(tape: Tape, *args: Any, **kwargs: Any) -> Any:
    span = [float(value(a)) for a in args]
    start, stop, step = (0.0, span[0], 1.0) if len(span) == 1 else (*span[:2], 1.0)
    if len(span) == 3:
        step = span[2]
    if step == 0:
        raise GraphValueError("arange step must not be zero")
    check_size([max(0, math.ceil((stop - start) / step))])
    kind = _dtype_of(dict(kwargs), np.result_type(*(value(a) for a in args)))
    return np.arange(*(value(a) for a in args)).astype(kind)


def _size(tape: Tape, x: Any, dim: int | None = None) -> Any:
    shape = tuple(int(s) for s in as_array(x).shape)
    return shape if dim is None else shape[dim]


ATTRIBUTES = frozenset({"shape", "ndim", "dtype", "T", "mT", "values", "indices", "device"})


def _getattr(tape: Tape, x: Any, name: str) -> Any:
    if name not in ATTRIBUTES:
        raise GraphValueError(f"attribute {name!r} is not supported")
    if name in ("values", "indices"):
        if not isinstance(x, ValuesIndices):
            raise GraphValueError(f".{name} needs the result of max/min along a dim")
        return x[0] if name == "values" else x[1]
    xv = as_array(x)
    if name == "shape":
        return tuple(int(s) for s in xv.shape)
    if name == "ndim":
        return xv.ndim
    if name == "dtype":
        kind = xv.dtype
        return DType("bool" if kind.kind == "b" else "int64" if kind.kind in "iu" else "float32")
    if name == "device":
        return Opaque("device", "cpu")
    return _transpose(tape, x, -2, -1) if name == "mT" else _permute(tape, x, *range(xv.ndim)[::-1])


def _math(fn: Callable[..., float], name: str) -> Any:
    """A `math` function: on a tensor it acts as the tensor op of the same name."""

    def op(tape: Tape, x: Any, *rest: Any) -> Any:
        if is_tensor(x) or rest:
            return TENSOR_OPS[name](tape, x, *rest)
        return fn(plain_scalar(x))

    return op


# -- the tables ---------------------------------------------------------------------------

TENSOR_OPS: dict[str, Any] = {
    **UNARY,
    **BINARY,
    "add": add,
    "sub": sub,
    "rsub": rsub,
    "true_divide": true_divide,
    "divide": true_divide,
    "multiply": BINARY["mul"],
    "subtract": sub,
    "negative": UNARY["neg"],
    "absolute": UNARY["abs"],
    "bitwise_not": UNARY["invert"],
    "greater": BINARY["gt"],
    "less": BINARY["lt"],
    "float_power": BINARY["pow"],
    "where": where,
    "clamp": clamp,
    "clip": clamp,
    "masked_fill": masked_fill,
    "sum": sum_,
    "mean": mean,
    "amax": extreme(np.max),
    "amin": extreme(np.min),
    "max": max_or_min(True),
    "min": max_or_min(False),
    "logsumexp": logsumexp,
    "log_softmax": log_softmax,
    "softmax": softmax,
    "cumsum": cumsum,
    "reshape": _reshape,
    "view": _reshape,
    "flatten": _reshaper(_flatten),
    "squeeze": _reshaper(_squeeze),
    "unsqueeze": _reshaper(np.expand_dims),
    "transpose": _transpose,
    "swapaxes": _transpose,
    "permute": _permute,
    "t": _transpose,
    "expand": _expand,
    "expand_as": _expand_as,
    "gather": _gather,
    "stack": _stack_or_cat(True),
    "cat": _stack_or_cat(False),
    "concat": _stack_or_cat(False),
    "detach": detach,
    "clone": identity,
    "contiguous": identity,
    "float": _converter("float32"),
    "double": _converter("float64"),
    "long": _converter("int64"),
    "int": _converter("int32"),
    "bool": _converter("bool"),
    "to": _to,
    "type_as": _type_as,
    "ones_like": _like(1.0),
    "zeros_like": _like(0.0),
    "full_like": _like(None),
    "size": _size,
    "dim": lambda tape, x: as_array(x).ndim,
    "numel": lambda tape, x: int(as_array(x).size),
}

#: Tensor methods (call_method targets).
METHODS: dict[str, Any] = {
    name: op
    for name, op in TENSOR_OPS.items()
    if name not in {"stack", "cat", "concat", "where", "ones_like", "zeros_like", "full_like"}
} | {"where": lambda tape, x, cond, other: where(tape, cond, x, other)}

#: Methods a graph may never call (they leave the graph or have side effects).
FORBIDDEN_METHODS = frozenset(
    {"backward", "item", "numpy", "tolist", "register_hook", "retain_grad", "requires_grad_"}
)

_TORCH_ONLY = {
    "tensor": _new_tensor,
    "as_tensor": _new_tensor,
    "ones": _creator(1.0),
    "zeros": _creator(0.0),
    "full": _creator(None),
    "arange": _arange,
}
_OPERATOR = {
    "add": add,
    "sub": sub,
    "mul": BINARY["mul"],
    "truediv": BINARY["div"],
    "floordiv": BINARY["floordiv"],
    "mod": BINARY["mod"],
    "pow": BINARY["pow"],
    "neg": UNARY["neg"],
    "pos": identity,
    "abs": UNARY["abs"],
    "invert": UNARY["invert"],
    "getitem": _getitem,
    **{name: BINARY[name] for name in ("gt", "lt", "ge", "le", "eq", "ne", "and_", "or_", "xor")},
}
_MATH = {
    name: _math(getattr(math, name), name)
    for name in ("exp", "log", "log1p", "expm1", "sqrt", "tanh", "sin", "cos", "floor", "ceil")
} | {"fabs": _math(math.fabs, "abs"), "pow": _math(math.pow, "pow")}
_FUNCTIONAL = {
    name: TENSOR_OPS[name]
    for name in ("relu", "softplus", "logsigmoid", "sigmoid", "tanh", "softmax", "log_softmax")
}

#: call_function targets by qualified name.
FUNCTIONS: dict[str, Any] = (
    {f"torch.{name}": op for name, op in (TENSOR_OPS | _TORCH_ONLY).items()}
    | {f"torch.nn.functional.{name}": op for name, op in _FUNCTIONAL.items()}
    | {"torch.special.expit": UNARY["sigmoid"], "torch.special.logsumexp": logsumexp}
    | {f"operator.{name}": op for name, op in _OPERATOR.items()}
    | {f"math.{name}": op for name, op in _MATH.items()}
    | {"getattr": _getattr, "builtins.getattr": _getattr}
)
