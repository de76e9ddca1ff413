"""The operations a custom-loss graph may call, in numpy, with exact reverse-mode gradients.

Values flowing through a graph are Python scalars, numpy arrays (constants: loss inputs and
anything that does not depend on the logprobs) or `Var`s (float64 arrays that depend on the
logprobs; the `Tape` records how each was made so that `Tape.backward` can run the chain rule
in reverse). Each operation follows the torch function or tensor method of the same name:
same argument names (dim, keepdim, min, max, alpha, ...), same broadcasting, and the same
gradient conventions (clamp passes the gradient where min <= x <= max; maximum/minimum and
amax/amin split it evenly between ties; max/min along a dim send it to the returned index).

`FUNCTIONS` maps the qualified names a traced graph uses (`torch.exp`, `operator.mul`,
`math.log`, `torch.nn.functional.softplus`, `getattr`) to operations, `METHODS` the tensor
method names (`sum`, `clamp`, `view`, ...). Anything else is rejected when the graph is
uploaded (custom_loss.py).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]
Vjp = Callable[[Array], Sequence[Any]]

#: Largest array an operation may create (elements): bounds the memory a graph can take.
MAX_ELEMENTS = 1 << 24
INT_DTYPES = frozenset({"int64", "int32", "int16", "int8", "uint8", "long", "int"})
FLOAT_DTYPES = frozenset({"float32", "float64", "float16", "bfloat16", "float", "double", "half"})


class GraphValueError(ValueError):
    """An operation got values it cannot work on (the caller names the node)."""


class Var:
    """A float64 array that depends on the logprobs."""

    __slots__ = ("value",)

    def __init__(self, value: Array) -> None:
        self.value = value


class DType:
    """A torch dtype named in a graph (`{"dtype": "float32"}`)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DType) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)


class Opaque:
    """A device, layout or memory format argument: accepted and ignored on the CPU."""

    def __init__(self, kind: str, value: str) -> None:
        self.kind = kind
        self.value = value


class ValuesIndices(tuple):  # type: ignore[type-arg]
    """The (values, indices) pair of max/min along a dim."""


class Tape:
    """Records how each Var was computed; runs the chain rule backwards."""

    def __init__(self) -> None:
        self._entries: list[tuple[Var, Sequence[Any], Vjp]] = []

    def leaf(self, value: Array) -> Var:
        """A differentiable input (the logprobs)."""
        return Var(np.array(value, dtype=np.float64))

    def record(self, value: Any, parents: Sequence[Any], vjp: Vjp) -> Any:
        """`value` as a Var when a parent is one (and the value is floating), else as is."""
        if not _any_var(parents):
            return value
        array = np.asarray(value)
        if not np.issubdtype(array.dtype, np.floating):
            return array
        var = Var(array.astype(np.float64, copy=False))
        self._entries.append((var, parents, vjp))
        return var

    def backward(self, output: Var, leaf: Var) -> Array:
        """d output / d leaf (output must be a one-element Var)."""
        grads: dict[int, Array] = {id(output): np.ones_like(output.value)}
        for var, parents, vjp in reversed(self._entries):
            grad = grads.pop(id(var), None)
            if grad is None:
                continue
            _accumulate(grads, parents, vjp(grad))
        result = grads.get(id(leaf))
        return np.zeros_like(leaf.value) if result is None else result


def _any_var(values: Any) -> bool:
    if isinstance(values, Var):
        return True
    if isinstance(values, (list, tuple)):
        return any(_any_var(v) for v in values)
    return False


def _accumulate(grads: dict[int, Array], parents: Any, parent_grads: Any) -> None:
    if isinstance(parents, Var):
        if parent_grads is None:
            return
        g = np.broadcast_to(np.asarray(parent_grads, dtype=np.float64), parents.value.shape)
        previous = grads.get(id(parents))
        grads[id(parents)] = g.copy() if previous is None else previous + g
    elif isinstance(parents, (list, tuple)) and parent_grads is not None:
        for parent, grad in zip(parents, parent_grads, strict=False):
            _accumulate(grads, parent, grad)


def value(x: Any) -> Any:
    """The raw value of a graph value (Vars unwrapped, lists and tuples recursively)."""
    if isinstance(x, Var):
        return x.value
    if isinstance(x, ValuesIndices):
        return ValuesIndices(value(v) for v in x)
    if isinstance(x, (list, tuple)):
        return type(x)(value(v) for v in x)
    return x


def _tensor(x: Any) -> Array:
    raw = value(x)
    if isinstance(raw, DType | Opaque) or raw is None:
        raise GraphValueError(f"expected a tensor or number, got {_describe(raw)}")
    array = np.asarray(raw)
    if array.dtype == object:
        raise GraphValueError(f"expected a tensor or number, got {_describe(raw)}")
    return array


def _describe(x: Any) -> str:
    if isinstance(x, DType):
        return f"dtype {x.name}"
    if isinstance(x, Opaque):
        return f"{x.kind} {x.value}"
    return type(x).__name__


def _is_tensor(x: Any) -> bool:
    return isinstance(x, Var | np.ndarray | np.generic)


def _check_size(shape: Sequence[int]) -> None:
    if int(np.prod(shape, dtype=np.int64)) > MAX_ELEMENTS:
        raise GraphValueError(f"an array of shape {tuple(shape)} exceeds {MAX_ELEMENTS} elements")


def _unbroadcast(grad: Array, shape: tuple[int, ...]) -> Array:
    """Sum a broadcast gradient back to the operand's shape."""
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad


# -- elementwise --------------------------------------------------------------------------


def _unary(fn: Callable[[Array], Array], deriv: Callable[[Array, Array], Array] | None) -> Any:
    """An elementwise op; deriv(x, y) is dy/dx (None: no gradient flows)."""

    def op(tape: Tape, x: Any) -> Any:
        xv = _tensor(x)
        with np.errstate(all="ignore"):
            y = fn(xv.astype(np.float64) if isinstance(x, Var) else xv)
        if deriv is None:
            return np.asarray(y)
        return tape.record(y, [x], lambda g: (g * deriv(xv, y),))

    return op


def _sigmoid(x: Array) -> Array:
    result: Array = 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))
    return result


UNARY: dict[str, Any] = {
    "neg": _unary(np.negative, lambda x, y: -np.ones_like(y)),
    "exp": _unary(np.exp, lambda x, y: y),
    "log": _unary(np.log, lambda x, y: 1.0 / x),
    "log1p": _unary(np.log1p, lambda x, y: 1.0 / (1.0 + x)),
    "expm1": _unary(np.expm1, lambda x, y: y + 1.0),
    "sqrt": _unary(np.sqrt, lambda x, y: 0.5 / y),
    "rsqrt": _unary(lambda x: 1.0 / np.sqrt(x), lambda x, y: -0.5 * y**3),
    "abs": _unary(np.abs, lambda x, y: np.sign(x)),
    "square": _unary(np.square, lambda x, y: 2.0 * x),
    "reciprocal": _unary(np.reciprocal, lambda x, y: -(y**2)),
    "tanh": _unary(np.tanh, lambda x, y: 1.0 - y**2),
    "sigmoid": _unary(_sigmoid, lambda x, y: y * (1.0 - y)),
    "relu": _unary(lambda x: np.maximum(x, 0), lambda x, y: (x > 0).astype(np.float64)),
    "softplus": _unary(lambda x: np.logaddexp(0.0, x), lambda x, y: _sigmoid(x)),
    "logsigmoid": _unary(lambda x: -np.logaddexp(0.0, -x), lambda x, y: _sigmoid(-x)),
    "sin": _unary(np.sin, lambda x, y: np.cos(x)),
    "cos": _unary(np.cos, lambda x, y: -np.sin(x)),
    "sign": _unary(np.sign, None),
    "floor": _unary(np.floor, None),
    "ceil": _unary(np.ceil, None),
    "round": _unary(np.round, None),
    "trunc": _unary(np.trunc, None),
    "isnan": _unary(np.isnan, None),
    "isfinite": _unary(np.isfinite, None),
    "logical_not": _unary(np.logical_not, None),
    "invert": _unary(lambda x: np.logical_not(x) if x.dtype == bool else np.invert(x), None),
}


def _detach(tape: Tape, x: Any) -> Any:
    return value(x)


def _identity(tape: Tape, x: Any, *_: Any, **__: Any) -> Any:
    return x


def _binary(
    fn: Callable[[Any, Any], Any],
    da: Callable[[Array, Array, Array, Array], Array] | None,
    db: Callable[[Array, Array, Array, Array], Array] | None,
) -> Any:
    """A broadcasting op; da/db give the gradient w.r.t. a/b before unbroadcasting."""

    def op(tape: Tape, a: Any, b: Any) -> Any:
        if not (_is_tensor(a) or _is_tensor(b)):
            return fn(_scalar(a), _scalar(b))
        av, bv = _tensor(a), _tensor(b)
        try:
            _check_size(np.broadcast_shapes(av.shape, bv.shape))
        except ValueError:
            raise GraphValueError(
                f"shapes {list(av.shape)} and {list(bv.shape)} cannot be broadcast together"
            ) from None
        with np.errstate(all="ignore"):
            y = np.asarray(fn(av, bv))
        if da is None or db is None:
            return y

        def vjp(g: Array) -> tuple[Array, Array]:
            with np.errstate(all="ignore"):
                return (
                    _unbroadcast(da(av, bv, y, g), av.shape),
                    _unbroadcast(db(av, bv, y, g), bv.shape),
                )

        return tape.record(y, [a, b], vjp)

    return op


def _scalar(x: Any) -> Any:
    if isinstance(x, DType | Opaque):
        raise GraphValueError(f"expected a number, got {_describe(x)}")
    return x


def _tie_split(a: Array, b: Array, wins: Array) -> Array:
    """1 where a wins, 0.5 on ties, 0 where b wins (torch's maximum/minimum gradient)."""
    result: Array = np.where(a == b, 0.5, wins.astype(np.float64))
    return result


def _pow_db(a: Array, b: Array, y: Array, g: Array) -> Array:
    result: Array = g * np.where(a > 0, y * np.log(np.where(a > 0, a, 1.0)), 0.0)
    return result


def _cmp(fn: Callable[[Any, Any], Any]) -> Any:
    return _binary(fn, None, None)


BINARY: dict[str, Any] = {
    "mul": _binary(operator.mul, lambda a, b, y, g: g * b, lambda a, b, y, g: g * a),
    "div": _binary(operator.truediv, lambda a, b, y, g: g / b, lambda a, b, y, g: -g * y / b),
    "pow": _binary(operator.pow, lambda a, b, y, g: g * b * a ** (b - 1), _pow_db),
    "maximum": _binary(
        np.maximum,
        lambda a, b, y, g: g * _tie_split(a, b, a > b),
        lambda a, b, y, g: g * _tie_split(a, b, b > a),
    ),
    "minimum": _binary(
        np.minimum,
        lambda a, b, y, g: g * _tie_split(a, b, a < b),
        lambda a, b, y, g: g * _tie_split(a, b, b < a),
    ),
    "floordiv": _cmp(operator.floordiv),
    "mod": _cmp(operator.mod),
    "gt": _cmp(operator.gt),
    "lt": _cmp(operator.lt),
    "ge": _cmp(operator.ge),
    "le": _cmp(operator.le),
    "eq": _cmp(operator.eq),
    "ne": _cmp(operator.ne),
    "and_": _cmp(lambda a, b: np.logical_and(a, b) if _bools(a, b) else operator.and_(a, b)),
    "or_": _cmp(lambda a, b: np.logical_or(a, b) if _bools(a, b) else operator.or_(a, b)),
    "xor": _cmp(lambda a, b: np.logical_xor(a, b) if _bools(a, b) else operator.xor(a, b)),
    "logical_and": _cmp(np.logical_and),
    "logical_or": _cmp(np.logical_or),
}


def _bools(a: Any, b: Any) -> bool:
    return bool(np.asarray(a).dtype.kind == "b" and np.asarray(b).dtype.kind == "b")


_plus = _binary(operator.add, lambda a, b, y, g: g, lambda a, b, y, g: g)
_minus = _binary(operator.sub, lambda a, b, y, g: g, lambda a, b, y, g: -g)


def _add(tape: Tape, a: Any, b: Any, *, alpha: Any = 1) -> Any:
    return _plus(tape, a, b if alpha == 1 else BINARY["mul"](tape, b, alpha))


def _sub(tape: Tape, a: Any, b: Any, *, alpha: Any = 1) -> Any:
    return _minus(tape, a, b if alpha == 1 else BINARY["mul"](tape, b, alpha))


def _rsub(tape: Tape, a: Any, b: Any, *, alpha: Any = 1) -> Any:
    return _sub(tape, b, a, alpha=alpha)


def _true_divide(tape: Tape, a: Any, b: Any, *, rounding_mode: str | None = None) -> Any:
    if rounding_mode is None:
        return BINARY["div"](tape, a, b)
    if rounding_mode == "floor":
        return BINARY["floordiv"](tape, a, b)
    raise GraphValueError(f"rounding_mode {rounding_mode!r} is not supported")


def _where(tape: Tape, condition: Any, a: Any, b: Any) -> Any:
    cond = _tensor(condition).astype(bool)
    av, bv = _tensor(a), _tensor(b)
    _check_size(np.broadcast_shapes(cond.shape, av.shape, bv.shape))
    y = np.where(cond, av, bv)

    def vjp(g: Array) -> tuple[None, Array, Array]:
        return (
            None,
            _unbroadcast(np.where(cond, g, 0.0), av.shape),
            _unbroadcast(np.where(cond, 0.0, g), bv.shape),
        )

    return tape.record(y, [None, a, b], vjp)


def _clamp(tape: Tape, x: Any, min: Any = None, max: Any = None) -> Any:
    """torch.clamp: the bounds are constants; the gradient passes where min <= x <= max."""
    if min is None and max is None:
        raise GraphValueError("clamp needs at least one of min and max")
    xv = _tensor(x)
    low = None if min is None else _tensor(min)
    high = None if max is None else _tensor(max)
    y = xv
    inside = np.ones(xv.shape, dtype=bool)
    if low is not None:
        y = np.maximum(y, low)
        inside = inside & (xv >= low)
    if high is not None:
        y = np.minimum(y, high)
        inside = inside & (xv <= high)
    return tape.record(y, [x], lambda g: (_unbroadcast(np.where(inside, g, 0.0), xv.shape),))


def _masked_fill(tape: Tape, x: Any, mask: Any, fill: Any) -> Any:
    xv, keep = _tensor(x), ~_tensor(mask).astype(bool)
    y = np.where(keep, xv, _tensor(fill))
    return tape.record(y, [x], lambda g: (_unbroadcast(np.where(keep, g, 0.0), xv.shape),))


# -- reductions ---------------------------------------------------------------------------


def _axes(dim: Any, ndim: int) -> tuple[int, ...] | None:
    if dim is None:
        return None
    dims = tuple(dim) if isinstance(dim, (list, tuple)) else (dim,)
    return tuple(int(d) % max(ndim, 1) for d in dims)


def _expand_back(
    g: Array, shape: tuple[int, ...], axes: tuple[int, ...] | None, keep: bool
) -> Array:
    """Broadcast a reduced gradient back to the input shape."""
    if axes is not None and not keep and len(shape):
        g = np.expand_dims(g, axes)
    return np.broadcast_to(g, shape)


def _sum(tape: Tape, x: Any, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Any:
    xv = _tensor(x)
    axes = _axes(dim, xv.ndim)
    y = np.sum(xv, axis=axes, keepdims=keepdim)
    return tape.record(y, [x], lambda g: (_expand_back(g, xv.shape, axes, keepdim),))


def _mean(tape: Tape, x: Any, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Any:
    xv = _tensor(x)
    axes = _axes(dim, xv.ndim)
    y = np.mean(xv, axis=axes, keepdims=keepdim)
    count = xv.size / max(np.asarray(y).size, 1)
    return tape.record(y, [x], lambda g: (_expand_back(g / count, xv.shape, axes, keepdim),))


def _extreme(pick: Callable[..., Array]) -> Any:
    """amax/amin: the gradient split evenly between the tied extremes."""

    def op(tape: Tape, x: Any, dim: Any = (), keepdim: bool = False) -> Any:
        xv = _tensor(x)
        axes = None if dim in ((), []) else _axes(dim, xv.ndim)
        y = pick(xv, axis=axes, keepdims=True)
        hit = (xv == y).astype(np.float64)
        share = hit / hit.sum(axis=axes, keepdims=True)
        out = y if keepdim else np.squeeze(y, axis=axes) if axes is not None else y.reshape(())
        return tape.record(out, [x], lambda g: (_expand_back(g, xv.shape, axes, keepdim) * share,))

    return op


def _max_or_min(is_max: bool) -> Any:
    """max(x) / max(x, other) / max(x, dim, keepdim) -> values, indices (and min)."""
    full = _extreme(np.max if is_max else np.min)
    pairwise = BINARY["maximum" if is_max else "minimum"]

    def op(tape: Tape, x: Any, dim: Any = None, keepdim: bool = False) -> Any:
        if dim is None:
            return full(tape, x)
        if _is_tensor(dim):
            return pairwise(tape, x, dim)
        xv = _tensor(x)
        axis = int(dim) % max(xv.ndim, 1)
        index = (np.argmax if is_max else np.argmin)(xv, axis=axis)
        picked = np.take_along_axis(xv, np.expand_dims(index, axis), axis=axis)
        values = picked if keepdim else np.squeeze(picked, axis=axis)

        def vjp(g: Array) -> tuple[Array]:
            grad = np.zeros_like(xv, dtype=np.float64)
            g_full = g if keepdim else np.expand_dims(g, axis)
            np.put_along_axis(grad, np.expand_dims(index, axis), g_full, axis=axis)
            return (grad,)

        indices = index if not keepdim else np.expand_dims(index, axis)
        return ValuesIndices((tape.record(values, [x], vjp), indices))

    return op


def _softmax_parts(xv: Array, axis: int) -> tuple[Array, Array]:
    shifted = xv - np.max(xv, axis=axis, keepdims=True)
    lse = np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    return shifted - lse, lse


def _log_softmax(tape: Tape, x: Any, dim: int, _stacklevel: int = 3, dtype: Any = None) -> Any:
    xv = _tensor(x).astype(np.float64)
    axis = int(dim) % max(xv.ndim, 1)
    y, _ = _softmax_parts(xv, axis)
    p = np.exp(y)
    return tape.record(y, [x], lambda g: (g - p * np.sum(g, axis=axis, keepdims=True),))


def _softmax(tape: Tape, x: Any, dim: int, _stacklevel: int = 3, dtype: Any = None) -> Any:
    xv = _tensor(x).astype(np.float64)
    axis = int(dim) % max(xv.ndim, 1)
    y = np.exp(_softmax_parts(xv, axis)[0])
    return tape.record(y, [x], lambda g: (y * (g - np.sum(g * y, axis=axis, keepdims=True)),))


def _logsumexp(tape: Tape, x: Any, dim: Any, keepdim: bool = False) -> Any:
    xv = _tensor(x).astype(np.float64)
    axes = _axes(dim, xv.ndim)
    top = np.max(xv, axis=axes, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    kept = np.log(np.sum(np.exp(xv - top), axis=axes, keepdims=True)) + top
    p = np.exp(xv - kept)
    y = kept if keepdim else np.squeeze(kept, axis=axes)
    return tape.record(y, [x], lambda g: (_expand_back(g, xv.shape, axes, keepdim) * p,))


def _cumsum(tape: Tape, x: Any, dim: int, *, dtype: Any = None) -> Any:
    xv = _tensor(x)
    axis = int(dim) % max(xv.ndim, 1)
    y = np.cumsum(xv, axis=axis)
    return tape.record(
        y, [x], lambda g: (np.flip(np.cumsum(np.flip(g, axis), axis=axis), axis),)
    )


# -- shapes and indexing ------------------------------------------------------------------


def _shape_args(shape: tuple[Any, ...]) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def _reshape(tape: Tape, x: Any, *shape: Any) -> Any:
    xv = _tensor(x)
    try:
        y = xv.reshape(_shape_args(shape))
    except ValueError as exc:
        raise GraphValueError(str(exc)) from None
    return tape.record(y, [x], lambda g: (g.reshape(xv.shape),))


def _reshaper(fn: Callable[..., Array]) -> Any:
    """A shape op whose gradient is its inverse reshape."""

    def op(tape: Tape, x: Any, *args: Any, **kwargs: Any) -> Any:
        xv = _tensor(x)
        try:
            y = fn(xv, *args, **kwargs)
        except (ValueError, IndexError) as exc:
            raise GraphValueError(str(exc)) from None
        return tape.record(y, [x], lambda g: (np.reshape(g, xv.shape),))

    return op


def _squeeze(xv: Array, dim: Any = None) -> Array:
    if dim is None:
        return np.squeeze(xv)
    axes = tuple(d for d in (_axes(dim, xv.ndim) or ()) if xv.shape[d] == 1)
    return np.squeeze(xv, axis=axes) if axes else xv


def _flatten(xv: Array, start_dim: int = 0, end_dim: int = -1) -> Array:
    if xv.ndim == 0:
        return xv.reshape(1)
    start, end = start_dim % xv.ndim, end_dim % xv.ndim
    return xv.reshape((*xv.shape[:start], -1, *xv.shape[end + 1 :]))


def _transpose(tape: Tape, x: Any, dim0: int = 0, dim1: int = 1) -> Any:
    xv = _tensor(x)
    if xv.ndim < 2:
        return x
    y = np.swapaxes(xv, dim0, dim1)
    return tape.record(y, [x], lambda g: (np.swapaxes(g, dim0, dim1),))


def _permute(tape: Tape, x: Any, *dims: Any) -> Any:
    xv = _tensor(x)
    order = _shape_args(dims)
    y = np.transpose(xv, order)
    return tape.record(y, [x], lambda g: (np.transpose(g, np.argsort(order)),))


def _expand(tape: Tape, x: Any, *sizes: Any) -> Any:
    xv = _tensor(x)
    target = list(_shape_args(sizes))
    offset = len(target) - xv.ndim
    for i, size in enumerate(target):
        if size == -1:
            target[i] = xv.shape[i - offset]
    _check_size(target)
    y = np.broadcast_to(xv, tuple(target))
    return tape.record(y, [x], lambda g: (_unbroadcast(g, xv.shape),))


def _expand_as(tape: Tape, x: Any, other: Any) -> Any:
    return _expand(tape, x, *_tensor(other).shape)


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
    xv = _tensor(x)
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
    xv, ix = _tensor(x), _tensor(index).astype(np.int64)
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
        parts = [_tensor(t) for t in tensors]
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
        return x if isinstance(x, Var) else _tensor(x).astype(np.float64)
    if name in INT_DTYPES:
        return _tensor(x).astype(np.int64)
    if name == "bool":
        return _tensor(x).astype(bool)
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
        xv = _tensor(x)
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
        _check_size(shape)
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
    _check_size([max(0, math.ceil((stop - start) / step))])
    kind = _dtype_of(dict(kwargs), np.result_type(*(value(a) for a in args)))
    return np.arange(*(value(a) for a in args)).astype(kind)


def _size(tape: Tape, x: Any, dim: int | None = None) -> Any:
    shape = tuple(int(s) for s in _tensor(x).shape)
    return shape if dim is None else shape[dim]


ATTRIBUTES = frozenset({"shape", "ndim", "dtype", "T", "mT", "values", "indices", "device"})


def _getattr(tape: Tape, x: Any, name: str) -> Any:
    if name not in ATTRIBUTES:
        raise GraphValueError(f"attribute {name!r} is not supported")
    if name in ("values", "indices"):
        if not isinstance(x, ValuesIndices):
            raise GraphValueError(f".{name} needs the result of max/min along a dim")
        return x[0] if name == "values" else x[1]
    xv = _tensor(x)
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
        if _is_tensor(x) or rest:
            return TENSOR_OPS[name](tape, x, *rest)
        return fn(_scalar(x))

    return op


# -- the tables ---------------------------------------------------------------------------

TENSOR_OPS: dict[str, Any] = {
    **UNARY,
    **BINARY,
    "add": _add,
    "sub": _sub,
    "rsub": _rsub,
    "true_divide": _true_divide,
    "divide": _true_divide,
    "multiply": BINARY["mul"],
    "subtract": _sub,
    "negative": UNARY["neg"],
    "absolute": UNARY["abs"],
    "bitwise_not": UNARY["invert"],
    "greater": BINARY["gt"],
    "less": BINARY["lt"],
    "float_power": BINARY["pow"],
    "where": _where,
    "clamp": _clamp,
    "clip": _clamp,
    "masked_fill": _masked_fill,
    "sum": _sum,
    "mean": _mean,
    "amax": _extreme(np.max),
    "amin": _extreme(np.min),
    "max": _max_or_min(True),
    "min": _max_or_min(False),
    "logsumexp": _logsumexp,
    "log_softmax": _log_softmax,
    "softmax": _softmax,
    "cumsum": _cumsum,
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
    "detach": _detach,
    "clone": _identity,
    "contiguous": _identity,
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
    "dim": lambda tape, x: _tensor(x).ndim,
    "numel": lambda tape, x: int(_tensor(x).size),
}

#: Tensor methods (call_method targets).
METHODS: dict[str, Any] = {
    name: op
    for name, op in TENSOR_OPS.items()
    if name not in {"stack", "cat", "concat", "where", "ones_like", "zeros_like", "full_like"}
} | {"where": lambda tape, x, cond, other: _where(tape, cond, x, other)}

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
    "add": _add,
    "sub": _sub,
    "mul": BINARY["mul"],
    "truediv": BINARY["div"],
    "floordiv": BINARY["floordiv"],
    "mod": BINARY["mod"],
    "pow": BINARY["pow"],
    "neg": UNARY["neg"],
    "pos": _identity,
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
    | {"torch.special.expit": UNARY["sigmoid"], "torch.special.logsumexp": _logsumexp}
    | {f"operator.{name}": op for name, op in _OPERATOR.items()}
    | {f"math.{name}": op for name, op in _MATH.items()}
    | {"getattr": _getattr, "builtins.getattr": _getattr}
)
