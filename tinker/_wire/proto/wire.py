"""Protobuf wire primitives: varints, tags, and a strict field reader.

Reading never trusts a length or a count: every varint, length and fixed-size value is
checked against the end of its message before use, so malformed input raises
ProtobufDecodeError rather than IndexError, struct.error or a large allocation.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping

from tinker._wire.proto.errors import ProtobufDecodeError

__all__ = [
    "I32",
    "I64",
    "LEN",
    "MAX_GROUP_DEPTH",
    "VARINT",
    "expect",
    "fields",
    "float32",
    "float64",
    "int32",
    "int64",
    "pack_double",
    "pack_float",
    "packed_int64s",
    "read_varint",
    "tag",
    "uint32",
    "varint",
]

VARINT, I64, LEN, SGROUP, EGROUP, I32 = 0, 1, 2, 3, 4, 5
_WIRE_TYPE_NAMES = {
    VARINT: "varint",
    I64: "64-bit",
    LEN: "length-delimited",
    SGROUP: "start-group",
    EGROUP: "end-group",
    I32: "32-bit",
}
MAX_GROUP_DEPTH = 100
_U32 = (1 << 32) - 1
_U64 = (1 << 64) - 1

Buffer = memoryview

# --- reading ---------------------------------------------------------------------------------


def read_varint(buf: Buffer, pos: int, end: int) -> tuple[int, int]:
    """The unsigned varint at `pos` (at most 10 bytes and 64 bits) and the position after it."""
    if pos >= end:
        raise ProtobufDecodeError("truncated varint (no bytes left)")
    byte = buf[pos]
    if byte < 0x80:
        return byte, pos + 1
    result = byte & 0x7F
    shift = 7
    pos += 1
    while True:
        if pos >= end:
            raise ProtobufDecodeError("truncated varint (input ends inside it)")
        byte = buf[pos]
        pos += 1
        if shift == 63 and byte > 1:
            raise ProtobufDecodeError("varint longer than 64 bits")
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def fields(
    buf: Buffer, start: int, end: int, names: Mapping[int, str]
) -> Iterator[tuple[int, int, int, int]]:
    """Each field of the message in `buf[start:end]` as (number, wire type, a, b).

    For a varint, `a` is its value; for the other wire types `buf[a:b]` is the payload (a
    group's content without its end tag). `names` (number -> field name) only labels errors.
    """
    pos = start
    while pos < end:
        key = buf[pos]  # one-byte keys (fields 1 to 15) skip the general varint reader
        if key < 0x80:
            pos += 1
        else:
            key, pos = read_varint(buf, pos, end)
        number, wire_type = key >> 3, key & 7
        if number == 0 or key > _U32:
            raise ProtobufDecodeError(f"invalid field number {number} (tag {key})")
        if wire_type in (VARINT, LEN):  # a value or a length: a varint
            try:
                value = buf[pos] if pos < end else 0x80
                if value < 0x80:
                    pos += 1
                else:
                    value, pos = read_varint(buf, pos, end)
            except ProtobufDecodeError as exc:
                raise exc.within(_label(names, number)) from None
            if wire_type == VARINT:
                yield number, VARINT, value, 0
                continue
            length = value
            if length > end - pos:
                raise ProtobufDecodeError(
                    f"length {length} runs past the end of the message ({end - pos} bytes left)",
                    _label(names, number),
                )
            yield number, LEN, pos, pos + length
            pos += length
        elif wire_type in (I64, I32):
            size = 8 if wire_type == I64 else 4
            if size > end - pos:
                raise ProtobufDecodeError(
                    f"truncated {size * 8}-bit value ({end - pos} bytes left)",
                    _label(names, number),
                )
            yield number, wire_type, pos, pos + size
            pos += size
        elif wire_type == SGROUP:
            group_start = pos
            group_end, pos = _skip_group(buf, pos, end, number)
            yield number, SGROUP, group_start, group_end
        elif wire_type == EGROUP:
            raise ProtobufDecodeError(
                "end-group tag without a matching start-group", _label(names, number)
            )
        else:
            raise ProtobufDecodeError(f"invalid wire type {wire_type}", _label(names, number))


def _label(names: Mapping[int, str], number: int) -> str:
    return names.get(number) or f"field {number}"


def _skip_group(buf: Buffer, pos: int, end: int, number: int) -> tuple[int, int]:
    """Skip a group's content up to its matching end tag: (content end, position after)."""
    open_groups = [number]
    while True:
        if pos >= end:
            raise ProtobufDecodeError(f"group {number} is not closed before the end")
        tag_start = pos
        key, pos = read_varint(buf, pos, end)
        inner, wire_type = key >> 3, key & 7
        if inner == 0 or key > _U32:
            raise ProtobufDecodeError(f"invalid field number {inner} inside group {number}")
        if wire_type == VARINT:
            _, pos = read_varint(buf, pos, end)
        elif wire_type == LEN:
            length, pos = read_varint(buf, pos, end)
            if length > end - pos:
                raise ProtobufDecodeError(
                    f"length {length} inside group {number} runs past the end"
                )
            pos += length
        elif wire_type in (I64, I32):
            pos += 8 if wire_type == I64 else 4
            if pos > end:
                raise ProtobufDecodeError(f"truncated fixed-size value inside group {number}")
        elif wire_type == SGROUP:
            open_groups.append(inner)
            if len(open_groups) > MAX_GROUP_DEPTH:
                raise ProtobufDecodeError(f"groups nested deeper than {MAX_GROUP_DEPTH}")
        elif wire_type == EGROUP:
            if open_groups.pop() != inner:
                raise ProtobufDecodeError(f"end-group {inner} does not match its start-group")
            if not open_groups:
                return tag_start, pos
        else:
            raise ProtobufDecodeError(f"invalid wire type {wire_type} inside group {number}")


def expect(wire_type: int, wanted: int, name: str) -> None:
    """Raise unless a field arrived with the wire type its schema type uses."""
    if wire_type != wanted:
        raise ProtobufDecodeError(
            f"wire type {_WIRE_TYPE_NAMES[wire_type]} where {_WIRE_TYPE_NAMES[wanted]} is expected",
            name,
        )


def int64(value: int) -> int:
    """A varint read as int64 (two's complement)."""
    return value - (1 << 64) if value >> 63 else value


def int32(value: int) -> int:
    """A varint read as int32: truncated to 32 bits, as proto3 parsers do."""
    value &= _U32
    return value - (1 << 32) if value >> 31 else value


def uint32(value: int) -> int:
    """A varint read as uint32: truncated to 32 bits, as proto3 parsers do."""
    return value & _U32


def packed_int64s(buf: Buffer, wire_type: int, a: int, b: int, name: str) -> list[int]:
    """A repeated int64 field's values: packed (one length-delimited run) or one varint."""
    if wire_type == VARINT:
        return [int64(a)]
    expect(wire_type, LEN, name)
    values = []
    pos = a
    try:
        while pos < b:
            value, pos = read_varint(buf, pos, b)
            values.append(int64(value))
    except ProtobufDecodeError as exc:
        raise exc.within(name) from None
    return values


def float64(buf: Buffer, a: int) -> float:
    """The little-endian double at `buf[a:a+8]`."""
    value: float = _DOUBLE.unpack_from(buf, a)[0]
    return value


def float32(buf: Buffer, a: int) -> float:
    """The little-endian float at `buf[a:a+4]`, as a Python float."""
    value: float = _FLOAT.unpack_from(buf, a)[0]
    return value


# --- writing ---------------------------------------------------------------------------------

_SMALL = [bytes((n,)) for n in range(0x80)]
_TWO_BYTES = struct.Struct("<H").pack
_DOUBLE = struct.Struct("<d")
_FLOAT = struct.Struct("<f")


def varint(value: int) -> bytes:
    """The varint of `value`; negative values are written as 64-bit two's complement."""
    if 0 <= value < 0x80:
        return _SMALL[value]
    if 0 < value < 0x4000:
        return _TWO_BYTES((value & 0x7F) | 0x80 | (value >> 7) << 8)
    if 0 < value < 0x200000:
        return bytes(((value & 0x7F) | 0x80, (value >> 7 & 0x7F) | 0x80, value >> 14))
    value &= _U64
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def tag(number: int, wire_type: int) -> bytes:
    """The key of a field: its number and wire type as a varint."""
    return varint(number << 3 | wire_type)


def pack_double(value: float) -> bytes:
    """A double as 8 little-endian bytes."""
    return _DOUBLE.pack(value)


def pack_float(value: float) -> bytes:
    """A float as 4 little-endian bytes (OverflowError beyond the float32 range)."""
    return _FLOAT.pack(value)
