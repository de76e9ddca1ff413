"""Values of a custom-loss graph and the tape that differentiates them.

Values flowing through a graph are Python scalars, numpy arrays (constants: loss inputs and
anything that does not depend on the logprobs) or `Var`s (float64 arrays that depend on the
logprobs). The `Tape` records how each Var was made, so that `Tape.backward` can run the chain
rule in reverse. The helpers here are shared by the operation modules (graph_math, graph_ops).
"""

from __future__ import annotations

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
        if not any_var(parents):
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
            accumulate(grads, parents, vjp(grad))
        result = grads.get(id(leaf))
        return np.zeros_like(leaf.value) if result is None else result


def any_var(values: Any) -> bool:
    if isinstance(values, Var):
        return True
    if isinstance(values, (list, tuple)):
        return any(any_var(v) for v in values)
    return False


def accumulate(grads: dict[int, Array], parents: Any, parent_grads: Any) -> None:
    if isinstance(parents, Var):
        if parent_grads is None:
            return
        g = np.broadcast_to(np.asarray(parent_grads, dtype=np.float64), parents.value.shape)
        previous = grads.get(id(parents))
        grads[id(parents)] = g.copy() if previous is None else previous + g
    elif isinstance(parents, (list, tuple)) and parent_grads is not None:
        for parent, grad in zip(parents, parent_grads, strict=False):
            accumulate(grads, parent, grad)


def value(x: Any) -> Any:
    """The raw value of a graph value (Vars unwrapped, lists and tuples recursively)."""
    if isinstance(x, Var):
        return x.value
    if isinstance(x, ValuesIndices):
        return ValuesIndices(value(v) for v in x)
    if isinstance(x, (list, tuple)):
        return type(x)(value(v) for v in x)
    return x


def as_array(x: Any) -> Array:
    raw = value(x)
    if isinstance(raw, DType | Opaque) or raw is None:
        raise GraphValueError(f"expected a tensor or number, got {describe(raw)}")
    array = np.asarray(raw)
    if array.dtype == object:
        raise GraphValueError(f"expected a tensor or number, got {describe(raw)}")
    return array


def describe(x: Any) -> str:
    if isinstance(x, DType):
        return f"dtype {x.name}"
    if isinstance(x, Opaque):
        return f"{x.kind} {x.value}"
    return type(x).__name__


def is_tensor(x: Any) -> bool:
    return isinstance(x, Var | np.ndarray | np.generic)


def check_size(shape: Sequence[int]) -> None:
    if int(np.prod(shape, dtype=np.int64)) > MAX_ELEMENTS:
        raise GraphValueError(f"an array of shape {tuple(shape)} exceeds {MAX_ELEMENTS} elements")


def unbroadcast(grad: Array, shape: tuple[int, ...]) -> Array:
    """Sum a broadcast gradient back to the operand's shape."""
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad


def plain_scalar(x: Any) -> Any:
    if isinstance(x, DType | Opaque):
        raise GraphValueError(f"expected a number, got {describe(x)}")
    return x


def axes_of(dim: Any, ndim: int) -> tuple[int, ...] | None:
    if dim is None:
        return None
    dims = tuple(dim) if isinstance(dim, (list, tuple)) else (dim,)
    return tuple(int(d) % max(ndim, 1) for d in dims)
