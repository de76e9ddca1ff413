"""The two errors of the protobuf codec: bytes that are not a valid message, values that
cannot be written as one. Both are ValueErrors whose text names the message and field."""

from __future__ import annotations

__all__ = ["ProtobufDecodeError", "ProtobufEncodeError"]


class _PathError(ValueError):
    """A codec error located by a path of field names from the outermost message down."""

    def __init__(self, detail: str, *path: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.path: list[str] = list(path)

    def __reduce__(self) -> tuple[type[_PathError], tuple[str, ...]]:
        return type(self), (self.detail, *self.path)

    def within(self, segment: str) -> _PathError:
        """Prefix the path with the field (or message) that contains the faulty one."""
        self.path.insert(0, segment)
        return self

    @property
    def location(self) -> str:
        """`Message.field[index].field` of the faulty value."""
        return "".join(
            segment if index == 0 or segment.startswith("[") else "." + segment
            for index, segment in enumerate(self.path)
        )

    def __str__(self) -> str:
        return f"{self.location}: {self.detail}" if self.path else self.detail


class ProtobufDecodeError(_PathError):
    """Bytes that are not a valid message of the Tinker schema (truncated, wrong wire type,
    unknown enum value, sizes that do not match shapes, ...)."""


class ProtobufEncodeError(_PathError):
    """A message value that cannot be encoded (wrong dtype, value out of range, ...)."""
