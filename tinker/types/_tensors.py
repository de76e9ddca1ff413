"""TensorData: a numpy-backed tensor (int64 or float32), dense or sparse CSR.

A frozen dataclass with identity equality, as in the official SDK 0.38. The values live in one
numpy array (never a Python list, unless `data` is read); lists of 0.5.1 code are converted
once. Sparse tensors are 2-D and CSR: `data` holds the listed values, `sparse_crow_indices`
the row pointers (rows + 1) and `sparse_col_indices` one column per value; every other cell
holds the `pad_value` given when densifying. numpy is imported on first construction; torch
only by the torch helpers.
"""

from __future__ import annotations

import dataclasses
import itertools
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from tinker.types._checks import Invalid, check_float, check_int
from tinker.types._data import DataModel, data_model, imported_module

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["TensorData", "TensorDtype", "is_numpy_array", "is_torch_tensor"]

TensorDtype = Literal["int64", "float32"]
_DTYPES = ("int64", "float32")
_ARRAY_FIELDS = frozenset({"data", "dtype", "shape"})  # what a construction from an array sets


def is_numpy_array(value: object) -> bool:
    """True for a numpy.ndarray, without importing numpy when the caller never did."""
    np = imported_module("numpy")
    return np is not None and isinstance(value, np.ndarray)


def is_torch_tensor(value: object) -> bool:
    """True for a torch.Tensor, without importing torch when the caller never did."""
    torch = imported_module("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def wire_dtype_of_numpy(array: npt.NDArray[Any], stacklevel: int = 3) -> TensorDtype:
    """The wire dtype a numpy array travels as: float kinds float32, signed ints int64."""
    kind = array.dtype.kind
    if kind == "f":
        if array.dtype.itemsize > 4:
            warnings.warn(
                f"TensorData: converting a {array.dtype} array to float32 (the wire carries "
                "only float32 and int64); pass float32 to avoid this",
                stacklevel=stacklevel,
            )
        return "float32"
    if kind == "i":
        return "int64"
    if kind == "u":
        raise ValueError(
            f"TensorData: unsigned numpy dtype {array.dtype} is not supported; "
            "convert with .astype(np.int64)"
        )
    if kind == "b":
        raise ValueError(
            "TensorData: bool arrays are not supported; convert with .astype(np.float32) "
            "(masks, weights) or .astype(np.int64)"
        )
    raise ValueError(
        f"TensorData: numpy dtype {array.dtype} is not supported; use float32 or int64"
    )


def _numpy_dtype(dtype: str) -> Any:
    import numpy as np

    return np.dtype(np.int64) if dtype == "int64" else np.dtype(np.float32)


def _flat_numbers(values: Sequence[Any], dtype: str) -> list[Any]:
    """A flat list of plain numbers, or ValueError/TypeError naming the first bad value."""
    allowed = {int} if dtype == "int64" else {int, float}
    if set(map(type, values)) <= allowed:  # one C-level pass
        return list(values)
    check = check_int if dtype == "int64" else check_float
    out = []
    for index, value in enumerate(values):
        try:
            out.append(check(value))
        except Invalid:
            raise TypeError(
                f"TensorData.data[{index}]: dtype {dtype} needs "
                f"{'ints' if dtype == 'int64' else 'numbers'}, got {value!r}"
            ) from None
    return out


def _array_from_list(values: Sequence[Any], dtype: str) -> Any:
    """A list (flat, or nested and rectangular) as an array of `dtype`."""
    import numpy as np

    nested = bool(values) and isinstance(values[0], (list, tuple))
    if not nested:
        return _cast(_flat_numbers(values, dtype), dtype)
    try:
        array = np.array(values, dtype=object)
    except ValueError:
        array = None
    if array is None or array.dtype != object or array.ndim < 2:
        raise ValueError("TensorData.data: nested lists must be rectangular (every row alike)")
    return _cast(_flat_numbers(array.reshape(-1).tolist(), dtype), dtype).reshape(array.shape)


def _cast(flat: list[Any], dtype: str) -> Any:
    """Plain numbers as a 1-D array of `dtype`; ValueError when one does not fit it."""
    import numpy as np

    try:
        with np.errstate(over="raise"):
            return np.array(flat, dtype=_numpy_dtype(dtype))
    except (OverflowError, FloatingPointError):
        raise ValueError(f"TensorData.data: a value does not fit {dtype}") from None


def _array_from_numpy(array: Any, dtype: str) -> Any:
    """A numpy array cast to `dtype` (kept as it is when it already fits and is writable)."""
    import numpy as np

    target = _numpy_dtype(dtype)
    if array.dtype != target:
        if dtype == "int64" and array.dtype.kind == "f" and not np.all(np.mod(array, 1) == 0):
            raise ValueError("TensorData.data: int64 values must be whole numbers")
        if array.dtype.kind == "u" and array.size and int(array.max()) > np.iinfo(np.int64).max:
            raise ValueError("TensorData.data: a value does not fit int64")
        if array.dtype.kind not in "biuf":
            raise ValueError(f"TensorData.data: numpy dtype {array.dtype} is not numeric")
        return array.astype(target)
    if not array.flags.writeable or not array.flags.c_contiguous:
        return np.array(array, dtype=target, order="C")
    return array


def _int_list(name: str, value: Any, minimum: int = 0) -> list[int] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"TensorData.{name}: expected a list of ints, got {value!r}")
    items = value.tolist() if hasattr(value, "tolist") else list(value)
    out = []
    for index, item in enumerate(items):
        try:
            number = check_int(item)
        except Invalid:
            raise TypeError(f"TensorData.{name}[{index}]: expected an int, got {item!r}") from None
        if number < minimum:
            raise ValueError(f"TensorData.{name}[{index}]: must be >= {minimum}, got {number}")
        out.append(number)
    return out


@data_model
@dataclasses.dataclass(frozen=True, eq=False, init=False)
class TensorData(DataModel):
    """A tensor of int64 or float32 values, with its shape; dense or sparse CSR."""

    _json_keys = ("data", "dtype", "shape", "sparse_crow_indices", "sparse_col_indices")
    _json_aliases = {"_numpy": "data"}
    _json_optional = {"shape": None, "sparse_crow_indices": None, "sparse_col_indices": None}
    _json_forbid_extra = True
    _json_required = frozenset({"data"})

    dtype: TensorDtype
    shape: list[int] | None = None
    sparse_crow_indices: list[int] | None = None
    sparse_col_indices: list[int] | None = None
    _numpy: Any = dataclasses.field(default=None, repr=False)

    def __init__(
        self,
        data: Sequence[int] | Sequence[float] | npt.NDArray[Any] | None = None,
        dtype: TensorDtype | None = None,
        shape: Sequence[int] | None = None,
        sparse_crow_indices: Sequence[int] | npt.NDArray[Any] | None = None,
        sparse_col_indices: Sequence[int] | npt.NDArray[Any] | None = None,
        *,
        _numpy: npt.NDArray[Any] | None = None,
    ) -> None:
        if dtype is None:
            raise TypeError("TensorData: dtype is required ('int64' or 'float32')")
        if dtype not in _DTYPES:
            raise ValueError(f"TensorData.dtype: expected one of 'int64', 'float32', got {dtype!r}")
        if _numpy is not None:
            data = _numpy
        if data is None:
            data = []
        if is_numpy_array(data):
            values = _array_from_numpy(data, dtype)
        elif isinstance(data, (list, tuple)):
            values = _array_from_list(data, dtype)
        else:
            raise TypeError(
                "TensorData.data: expected a list of numbers or a numpy array "
                f"(use TensorData.from_torch for tensors), got {type(data).__name__}"
            )
        dims = _int_list("shape", shape)
        crow = _int_list("sparse_crow_indices", sparse_crow_indices)
        cols = _int_list("sparse_col_indices", sparse_col_indices)
        if crow is None and cols is None:
            values = _dense_values(values, dims)
            if dims is None and values.ndim > 1:
                dims = list(values.shape)
        else:
            values = values.reshape(-1)
            _check_csr(values.size, dims, crow, cols)
        object.__setattr__(self, "dtype", dtype)
        object.__setattr__(self, "shape", dims)
        object.__setattr__(self, "sparse_crow_indices", crow)
        object.__setattr__(self, "sparse_col_indices", cols)
        object.__setattr__(self, "_numpy", values)

    @property
    def is_sparse(self) -> bool:
        """Whether the values are stored as CSR."""
        return self.sparse_crow_indices is not None

    @property
    def values(self) -> npt.NDArray[Any]:
        """The stored array: the dense values in `shape`, or a sparse tensor's listed values."""
        return self._numpy  # type: ignore[no-any-return]

    @property
    def data(self) -> list[Any]:
        """The values as a flat Python list (a sparse tensor: the listed values only)."""
        return self._numpy.reshape(-1).tolist()  # type: ignore[no-any-return]

    @classmethod
    def from_numpy(cls, array: npt.NDArray[Any]) -> TensorData:
        """Wrap a numpy array (kept, not copied when it fits): float kinds become float32,
        signed ints int64."""
        import numpy as np

        if not isinstance(array, np.ndarray):
            raise TypeError(f"TensorData.from_numpy: expected a numpy array, got {type(array)}")
        dtype = wire_dtype_of_numpy(array)
        return cls._wrap(_array_from_numpy(array, dtype), dtype)

    @classmethod
    def _wrap(cls, array: npt.NDArray[Any], dtype: TensorDtype) -> TensorData:
        """A dense TensorData of an array that already is writable and of `dtype`'s numpy
        type (what from_numpy made of it, or results the SDK decoded itself): no checks, no
        copy."""
        tensor = object.__new__(cls)
        object.__setattr__(tensor, "dtype", dtype)
        object.__setattr__(tensor, "shape", list(array.shape))
        object.__setattr__(tensor, "sparse_crow_indices", None)
        object.__setattr__(tensor, "sparse_col_indices", None)
        object.__setattr__(tensor, "_numpy", array)
        object.__setattr__(tensor, "_fields_set", _ARRAY_FIELDS)
        return tensor

    @classmethod
    def from_torch(cls, tensor: Any) -> TensorData:
        """Wrap a torch tensor: floating dtypes (bfloat16 too) become float32, others int64."""
        array, dtype = _torch_array(tensor, "from_torch")
        return cls(data=array, dtype=dtype, shape=list(array.shape))

    @classmethod
    def from_torch_sparse(cls, tensor: Any, pad_value: int = 0) -> TensorData:
        """A 2-D torch tensor as CSR, leaving out every cell equal to `pad_value`, when that
        is smaller than dense ((rows + 1) + 2 * nnz < rows * cols); otherwise dense."""
        if not isinstance(pad_value, int) or isinstance(pad_value, bool):
            raise TypeError(
                f"TensorData.from_torch_sparse: pad_value must be an int, got {pad_value!r}"
            )
        array, dtype = _torch_array(tensor, "from_torch_sparse")
        return cls.from_dense_numpy(array, dtype, pad_value)

    @classmethod
    def from_dense_numpy(
        cls, array: npt.NDArray[Any], dtype: TensorDtype, pad_value: int = 0
    ) -> TensorData:
        """A 2-D array as CSR without the `pad_value` cells when that is smaller; else dense."""
        import numpy as np

        if array.ndim != 2:
            return cls(data=array, dtype=dtype, shape=list(array.shape))
        rows, columns = array.shape
        listed = array != pad_value
        nnz = int(np.count_nonzero(listed))
        if (rows + 1) + 2 * nnz >= rows * columns:
            return cls(data=array, dtype=dtype, shape=[rows, columns])
        crow = np.zeros(rows + 1, np.int64)
        np.cumsum(np.count_nonzero(listed, axis=1), out=crow[1:])
        return cls(
            data=np.ascontiguousarray(array[listed]),
            dtype=dtype,
            shape=[rows, columns],
            sparse_crow_indices=crow,
            sparse_col_indices=np.nonzero(listed)[1],
        )

    def to_numpy(self, pad_value: int = 0) -> npt.NDArray[Any]:
        """The values as an array of this dtype and shape (dense: the stored array itself, not
        a copy; sparse: a new dense array with `pad_value` in the unlisted cells)."""
        if self.sparse_crow_indices is None:
            return self._numpy  # type: ignore[no-any-return]
        import numpy as np

        assert self.shape is not None and self.sparse_col_indices is not None
        rows, columns = self.shape
        dense = np.full((rows, columns), pad_value, dtype=self._numpy.dtype)
        row_of = np.repeat(np.arange(rows), np.diff(np.asarray(self.sparse_crow_indices)))
        dense[row_of, np.asarray(self.sparse_col_indices, np.int64)] = self._numpy
        return dense

    def to_torch(self, pad_value: int = 0) -> Any:
        """A new torch tensor with this dtype and shape (sparse: densified with `pad_value`)."""
        import torch

        return torch.tensor(self.to_numpy(pad_value))

    def tolist(self, pad_value: int = 0) -> list[Any]:
        """The values as (nested, following `shape`) Python lists."""
        return self.to_numpy(pad_value).tolist()  # type: ignore[no-any-return]


def _dense_values(values: Any, dims: list[int] | None) -> Any:
    if dims is None:
        return values
    expected = 1
    for dim in dims:
        expected *= dim
    if expected != values.size:
        raise ValueError(
            f"TensorData: shape {dims} needs {expected} values, data has {values.size}"
        )
    return values.reshape(dims)


def _check_csr(
    nnz: int, dims: list[int] | None, crow: list[int] | None, cols: list[int] | None
) -> None:
    """ValueError unless the CSR parts describe a consistent 2-D tensor."""
    if crow is None or cols is None:
        raise ValueError(
            "TensorData: a sparse tensor needs both sparse_crow_indices and sparse_col_indices"
        )
    if dims is None or len(dims) != 2:
        raise ValueError(f"TensorData: a sparse tensor needs a 2-D shape, got {dims}")
    rows, columns = dims
    if len(crow) != rows + 1:
        raise ValueError(
            f"TensorData.sparse_crow_indices: {rows} rows need {rows + 1} row pointers, "
            f"got {len(crow)}"
        )
    if crow[0] != 0 or crow[-1] != nnz or any(b < a for a, b in itertools.pairwise(crow)):
        raise ValueError(
            "TensorData.sparse_crow_indices: must rise from 0 to the number of values "
            f"({nnz}), got {crow[:8]}{'...' if len(crow) > 8 else ''}"
        )
    if len(cols) != nnz:
        raise ValueError(
            f"TensorData.sparse_col_indices: needs one column per value ({nnz}), got {len(cols)}"
        )
    if cols and max(cols) >= columns:
        raise ValueError(
            f"TensorData.sparse_col_indices: column {max(cols)} is outside the shape {dims}"
        )


def _torch_array(tensor: Any, method: str) -> tuple[Any, TensorDtype]:
    import torch

    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"TensorData.{method}: expected a torch.Tensor, got {type(tensor)}")
    value = tensor.detach().cpu()
    if value.layout != torch.strided:
        value = value.to_dense()
    if value.is_floating_point():
        return value.to(torch.float32).numpy(), "float32"
    return value.to(torch.int64).numpy(), "int64"
