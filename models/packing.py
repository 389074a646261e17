"""Compact binary encodings of numeric vectors kept in keyed state.

A vector is written as its length (one byte), a 2-bit tag per value (0 = zero, 1 = one,
2 = minus one, 3 = stored) and the stored values as little-endian float16 (``"e"``) or
float32 (``"f"``). Model inputs are mostly zeros and 0/1 flags, so a 36-input row takes
far fewer bytes than the 144 of dense float32, or the 324 of a MessagePack float list
(docs/benchmarks.md). State records hold such bytes as they are (MessagePack binary);
:func:`unb64` reads the base64 text in which earlier releases kept them in JSON state.

>>> import numpy as np
>>> X = np.array([[0.0, 1.0, 2.5, -1.0, 0.0], [3.25, 0.0, 0.0, 0.0, 1.0]])
>>> blobs = pack_rows(X, "e")
>>> [len(b) for b in blobs], unpack_vector(blobs[0], 0, "e")
([5, 5], ([0.0, 1.0, 2.5, -1.0, 0.0], 5))
>>> unb64("#$%&"), unb64("MTIz")  # standard base64 is read too
(b'\\xd7m\\xf8', b'123')
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

_SIZE = {"e": 2, "f": 4}
_FIXED = (0.0, 1.0, -1.0)


def pack_rows(X: Any, dtype: str = "e") -> list[bytes]:
    """Each row of the 2-D array ``X`` as one encoded vector (vectorized over rows)."""
    X = np.asarray(X, dtype=float)
    n, d = X.shape
    if d > 255:
        raise ValueError("at most 255 values per vector")
    tags = np.full((n, d), 3, dtype=np.uint8)  # compared in float64 (float16 math is slow)
    tags[X == 0] = 0
    tags[X == 1] = 1
    tags[X == -1] = 2
    pad = (-d) % 4
    if pad:
        tags = np.hstack((tags, np.zeros((n, pad), dtype=np.uint8)))
    t4 = tags.reshape(n, -1, 4)
    packed = t4[:, :, 0] | (t4[:, :, 1] << 2) | (t4[:, :, 2] << 4) | (t4[:, :, 3] << 6)
    stored = tags[:, :d] == 3
    values = X[stored].astype("<" + dtype).tobytes()  # all rows, row-major
    ends = np.cumsum(stored.sum(axis=1) * _SIZE[dtype]).tolist()
    tag_bytes = packed.tobytes()
    width = packed.shape[1]
    head = bytes((d,))
    out = []
    start = 0
    for i, end in enumerate(ends):
        out.append(head + tag_bytes[i * width : (i + 1) * width] + values[start:end])
        start = end
    return out


def pack_vector(values: Sequence[float], dtype: str = "e") -> bytes:
    """One vector, the same bytes as :func:`pack_rows` gives its row (pure Python: faster
    than numpy for a single short vector)."""
    d = len(values)
    if d > 255:
        raise ValueError("at most 255 values per vector")
    tags = bytearray((d + 3) // 4)
    stored = []
    for i, v in enumerate(values):
        if v == 0:
            continue
        if v == 1:
            t = 1
        elif v == -1:
            t = 2
        else:
            t = 3
            stored.append(v)
        tags[i >> 2] |= t << ((i & 3) * 2)
    return bytes((d,)) + tags + struct.pack(f"<{len(stored)}{dtype}", *stored)


def unpack_vector(data: bytes, offset: int, dtype: str = "e") -> tuple[list[float], int]:
    """The vector encoded at ``data[offset:]`` and the offset just after it."""
    d = data[offset]
    pos = offset + 1
    n_tag_bytes = (d + 3) // 4
    tag_bytes = data[pos : pos + n_tag_bytes]
    pos += n_tag_bytes
    tags = [(tag_bytes[i >> 2] >> ((i & 3) * 2)) & 3 for i in range(d)]
    n_stored = tags.count(3)
    size = _SIZE[dtype]
    stored = struct.unpack_from(f"<{n_stored}{dtype}", data, pos)
    pos += n_stored * size
    out: list[float] = []
    k = 0
    for t in tags:
        if t == 3:
            out.append(float(stored[k]))
            k += 1
        else:
            out.append(_FIXED[t])
    return out, pos


# Earlier releases wrote unpadded base64 with the digits written as punctuation (no digit run
# a PCI scanner could take for a card number); a bytes.translate table turns them back.
_FROM_TEXT = bytes.maketrans(b"!#$%&()*.:", b"0123456789")


def unb64(text: str) -> bytes:
    """The bytes of such a text; also reads standard (padded) base64."""
    raw = text.encode().translate(_FROM_TEXT)
    return base64.b64decode(raw + b"=" * (-len(raw) % 4))
