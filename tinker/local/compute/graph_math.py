"""Arithmetic operations of custom-loss graphs: elementwise, broadcasting binary, clamping,
selection and reductions, each with its exact vector-Jacobian product (torch's conventions:
clamp passes the gradient where min <= x <= max; maximum/minimum and amax/amin split it evenly
between ties; max/min along a dim send it to the returned index)."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from tinker.local.compute.graph_values import (
    GraphValueError,
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


def _unary(fn: Callable[[Array], Array], deriv: Callable[[Array, Array], Array] | None) -> Any:
    """An elementwise op; deriv(x, y) is dy/dx (None: no gradient flows)."""

    def op(tape: Tape, x: Any) -> Any:
        xv = as_array(x)
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


def detach(tape: Tape, x: Any) -> Any:
    return value(x)


def identity(tape: Tape, x: Any, *_: Any, **__: Any) -> Any:
    return x


def _binary(
    fn: Callable[[Any, Any], Any],
    da: Callable[[Array, Array, Array, Array], Array] | None,
    db: Callable[[Array, Array, Array, Array], Array] | None,
) -> Any:
    """A broadcasting op; da/db give the gradient w.r.t. a/b before unbroadcasting."""

    def op(tape: Tape, a: Any, b: Any) -> Any:
        if not (is_tensor(a) or is_tensor(b)):
            return fn(plain_scalar(a), plain_scalar(b))
        av, bv = as_array(a), as_array(b)
        try:
            check_size(np.broadcast_shapes(av.shape, bv.shape))
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
                    unbroadcast(da(av, bv, y, g), av.shape),
                    unbroadcast(db(av, bv, y, g), bv.shape),
                )

        return tape.record(y, [a, b], vjp)

    return op


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


def add(tape: Tape, a: Any, b: Any, *, alpha: Any = 1) -> Any:
    return _plus(tape, a, b if alpha == 1 else BINARY["mul"](tape, b, alpha))


def sub(tape: Tape, a: Any, b: Any, *, alpha: Any = 1) -> Any:
    return _minus(tape, a, b if alpha == 1 else BINARY["mul"](tape, b, alpha))


def rsub(tape: Tape, a: Any, b: Any, *, alpha: Any = 1) -> Any:
    return sub(tape, b, a, alpha=alpha)


def true_divide(tape: Tape, a: Any, b: Any, *, rounding_mode: str | None = None) -> Any:
    if rounding_mode is None:
        return BINARY["div"](tape, a, b)
    if rounding_mode == "floor":
        return BINARY["floordiv"](tape, a, b)
    raise GraphValueError(f"rounding_mode {rounding_mode!r} is not supported")


def where(tape: Tape, condition: Any, a: Any, b: Any) -> Any:
    cond = as_array(condition).astype(bool)
    av, bv = as_array(a), as_array(b)
    check_size(np.broadcast_shapes(cond.shape, av.shape, bv.shape))
    y = np.where(cond, av, bv)

    def vjp(g: Array) -> tuple[None, Array, Array]:
        return (
            None,
            unbroadcast(np.where(cond, g, 0.0), av.shape),
            unbroadcast(np.where(cond, 0.0, g), bv.shape),
        )

    return tape.record(y, [None, a, b], vjp)


def clamp(tape: Tape, x: Any, min: Any = None, max: Any = None) -> Any:
    """torch.clamp: the bounds are constants; the gradient passes where min <= x <= max."""
    if min is None and max is None:
        raise GraphValueError("clamp needs at least one of min and max")
    xv = as_array(x)
    low = None if min is None else as_array(min)
    high = None if max is None else as_array(max)
    y = xv
    inside = np.ones(xv.shape, dtype=bool)
    if low is not None:
        y = np.maximum(y, low)
        inside = inside & (xv >= low)
    if high is not None:
        y = np.minimum(y, high)
        inside = inside & (xv <= high)
    return tape.record(y, [x], lambda g: (unbroadcast(np.where(inside, g, 0.0), xv.shape),))


def masked_fill(tape: Tape, x: Any, mask: Any, fill: Any) -> Any:
    xv, keep = as_array(x), ~as_array(mask).astype(bool)
    y = np.where(keep, xv, as_array(fill))
    return tape.record(y, [x], lambda g: (unbroadcast(np.where(keep, g, 0.0), xv.shape),))


# -- reductions ---------------------------------------------------------------------------


def _expand_back(
    g: Array, shape: tuple[int, ...], axes: tuple[int, ...] | None, keep: bool
) -> Array:
    """Broadcast a reduced gradient back to the input shape."""
    if axes is not None and not keep and len(shape):
        g = np.expand_dims(g, axes)
    return np.broadcast_to(g, shape)


def sum_(tape: Tape, x: Any, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Any:
    xv = as_array(x)
    axes = axes_of(dim, xv.ndim)
    y = np.sum(xv, axis=axes, keepdims=keepdim)
    return tape.record(y, [x], lambda g: (_expand_back(g, xv.shape, axes, keepdim),))


def mean(tape: Tape, x: Any, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Any:
    xv = as_array(x)
    axes = axes_of(dim, xv.ndim)
    y = np.mean(xv, axis=axes, keepdims=keepdim)
    count = xv.size / max(np.asarray(y).size, 1)
    return tape.record(y, [x], lambda g: (_expand_back(g / count, xv.shape, axes, keepdim),))


def extreme(pick: Callable[..., Array]) -> Any:
    """amax/amin: the gradient split evenly between the tied extremes."""

    def op(tape: Tape, x: Any, dim: Any = (), keepdim: bool = False) -> Any:
        xv = as_array(x)
        axes = None if dim in ((), []) else axes_of(dim, xv.ndim)
        y = pick(xv, axis=axes, keepdims=True)
        hit = (xv == y).astype(np.float64)
        share = hit / hit.sum(axis=axes, keepdims=True)
        out = y if keepdim else np.squeeze(y, axis=axes) if axes is not None else y.reshape(())
        return tape.record(out, [x], lambda g: (_expand_back(g, xv.shape, axes, keepdim) * share,))

    return op


def max_or_min(is_max: bool) -> Any:
    """max(x) / max(x, other) / max(x, dim, keepdim) -> values, indices (and min)."""
    full = extreme(np.max if is_max else np.min)
    pairwise = BINARY["maximum" if is_max else "minimum"]

    def op(tape: Tape, x: Any, dim: Any = None, keepdim: bool = False) -> Any:
        if dim is None:
            return full(tape, x)
        if is_tensor(dim):
            return pairwise(tape, x, dim)
        xv = as_array(x)
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


def log_softmax(tape: Tape, x: Any, dim: int, _stacklevel: int = 3, dtype: Any = None) -> Any:
    xv = as_array(x).astype(np.float64)
    axis = int(dim) % max(xv.ndim, 1)
    y, _ = _softmax_parts(xv, axis)
    p = np.exp(y)
    return tape.record(y, [x], lambda g: (g - p * np.sum(g, axis=axis, keepdims=True),))


def softmax(tape: Tape, x: Any, dim: int, _stacklevel: int = 3, dtype: Any = None) -> Any:
    xv = as_array(x).astype(np.float64)
    axis = int(dim) % max(xv.ndim, 1)
    y = np.exp(_softmax_parts(xv, axis)[0])
    return tape.record(y, [x], lambda g: (y * (g - np.sum(g * y, axis=axis, keepdims=True)),))


def logsumexp(tape: Tape, x: Any, dim: Any, keepdim: bool = False) -> Any:
    xv = as_array(x).astype(np.float64)
    axes = axes_of(dim, xv.ndim)
    top = np.max(xv, axis=axes, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    kept = np.log(np.sum(np.exp(xv - top), axis=axes, keepdims=True)) + top
    p = np.exp(xv - kept)
    y = kept if keepdim else np.squeeze(kept, axis=axes)
    return tape.record(y, [x], lambda g: (_expand_back(g, xv.shape, axes, keepdim) * p,))


def cumsum(tape: Tape, x: Any, dim: int, *, dtype: Any = None) -> Any:
    xv = as_array(x)
    axis = int(dim) % max(xv.ndim, 1)
    y = np.cumsum(xv, axis=axis)
    return tape.record(y, [x], lambda g: (np.flip(np.cumsum(np.flip(g, axis), axis=axis), axis),))
