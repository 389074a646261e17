"""Pending scored transactions of one customer, compactly encoded for keyed state.

The risk stage keeps each scored transaction in the customer's ``risk_customers`` record
until its fraud label arrives (or the TTL ends), so that the supervised model can learn
from the inputs it was scored with and the ``risk_scores`` row can be re-written with its
label. An entry is ``[event_id, blob]`` or ``[event_id, blob, model_version]``: the
version is written only where it differs from the previous entry's. ``blob`` is base64
of (little endian):

=======  ================================================================
1        format (1) + flags: 16 = no amount, 32 = amount as float64
6        event time, epoch ms
4        segment, customer type, channel, txn type (:mod:`models.codes`)
varints  score x 1e4, anomaly x 1e4, supervised x 1e4 + 1 (0: none),
         txn_count_1h, txn_count_24h, amount CNY in cents (unless a flag)
(8)      amount CNY as float64 if it is not whole cents
1+n      reason codes (:data:`models.codes.RISK_INPUT`)
...      supervised model inputs (:func:`models.packing.pack_rows`, float16)
=======  ================================================================

The format before this one (a 9-item list with the strings, base64 float32 inputs) is
read by :func:`upgrade`, so state restored from an older changelog keeps its labels.

>>> from models.packing import pack_vector
>>> p = []
>>> blob = encode(1767921444550, pack_vector([1.5, 0.0]), 5.2095, 0.4671, None,
...     ["amount_cny"], ["retail", "individual", "app", "transfer", 19676.94, 1, 26])
>>> append(p, "t-1", blob, "risk-v1+0"); append(p, "t-2", blob, "risk-v1+0"); len(p[1])
2
>>> e = pop(p, "t-2")
>>> e.ts_ms, e.inputs, e.score, e.supervised, e.reasons, e.version, e.meta[4]
(1767921444550, [1.5, 0.0], 5.2095, None, ['amount_cny'], 'risk-v1+0', 19676.94)
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

import numpy as np

from models import codes
from models.packing import b64, get_varint, pack_vector, put_varint, unb64, unpack_vector

FORMAT = 1
_NO_AMOUNT = 16
_FLOAT_AMOUNT = 32
_HEAD = struct.Struct("<B6s4B")
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


def _q(value: float) -> int:
    return round(value * 1e4)


def encode(
    ts_ms: int,
    inputs: bytes,
    score: float,
    anomaly: float,
    supervised: float | None,
    reasons: list[str],
    meta: list[Any],
) -> str:
    """The blob of one entry; ``inputs`` encoded by :func:`models.packing.pack_rows`."""
    segment, ctype, channel, txn_type, amount, c1h, c24h = meta
    cents = None if amount is None else round(amount * 100)
    if cents is None:
        flags = _NO_AMOUNT
    elif cents < 0 or cents / 100 != amount:
        flags = _FLOAT_AMOUNT
    else:
        flags = 0
    buf = bytearray(
        _HEAD.pack(
            FORMAT | flags,
            ts_ms.to_bytes(6, "little"),
            codes.encode(codes.SEGMENT, segment),
            codes.encode(codes.CUSTOMER_TYPE, ctype),
            codes.encode(codes.TXN_CHANNEL, channel),
            codes.encode(codes.TXN_TYPE, txn_type),
        )
    )
    put_varint(buf, _q(score))
    put_varint(buf, _q(anomaly))
    put_varint(buf, 0 if supervised is None else _q(supervised) + 1)
    put_varint(buf, c1h)
    put_varint(buf, c24h)
    if flags == 0 and cents is not None:
        put_varint(buf, cents)
    elif flags == _FLOAT_AMOUNT:
        buf.extend(_F64.pack(amount))
    buf.append(len(reasons))
    buf.extend(codes.encode(codes.RISK_INPUT, r) for r in reasons)
    buf.extend(inputs)
    return b64(bytes(buf))


def entry_ts(entry: list[Any]) -> int:
    """Event time (ms) of an entry, without decoding the rest."""
    return int.from_bytes(unb64(entry[1][:12])[1:7], "little")


def decode(entry: list[Any], version: str) -> Pending:
    """The decoded entry (``version``: its effective model version, see :func:`versions`)."""
    data = unb64(entry[1])
    fmt, ts, seg, ctype, channel, txn_type = _HEAD.unpack_from(data)
    if fmt & 15 != FORMAT:
        raise ValueError(f"unknown pending entry format {fmt & 15}")
    pos = _HEAD.size
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
        entry[0],
        int.from_bytes(ts, "little"),
        inputs,
        score / 1e4,
        anomaly / 1e4,
        None if sup == 0 else (sup - 1) / 1e4,
        reasons,
        version,
        meta,
    )


def versions(pending: list[list[Any]]) -> list[str]:
    """The effective model version of every entry."""
    out: list[str] = []
    current = ""
    for e in pending:
        if len(e) > 2:
            current = e[2]
        out.append(current)
    return out


def _set_versions(pending: list[list[Any]], effective: list[str]) -> None:
    previous = None
    for e, v in zip(pending, effective, strict=True):
        del e[2:]
        if v != previous:
            e.append(v)
        previous = v


def append(pending: list[list[Any]], eid: str, blob: str, version: str) -> None:
    """Add an entry at the end (the version only if it differs from the previous one)."""
    last = next((e[2] for e in reversed(pending) if len(e) > 2), None)
    pending.append([eid, blob] if last == version else [eid, blob, version])


def remove(pending: list[list[Any]], keep: list[bool]) -> None:
    """Keep only the entries whose flag is true, preserving every entry's version."""
    effective = versions(pending)
    pending[:] = [e for e, k in zip(pending, keep, strict=True) if k]
    _set_versions(pending, [v for v, k in zip(effective, keep, strict=True) if k])


def prune(pending: list[list[Any]], cutoff_ms: int, keep: int) -> int:
    """Drop entries older than ``cutoff_ms`` (if the oldest is), then all but the newest
    ``keep``; returns how many expired by time."""
    expired = 0
    if pending and entry_ts(pending[0]) < cutoff_ms:
        flags = [entry_ts(e) >= cutoff_ms for e in pending]
        expired = flags.count(False)
        remove(pending, flags)
    if len(pending) > keep:
        remove(pending, [i >= len(pending) - keep for i in range(len(pending))])
    return expired


def pop(pending: list[list[Any]], eid: str) -> Pending | None:
    """Remove and return the entry of ``eid`` (None if not pending)."""
    idx = next((i for i, e in enumerate(pending) if e[0] == eid), None)
    if idx is None:
        return None
    effective = versions(pending)
    entry = decode(pending[idx], effective[idx])
    remove(pending, [i != idx for i in range(len(pending))])
    return entry


def upgrade(pending: list[list[Any]]) -> None:
    """Rewrite entries of the previous format (9-item lists) in place.

    >>> import base64, numpy as np
    >>> x = base64.b64encode(np.array([0.5, 0.0], dtype=np.float32).tobytes()).decode()
    >>> p = [["t-1", 1000, x, 9.5, 0.25, 0.1, ["amount_cny"], "risk-v1+0",
    ...       ["retail", "individual", "app", "fx", 12.5, 1, 2]]]
    >>> upgrade(p); pop(p, "t-1").inputs
    [0.5, 0.0]
    """
    if not any(len(e) == _LEGACY_LEN for e in pending):
        return
    effective = versions(pending)
    out: list[list[Any]] = []
    new_versions: list[str] = []
    for e, v in zip(pending, effective, strict=True):
        if len(e) == _LEGACY_LEN:
            eid, ts_ms, packed, score, anomaly, sup, reasons, version, meta = e
            raw = unb64(packed)
            x = np.frombuffer(raw, dtype=np.float32).astype(float)
            blob = encode(ts_ms, pack_vector(x), score, anomaly, sup, list(reasons), list(meta))
            out.append([eid, blob])
            new_versions.append(version)
        else:
            out.append(list(e[:2]))
            new_versions.append(v)
    pending[:] = out
    _set_versions(pending, new_versions)
