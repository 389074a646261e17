"""Reads the pending entries of the previous release's risk records (JSON state) into
:class:`~finpulse.streams.stages.risk_pending.PendingScore` records, so an upgrade keeps
the label joins of transactions scored before it.

An entry was the text ``"<blob> <event_id>"``, or ``["<blob> <event_id>", model_version]``
on the last entry of a run of one version; ``blob`` was base64 (digits written as
punctuation, :func:`finpulse.models.packing.unb64`) of: format and flags (1 byte: format
1; 16 no amount, 32 amount as float64, 64 wide codes), event time in ms (6 bytes), the four
enum codes (2 bytes of nibbles, or 4 bytes), LEB128 varints (score x 1e4, anomaly x 1e4,
supervised x 1e4 + 1 or 0, count 1 h, count 24 h, amount in cents unless flagged), the
amount as float64 if flagged, the reason codes (count + codes) and the packed inputs.
Read only: nothing writes this format any more.

>>> (e,) = pending_entries([["AcZmVKCbARER/(YDvyQAARrOjHgBAQIDAD& t-1", "risk-v1+0"]])
>>> e.event_id, e.ts_ms, e.score, e.supervised, e.reasons(), e.inputs(), e.model_version
('t-1', 1767921444550, 5.2095, None, ['amount_cny'], [1.5, 0.0], 'risk-v1+0')
"""

from __future__ import annotations

import logging
import struct
from typing import Any

from finpulse.models.packing import unb64
from finpulse.streams.stages.risk_pending import PendingScore

log = logging.getLogger(__name__)

_NO_AMOUNT, _FLOAT_AMOUNT, _WIDE_CODES = 16, 32, 64


def pending_entries(old: list[Any]) -> list[PendingScore]:
    """The entries of an old pending list that can be read (others are logged and dropped)."""
    out = []
    for item in old:
        text, version = (item, "") if isinstance(item, str) else (item[0], item[1])
        try:
            out.append(_entry(text, version if isinstance(version, str) else ""))
        except (ValueError, IndexError, TypeError, struct.error):
            log.info("an unreadable pending entry of an earlier release was dropped")
    if out and not out[-1].model_version:
        out[-1].model_version = "unknown"  # the newest always has its version
    return out


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def _entry(text: str, version: str) -> PendingScore:
    blob, _, eid = text.partition(" ")
    data = unb64(blob)
    flags = data[0]
    if flags & 15 != 1:
        raise ValueError(f"unknown pending entry format {flags & 15}")
    ts_ms = int.from_bytes(data[1:7], "little")
    pos = 7
    if flags & _WIDE_CODES:
        segment, ctype, channel, txn_type = data[pos : pos + 4]
        pos += 4
    else:
        a, b = data[pos : pos + 2]
        segment, ctype, channel, txn_type = a >> 4, a & 15, b >> 4, b & 15
        pos += 2
    values = []
    for _ in range(5):
        v, pos = _varint(data, pos)
        values.append(v)
    score, anomaly, supervised, c1h, c24h = values
    amount: float | None = None
    if flags & _FLOAT_AMOUNT:
        (amount,) = struct.unpack_from("<d", data, pos)
        pos += 8
    elif not flags & _NO_AMOUNT:
        cents, pos = _varint(data, pos)
        amount = cents / 100
    n = data[pos]
    reasons = bytes(data[pos + 1 : pos + 1 + n])
    return PendingScore(
        eid, ts_ms, segment, ctype, channel, txn_type, amount, c1h, c24h, score, anomaly,
        None if supervised == 0 else supervised - 1, reasons, bytes(data[pos + 1 + n :]), version,
    )  # fmt: skip
