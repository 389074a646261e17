"""Pending scored transactions of one customer, compactly encoded for keyed state.

The risk stage keeps each scored transaction in the customer's ``risk_customers`` record
until its fraud label arrives (or the TTL ends), so that the supervised model can learn
from the inputs it was scored with and the ``risk_scores`` row can be re-written with its
label. An entry is the text ``"<blob> <event_id>"``, or ``["<blob> <event_id>",
model_version]`` on the last entry of a run of entries with the same version (so the
newest entry always has its version). ``blob`` (never a space) is base64 of (little
endian):

=======  ================================================================
1        format (1) + flags: 16 = no amount, 32 = amount as float64, 64 = wide codes
6        event time, epoch ms
2 (4)    segment, customer type, channel, txn type (:mod:`finpulse.models.codes`), 4 bits each
         (a byte each with the wide-codes flag, needed once a code reaches 16)
varints  score x 1e4, anomaly x 1e4, supervised x 1e4 + 1 (0: none),
         txn_count_1h, txn_count_24h, amount CNY in cents (unless a flag)
(8)      amount CNY as float64 if it is not whole cents
1+n      reason codes (:data:`finpulse.models.codes.RISK_INPUT`)
...      supervised model inputs (:func:`finpulse.models.packing.pack_rows`, float16)
=======  ================================================================

The format before this one (a 9-item list with the strings, base64 float32 inputs) is
read by :func:`upgrade`, so state restored from an older changelog keeps its labels.

>>> from finpulse.models.packing import pack_vector
>>> p = []
>>> blob = encode(1767921444550, pack_vector([1.5, 0.0]), 5.2095, 0.4671, None,
...     ["amount_cny"], ["retail", "individual", "app", "transfer", 19676.94, 1, 26])
>>> append(p, "t-1", blob, "risk-v1+0"); append(p, "t-2", blob, "risk-v1+0")
>>> [type(e).__name__ for e in p], p[0]
(['str', 'list'], 'AcZmVKCbARER/(YDvyQAARrOjHgBAQIDAD& t-1')
>>> e = pop(p, "t-2")
>>> e.ts_ms, e.inputs, e.score, e.supervised, e.reasons, e.version, e.meta[4]
(1767921444550, [1.5, 0.0], 5.2095, None, ['amount_cny'], 'risk-v1+0', 19676.94)
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from finpulse.models import codes
from finpulse.models.packing import b64, get_varint, pack_vector, put_varint, unb64, unpack_vector

FORMAT = 1
_NO_AMOUNT = 16
_FLOAT_AMOUNT = 32
_WIDE_CODES = 64
_HEAD = struct.Struct("<B6s")  # format + flags, ts
_F64 = struct.Struct("<d")
_LEGACY_LEN = 9


class Pending(NamedTuple):
    """One decoded pending entry."""

    eid: str
    ts_ms: int
    inputs: list[float]
    score: float
    anomaly: float
    supervised: float | None
    reasons: list[str]
    version: str
    meta: list[Any]  # segment, customer_type, channel, txn_type, amount_cny, count_1h, count_24h


_SMALL = tuple(bytes((i,)) for i in range(128))
_HEADS: dict[tuple[str, str, str, str], tuple[int, bytes]] = {}  # flag, codes of 4 enums
_REASONS: dict[tuple[str, ...], bytes] = {}  # count + codes of a reason tuple, bounded
_CACHE_MAX = 50_000


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _SMALL[value]
    if value < 0x4000:
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    if value < 0x200000:
        return bytes(((value & 0x7F) | 0x80, ((value >> 7) & 0x7F) | 0x80, value >> 14))
    buf = bytearray()
    put_varint(buf, value)
    return bytes(buf)


def _head(key: tuple[str, str, str, str]) -> tuple[int, bytes]:
    """The codes of the 4 enum fields: 2 bytes of nibbles while all codes are below 16."""
    head = _HEADS.get(key)
    if head is None:
        segment, ctype, channel, txn_type = key
        c = (
            codes.encode(codes.SEGMENT, segment),
            codes.encode(codes.CUSTOMER_TYPE, ctype),
            codes.encode(codes.TXN_CHANNEL, channel),
            codes.encode(codes.TXN_TYPE, txn_type),
        )
        if max(c) < 16:
            head = (0, bytes((c[0] << 4 | c[1], c[2] << 4 | c[3])))
        else:
            head = (_WIDE_CODES, bytes(c))
        _HEADS[key] = head
    return head


def _reasons(reasons: tuple[str, ...]) -> bytes:
    packed = _REASONS.get(reasons)
    if packed is None:
        if len(_REASONS) >= _CACHE_MAX:
            _REASONS.clear()
        packed = _REASONS[reasons] = bytes(
            (len(reasons), *(codes.encode(codes.RISK_INPUT, r) for r in reasons))
        )
    return packed


def encode(
    ts_ms: int,
    inputs: bytes,
    score: float,
    anomaly: float,
    supervised: float | None,
    reasons: list[str] | tuple[str, ...],
    meta: list[Any],
) -> str:
    """The blob of one entry; ``inputs`` encoded by :func:`finpulse.models.packing.pack_rows`."""
    segment, ctype, channel, txn_type, amount, c1h, c24h = meta
    if amount is None:
        flags, tail = _NO_AMOUNT, b""
    else:
        cents = round(amount * 100)
        if cents < 0 or cents / 100 != amount:
            flags, tail = _FLOAT_AMOUNT, _F64.pack(amount)
        else:
            flags, tail = 0, _varint(cents)
    wide, head = _head((segment, ctype, channel, txn_type))
    return b64(
        b"".join(
            (
                _SMALL[FORMAT | flags | wide],
                ts_ms.to_bytes(6, "little"),
                head,
                _varint(round(score * 1e4)),
                _varint(round(anomaly * 1e4)),
                _varint(0 if supervised is None else round(supervised * 1e4) + 1),
                _varint(c1h),
                _varint(c24h),
                tail,
                _reasons(tuple(reasons)),
                inputs,
            )
        )
    )


def _varint_columns(v: Any) -> tuple[Any, Any]:
    """LEB128 bytes of the non-negative ints ``v`` as an (n, k) uint8 matrix and the mask of
    the bytes each value uses."""
    if (v < 0).any():
        raise ValueError("varint must be >= 0")
    k = max(1, -(-int(v.max()).bit_length() // 7))
    shifts = 7 * np.arange(k)
    parts = v[:, None] >> shifts
    mask = parts > 0
    mask[:, 0] = True
    cont = np.zeros_like(mask)
    cont[:, :-1] = mask[:, 1:]
    return ((parts & 0x7F) | (cont * 0x80)).astype(np.uint8), mask


# The vectorized path has a fixed numpy overhead per call, so encode() per entry is cheaper
# for small batches (docs/benchmarks.md, 'Measurements behind design choices').
VECTOR_MIN = 256


def encode_many(
    ts_ms: Sequence[int],
    inputs: Sequence[bytes],
    scores: Sequence[float],
    anomalies: Sequence[float],
    supervised: Sequence[float | None],
    reasons: Sequence[Sequence[str]],
    metas: Sequence[Sequence[Any]],
) -> list[str]:
    """:func:`encode` of many entries (the same blobs), vectorized over the numbers from
    :data:`VECTOR_MIN` entries; smaller batches (the live worker's, a few dozen events at
    1,000 events/s) call :func:`encode` per entry."""
    if len(ts_ms) < VECTOR_MIN:
        fields = (ts_ms, inputs, scores, anomalies, supervised, reasons, metas)
        return [encode(*entry) for entry in zip(*fields, strict=True)]
    n = len(ts_ms)
    if n == 0:
        return []
    heads = [_head((m[0], m[1], m[2], m[3])) for m in metas]
    amounts = np.array([math.nan if m[4] is None else m[4] for m in metas], dtype=float)
    missing = np.isnan(amounts)
    a0 = np.where(missing, 0.0, amounts)
    cents = np.rint(a0 * 100)
    exact = ~missing & (cents >= 0) & (cents / 100 == a0)
    as_float = ~missing & ~exact
    first = np.empty((n, 7), dtype=np.uint8)
    first[:, 0] = (
        np.where(missing, _NO_AMOUNT, np.where(exact, 0, _FLOAT_AMOUNT))
        | FORMAT
        | np.array([h[0] for h in heads])
    )
    first[:, 1:] = np.array(ts_ms, dtype="<u8").view(np.uint8).reshape(n, 8)[:, :6]
    sup = np.array([-1.0 if x is None else x for x in supervised], dtype=float)
    columns = [
        np.rint(np.asarray(scores, dtype=float) * 1e4).astype(np.int64),
        np.rint(np.asarray(anomalies, dtype=float) * 1e4).astype(np.int64),
        np.where(sup < 0, 0, np.rint(sup * 1e4) + 1).astype(np.int64),
        np.array([m[5] for m in metas], dtype=np.int64),
        np.array([m[6] for m in metas], dtype=np.int64),
        np.where(exact, cents, 0).astype(np.int64),
    ]
    blocks, masks = zip(*(_varint_columns(c) for c in columns), strict=True)
    masks[-1][~exact] = False
    body = np.hstack((*blocks, a0.astype("<f8").view(np.uint8).reshape(n, 8)))
    mask = np.hstack((*masks, np.repeat(as_float[:, None], 8, axis=1)))
    data = body[mask].tobytes()
    ends = np.cumsum(mask.sum(axis=1)).tolist()
    head_bytes = first.tobytes()
    out = []
    start = 0
    for i, end in enumerate(ends):
        blob = b"".join(
            (
                head_bytes[7 * i : 7 * i + 7],
                heads[i][1],
                data[start:end],
                _reasons(tuple(reasons[i])),
                inputs[i],
            )
        )
        out.append(b64(blob))
        start = end
    return out


Entry = str | list[str]  # "<blob> <event_id>" | ["<blob> <event_id>", model_version]


def _text(entry: Entry) -> str:
    return entry if isinstance(entry, str) else entry[0]


def entry_eid(entry: Entry) -> str:
    """The event id of an entry."""
    return _text(entry).partition(" ")[2]


def entry_ts(entry: Entry) -> int:
    """Event time (ms) of an entry, without decoding the rest."""
    return int.from_bytes(unb64(_text(entry)[:12])[1:7], "little")


def decode(entry: Entry, version: str) -> Pending:
    """The decoded entry (``version``: its effective model version, see :func:`versions`)."""
    blob, _, eid = _text(entry).partition(" ")
    data = unb64(blob)
    fmt, ts = _HEAD.unpack_from(data)
    if fmt & 15 != FORMAT:
        raise ValueError(f"unknown pending entry format {fmt & 15}")
    pos = _HEAD.size
    if fmt & _WIDE_CODES:
        seg, ctype, channel, txn_type = data[pos : pos + 4]
        pos += 4
    else:
        a, b = data[pos : pos + 2]
        seg, ctype, channel, txn_type = a >> 4, a & 15, b >> 4, b & 15
        pos += 2
    values = []
    for _ in range(5):
        v, pos = get_varint(data, pos)
        values.append(v)
    score, anomaly, sup, c1h, c24h = values
    amount: float | None = None
    if fmt & _FLOAT_AMOUNT:
        (amount,) = _F64.unpack_from(data, pos)
        pos += _F64.size
    elif not fmt & _NO_AMOUNT:
        cents, pos = get_varint(data, pos)
        amount = cents / 100
    n = data[pos]
    reasons = [codes.RISK_INPUT_NAMES[c] for c in data[pos + 1 : pos + 1 + n]]
    inputs, _ = unpack_vector(data, pos + 1 + n, "e")
    meta = [
        codes.SEGMENT_NAMES[seg],
        codes.CUSTOMER_TYPE_NAMES[ctype],
        codes.TXN_CHANNEL_NAMES[channel],
        codes.TXN_TYPE_NAMES[txn_type],
        amount,
        c1h,
        c24h,
    ]
    return Pending(
        eid,
        int.from_bytes(ts, "little"),
        inputs,
        score / 1e4,
        anomaly / 1e4,
        None if sup == 0 else (sup - 1) / 1e4,
        reasons,
        version,
        meta,
    )


def versions(pending: list[Entry]) -> list[str]:
    """The effective model version of every entry."""
    out: list[str] = []
    current = ""
    for e in reversed(pending):
        if not isinstance(e, str):
            current = e[1]
        out.append(current)
    out.reverse()
    return out


def _set_versions(pending: list[Entry], effective: list[str]) -> None:
    following = None
    texts = [_text(e) for e in pending]
    for i in range(len(pending) - 1, -1, -1):
        v = effective[i]
        pending[i] = texts[i] if v == following else [texts[i], v]
        following = v


def append(pending: list[Entry], eid: str, blob: str, version: str) -> None:
    """Add an entry at the end with its version (moved from the previous entry if equal)."""
    if pending:
        last = pending[-1]
        if not isinstance(last, str) and last[1] == version:
            pending[-1] = last[0]
    pending.append([f"{blob} {eid}", version])


def remove(pending: list[Entry], keep: list[bool]) -> None:
    """Keep only the entries whose flag is true, preserving every entry's version."""
    effective = versions(pending)
    pending[:] = [e for e, k in zip(pending, keep, strict=True) if k]
    _set_versions(pending, [v for v, k in zip(effective, keep, strict=True) if k])


def prune(pending: list[Entry], cutoff_ms: int, keep: int) -> int:
    """Drop entries older than ``cutoff_ms`` (if the oldest is), then all but the newest
    ``keep``; returns how many expired by time."""
    expired = 0
    if pending and entry_ts(pending[0]) < cutoff_ms:
        flags = [entry_ts(e) >= cutoff_ms for e in pending]
        expired = flags.count(False)
        remove(pending, flags)
    if len(pending) > keep:
        # The oldest go. That leaves every other entry's version as it was (an entry's version
        # is that of the first version marker at or after it), so no re-marking is needed.
        del pending[: len(pending) - keep]
    return expired


def pop(pending: list[Entry], eid: str) -> Pending | None:
    """Remove and return the entry of ``eid`` (None if not pending)."""
    idx = next(
        (i for i, e in enumerate(pending) if _text(e).endswith(eid) and entry_eid(e) == eid),
        None,
    )
    if idx is None:
        return None
    effective = versions(pending)
    entry = decode(pending[idx], effective[idx])
    remove(pending, [i != idx for i in range(len(pending))])
    return entry


def is_legacy(pending: list[Any]) -> bool:
    """Whether ``pending`` holds entries of the previous format (9-item lists)."""
    return any(isinstance(e, list) and len(e) == _LEGACY_LEN for e in pending)


def upgrade(pending: list[Any]) -> None:
    """Rewrite entries of the previous format (9-item lists) in place.

    >>> import base64, numpy as np
    >>> x = base64.b64encode(np.array([0.5, 0.0], dtype=np.float32).tobytes()).decode()
    >>> p = [["t-1", 1000, x, 9.5, 0.25, 0.1, ["amount_cny"], "risk-v1+0",
    ...       ["retail", "individual", "app", "fx", 12.5, 1, 2]]]
    >>> upgrade(p); pop(p, "t-1").inputs
    [0.5, 0.0]
    """
    if not is_legacy(pending):
        return
    effective = versions([e for e in pending if not _is_legacy_entry(e)])
    out: list[Entry] = []
    new_versions: list[str] = []
    for e in pending:
        if _is_legacy_entry(e):
            eid, ts_ms, packed, score, anomaly, sup, reasons, version, meta = e
            x = np.frombuffer(unb64(packed), dtype=np.float32).astype(float).tolist()
            blob = encode(ts_ms, pack_vector(x), score, anomaly, sup, list(reasons), list(meta))
            out.append(f"{blob} {eid}")
            new_versions.append(version)
        else:
            out.append(e)
            new_versions.append(effective.pop(0))
    pending[:] = out
    _set_versions(pending, new_versions)


def _is_legacy_entry(e: Any) -> bool:
    return isinstance(e, list) and len(e) == _LEGACY_LEN
