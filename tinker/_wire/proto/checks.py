"""Consistency rules of the numeric messages (sizes against shapes, CSR and offset layouts).

The decoder applies them to what it reads and the encoder to what it writes, so neither side
produces or accepts a message whose sizes contradict each other. Each check raises the error
class it is given, located at the offending field.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from tinker._wire.proto.errors import _PathError
from tinker._wire.proto.messages import (
    ArrayRecord,
    BatchedTensor,
    DType,
    SparseCsr,
    Tensor,
    TopkLogprobs,
)

__all__ = [
    "batched_datum_count",
    "check_array_record",
    "check_batched_tensor",
    "check_dtype",
    "check_shape",
    "check_tensor",
    "check_topk",
]

Error = type[_PathError]


def check_dtype(value: int, error: Error, name: str = "dtype") -> DType:
    """`value` as a DType that has an element type (not DTYPE_UNSPECIFIED, not unknown)."""
    found = _ELEMENT_TYPES.get(value)
    if found is not None:
        return found
    if value == DType.UNSPECIFIED:
        raise error("DTYPE_UNSPECIFIED is not an element type", name)
    raise error(f"unknown DType value {value}", name)


_ELEMENT_TYPES = {dtype.value: dtype for dtype in DType if dtype != DType.UNSPECIFIED}


def check_shape(shape: Sequence[int], count: int | None, error: Error, name: str) -> None:
    """No negative dimension; when `count` is given and the shape is not empty, the shape
    holds exactly `count` values."""
    if any(dim < 0 for dim in shape):
        raise error(f"negative dimension in {list(shape)}", name)
    if count is not None and shape and math.prod(shape) != count:
        raise error(
            f"{count} values do not fill shape {list(shape)} ({math.prod(shape)} values)", name
        )


def check_tensor(tensor: Tensor, error: Error) -> None:
    """A Tensor's values fit its shape; a sparse one is a well-formed 2-D CSR layout."""
    if tensor.dense is not None and tensor.sparse_csr is not None:
        raise error("both dense and sparse_csr are set (they are one oneof)", "dense")
    if tensor.sparse_csr is None:
        count = 0 if tensor.dense is None else int(tensor.dense.size)
        check_shape(tensor.shape, count, error, "shape")
    else:
        check_shape(tensor.shape, None, error, "shape")
        try:
            _check_csr(tensor.sparse_csr, tensor.shape, error)
        except _PathError as exc:
            raise exc.within("sparse_csr") from None


def _check_csr(csr: SparseCsr, shape: Sequence[int], error: Error) -> None:
    if len(shape) != 2:
        raise error(f"a CSR tensor needs a 2-D shape, got {list(shape)}", "shape")
    rows, cols = shape
    crow, col = csr.crow_indices, csr.col_indices
    nnz = int(col.size)
    if crow.size != rows + 1:
        raise error(f"{crow.size} row pointers for {rows} rows (needs rows + 1)", "crow_indices")
    if csr.values.size != nnz:
        raise error(f"{csr.values.size} values for {nnz} column indices", "values")
    steps = _steps(crow, nnz, "row pointers", "the number of values", error, "crow_indices")
    if nnz:
        if int(col.min()) < 0 or int(col.max()) >= cols:
            raise error(f"column index outside [0, {cols})", "col_indices")
        same_row = np.repeat(np.arange(rows), steps)
        repeated = (same_row[1:] == same_row[:-1]) & (col[1:] <= col[:-1])
        if repeated.any():
            raise error("column indices must increase within each row", "col_indices")


def _steps(
    pointers: npt.NDArray[Any], total: int, what: str, meaning: str, error: Error, name: str
) -> npt.NDArray[Any]:
    """The gaps between consecutive `pointers`, which must run from 0 to `total` without
    going back (CSR row pointers, byte offsets)."""
    if pointers[0] != 0 or pointers[-1] != total:
        raise error(
            f"{what} must run from 0 to {total} ({meaning}), "
            f"got {int(pointers[0])} to {int(pointers[-1])}",
            name,
        )
    steps = np.diff(pointers)
    if (steps < 0).any():
        raise error(f"{what} decrease", name)
    return steps


def _int64(array: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    return array.astype(np.int64, copy=False)


def check_batched_tensor(batched: BatchedTensor, error: Error) -> None:
    """Byte offsets run from 0 to the end of `data` without going back, each on a value
    boundary, and every datum's values fill whole rows of `trailing_shape`."""
    check_shape(batched.trailing_shape, None, error, "trailing_shape")
    data, offsets = batched.data, _int64(batched.offsets)
    if offsets.size == 0:
        if data.size:
            raise error(f"no offsets for {data.size} values", "offsets")
        return
    sizes = _steps(offsets, data.nbytes, "offsets", "the bytes of data", error, "offsets")
    if (sizes % data.itemsize).any():
        raise error(f"an offset is not a multiple of {data.itemsize} bytes", "offsets")
    row = math.prod(batched.trailing_shape)
    counts = sizes // data.itemsize
    bad = np.flatnonzero(counts if row == 0 else counts % row)
    if bad.size:
        index = int(bad[0])
        raise error(
            f"datum {index} has {int(counts[index])} values, not whole rows of "
            f"trailing_shape {list(batched.trailing_shape)}",
            "data",
        )


def batched_datum_count(batched: BatchedTensor) -> int:
    """How many datums a (checked) BatchedTensor holds."""
    return max(int(batched.offsets.size) - 1, 0)


def check_array_record(record: ArrayRecord, error: Error) -> None:
    """Every field holds the same number of datums, `num_datums` when that is not 0."""
    if record.num_datums < 0:
        raise error(f"negative count {record.num_datums}", "num_datums")
    expected = record.num_datums or None
    for name, batched in record.fields.items():
        count = batched_datum_count(batched)
        if expected is None:
            expected = count
        elif count != expected:
            raise error(f"{count} datums where the record has {expected}", "fields", f"[{name!r}]")


def check_topk(topk: TopkLogprobs, error: Error) -> None:
    """Both tables hold `length` x `k` cells."""
    cells = topk.k * topk.length
    for name in ("token_ids", "logprobs"):
        size = int(getattr(topk, name).size)
        if size != cells:
            raise error(f"{size} cells where length x k = {topk.length} x {topk.k} = {cells}", name)
