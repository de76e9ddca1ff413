"""TensorData: a flat tensor on the wire (int64 or float32), with numpy and torch helpers.

numpy and torch are imported only when a helper that needs them is called.
"""

from __future__ import annotations

import math
import sys
import warnings
from typing import TYPE_CHECKING, Any, Literal

import attrs

from tinker.types._base import WireModel, wire
from tinker.types._checks import Invalid, check_float, check_int

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["TensorData", "TensorDtype", "is_numpy_array", "is_torch_tensor"]

TensorDtype = Literal["int64", "float32"]


def is_numpy_array(value: object) -> bool:
    """True for a numpy.ndarray, without importing numpy when the caller never did."""
    np = sys.modules.get("numpy")
    return np is not None and isinstance(value, np.ndarray)


def is_torch_tensor(value: object) -> bool:
    """True for a torch.Tensor, without importing torch when the caller never did."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def _wire_dtype_of_numpy(array: npt.NDArray[Any]) -> TensorDtype:
    kind = array.dtype.kind
    if kind == "f":
        if array.dtype.itemsize > 4:
            warnings.warn(
                f"TensorData: converting a {array.dtype} array to float32 (the wire carries "
                "only float32 and int64); pass float32 to avoid this",
                stacklevel=3,
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


_INT_KINDS = frozenset({int})
_NUMBER_KINDS = frozenset({int, float})


def _check_values(value: Any) -> list[Any]:
    """The values as a list; their types are checked against the dtype by `_validate`."""
    if isinstance(value, (list, tuple)):
        return list(value)  # a copy: later changes to the caller's list do not leak in
    raise Invalid("a flat list of numbers (use TensorData.from_numpy for arrays)", value)


def _normalise_values(values: list[Any], dtype: str) -> list[Any]:
    """Values as plain ints (int64) or ints/floats (float32); numpy scalars are converted."""
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


@wire
@attrs.frozen(kw_only=True)
class TensorData(WireModel):
    """A tensor as a flat row-major list of numbers, its dtype and (optionally) its shape."""

    data: list[int] | list[float] = attrs.field(metadata={"check": _check_values})
    dtype: TensorDtype
    shape: list[int] | None = None

    def _validate(self) -> None:
        kinds = set(map(type, self.data))  # one C-level pass over the values
        allowed = _INT_KINDS if self.dtype == "int64" else _NUMBER_KINDS
        if not kinds <= allowed:
            object.__setattr__(self, "data", _normalise_values(self.data, self.dtype))
        elif len(kinds) == 2:  # ints mixed with floats: all floats, as the official SDK sends
            object.__setattr__(self, "data", [float(value) for value in self.data])
        if self.shape is not None:
            if any(dim < 0 for dim in self.shape):
                raise ValueError(f"TensorData.shape: negative dimension in {self.shape}")
            expected = math.prod(self.shape)
            if expected != len(self.data):
                raise ValueError(
                    f"TensorData: shape {self.shape} needs {expected} values, "
                    f"data has {len(self.data)}"
                )

    @classmethod
    def from_numpy(cls, array: npt.NDArray[Any]) -> TensorData:
        """Wrap a numpy array: float kinds become float32, signed ints int64."""
        import numpy as np

        if not isinstance(array, np.ndarray):
            raise TypeError(f"TensorData.from_numpy: expected a numpy array, got {type(array)}")
        dtype = _wire_dtype_of_numpy(array)
        target = np.float32 if dtype == "float32" else np.int64
        flat = np.ascontiguousarray(array, dtype=target).reshape(-1)
        return cls.model_construct(data=flat.tolist(), dtype=dtype, shape=list(array.shape))

    @classmethod
    def from_torch(cls, tensor: Any) -> TensorData:
        """Wrap a torch tensor: floating dtypes become float32, every other dtype int64."""
        import torch

        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"TensorData.from_torch: expected a torch.Tensor, got {type(tensor)}")
        value = tensor.detach().cpu()
        if value.is_floating_point():
            value, dtype = value.to(torch.float32), "float32"
        else:
            value, dtype = value.to(torch.int64), "int64"
        return cls.model_construct(
            data=value.reshape(-1).tolist(), dtype=dtype, shape=list(value.shape)
        )

    def to_numpy(self) -> npt.NDArray[Any]:
        """A new numpy array with this dtype and shape (1-D when no shape was given)."""
        import numpy as np

        target: type[np.generic] = np.float32 if self.dtype == "float32" else np.int64
        array = np.array(self.data, dtype=target)
        return array.reshape(self.shape) if self.shape is not None else array

    def to_torch(self) -> Any:
        """A new torch tensor with this dtype and shape."""
        import torch

        target = torch.float32 if self.dtype == "float32" else torch.int64
        tensor = torch.tensor(self.data, dtype=target)
        return tensor.reshape(self.shape) if self.shape is not None else tensor

    def tolist(self) -> list[Any]:
        """The values as (nested, following `shape`) Python lists."""
        if self.shape is None or len(self.shape) == 1:
            return list(self.data)
        return self.to_numpy().tolist()  # type: ignore[no-any-return]
