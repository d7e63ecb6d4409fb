"""A bound on the *shape* of untrusted MessagePack, checked before any decoder runs.

Why: msgspec recurses in C while it decodes or *skips* a value (an unknown
trailing element, a map key before the tag), guarded only by Python's recursion
limit.  A few kilobytes of ``0x91`` (an array holding an array holding ...)
raise ``RecursionError`` from inside the decoder, and how deep is "too deep"
depends on how deep the caller's own stack already is.  No message of ours
nests more than a handful of levels, so every decoder of untrusted bytes first
runs :func:`check_shape`: an iterative walk (no recursion, so no stack to
exhaust) that refuses more than ``max_depth`` levels of nesting or more than
``max_items`` values in all, and refuses truncated or trailing bytes.  Strings,
binaries and extensions are skipped by their length in O(1), so the walk costs
one step per value, and ``max_items`` bounds that too.

This is a guard, not a parser: it accepts every well-formed MessagePack value
within the bounds (types are the real decoder's business).
"""

from __future__ import annotations


class ShapeError(ValueError):
    """The bytes are not one MessagePack value within the bounds; the message says where."""


# Extra bytes after the type byte for fixed-size scalars; -1 marks the other kinds.
_FIXED = [-1] * 256
for _b in range(0x00, 0x80):
    _FIXED[_b] = 0  # positive fixint
for _b in range(0xE0, 0x100):
    _FIXED[_b] = 0  # negative fixint
for _b, _n in {0xC0: 0, 0xC2: 0, 0xC3: 0, 0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8,
               0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8, 0xD4: 2, 0xD5: 3, 0xD6: 5, 0xD7: 9, 0xD8: 17}.items():
    _FIXED[_b] = _n  # nil, bools, floats, ints, fixext (type byte + data)

# Length-prefixed bodies: type byte -> (bytes of length, extra bytes before the body).
_SIZED = {0xC4: (1, 0), 0xC5: (2, 0), 0xC6: (4, 0),  # bin
          0xD9: (1, 0), 0xDA: (2, 0), 0xDB: (4, 0),  # str
          0xC7: (1, 1), 0xC8: (2, 1), 0xC9: (4, 1)}  # ext (one type byte)
# Containers with an explicit count: type byte -> (bytes of count, values per count).
_COUNTED = {0xDC: (2, 1), 0xDD: (4, 1), 0xDE: (2, 2), 0xDF: (4, 2)}


def check_shape(data: bytes | bytearray | memoryview, *, max_depth: int, max_items: int) -> None:
    """Raise :class:`ShapeError` unless ``data`` is exactly one value within the bounds.

    ``max_depth`` counts containers: a scalar has depth 0, ``[1]`` depth 1.
    ``max_items`` counts every value, containers included.
    """
    raw = bytes(data) if not isinstance(data, bytes) else data
    size = len(raw)
    pos = 0
    items = 0
    pending = [1]  # values still to read at each open level; the bottom is the top-level value
    while pending:
        if pending[-1] == 0:
            pending.pop()
            continue
        pending[-1] -= 1
        if pos >= size:
            raise ShapeError(f"truncated at byte {pos}")
        items += 1
        if items > max_items:
            raise ShapeError(f"more than {max_items} values")
        b = raw[pos]
        pos += 1
        fixed = _FIXED[b]
        if fixed >= 0:
            pos += fixed
            continue
        children = -1
        if 0x90 <= b <= 0x9F:
            children = b & 0x0F
        elif 0x80 <= b <= 0x8F:
            children = 2 * (b & 0x0F)
        elif 0xA0 <= b <= 0xBF:
            pos += b & 0x1F
            continue
        elif b in _SIZED:
            width, extra = _SIZED[b]
            if pos + width > size:
                raise ShapeError(f"truncated length at byte {pos}")
            pos += width + extra + int.from_bytes(raw[pos:pos + width], "big")
            continue
        elif b in _COUNTED:
            width, per = _COUNTED[b]
            if pos + width > size:
                raise ShapeError(f"truncated count at byte {pos}")
            children = per * int.from_bytes(raw[pos:pos + width], "big")
            pos += width
        else:  # 0xC1 is the one byte MessagePack never uses
            raise ShapeError(f"byte {pos - 1}: 0x{b:02x} is not a MessagePack type")
        if len(pending) > max_depth:  # this container would open level len(pending)
            raise ShapeError(f"nested deeper than {max_depth} levels")
        if children:
            if children > size - pos:  # every value takes at least one byte
                raise ShapeError(f"byte {pos}: a container of {children} values in {size - pos} bytes")
            pending.append(children)
    if pos != size:
        raise ShapeError(f"{size - pos} bytes after the value" if pos < size else f"truncated at byte {size}")
