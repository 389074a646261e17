"""Pending scored transactions of one customer, kept in keyed state until their label.

The risk stage keeps each scored transaction in the customer's ``risk_customers`` record
until its fraud label arrives (or the TTL ends), so that the supervised model can learn
from the inputs it was scored with and the ``risk_scores`` row can be re-written with its
label. An entry is a :class:`PendingScore` record (written as an array by the state codec,
:mod:`finpulse.streams.core.state_codec`). To stay small, the enum fields and reason codes
are the stable codes of :mod:`finpulse.models.codes`, scores are kept to 4 decimals,
the model inputs are one packed row (:func:`finpulse.models.packing.pack_rows`, float16),
and the model version is written only on the last entry of a run of entries with the same
version (``""`` on the others), so the newest entry always has its version.

>>> from finpulse.models.packing import pack_vector
>>> p = []
>>> meta = ["retail", "individual", "app", "transfer", 19676.94, 1, 26]
>>> for eid in ("t-1", "t-2"):
...     append(p, scored(eid, 1767921444550, pack_vector([1.5, 0.0]), 5.2095, 0.4671, None,
...         ["amount_cny"], meta, "risk-v1+0"))
>>> [e.model_version for e in p]
['', 'risk-v1+0']
>>> e, version = pop(p, "t-2")
>>> e.ts_ms, e.inputs(), e.score, e.supervised, e.reasons(), version, e.meta()[4]
(1767921444550, [1.5, 0.0], 5.2095, None, ['amount_cny'], 'risk-v1+0', 19676.94)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from finpulse.models import codes
from finpulse.models.packing import unpack_vector

_SCALE = 10_000  # scores kept to 4 decimals


class PendingScore(msgspec.Struct, array_like=True, gc=False):
    """One scored transaction waiting for its label (no reference cycles: not tracked by
    the cyclic garbage collector)."""

    event_id: str
    ts_ms: int  # event time, epoch ms
    segment: int  # codes of models/codes.py
    customer_type: int
    channel: int
    txn_type: int
    amount_cny: float | None
    count_1h: int
    count_24h: int
    score_e4: int  # score x 10^4
    anomaly_e4: int
    supervised_e4: int | None
    reason_codes: bytes  # codes.RISK_INPUT of the reasons
    packed_inputs: bytes  # supervised model inputs, one row of packing.pack_rows (float16)
    model_version: str  # "" = the version of the next entry

    @property
    def score(self) -> float:
        return self.score_e4 / _SCALE

    @property
    def anomaly(self) -> float:
        return self.anomaly_e4 / _SCALE

    @property
    def supervised(self) -> float | None:
        return None if self.supervised_e4 is None else self.supervised_e4 / _SCALE

    def inputs(self) -> list[float]:
        return unpack_vector(self.packed_inputs, 0, "e")[0]

    def reasons(self) -> list[str]:
        return [codes.RISK_INPUT_NAMES[c] for c in self.reason_codes]

    def meta(self) -> list[Any]:
        """segment, customer_type, channel, txn_type, amount_cny, count_1h, count_24h"""
        return [
            codes.SEGMENT_NAMES[self.segment],
            codes.CUSTOMER_TYPE_NAMES[self.customer_type],
            codes.TXN_CHANNEL_NAMES[self.channel],
            codes.TXN_TYPE_NAMES[self.txn_type],
            self.amount_cny,
            self.count_1h,
            self.count_24h,
        ]


def scored(
    event_id: str,
    ts_ms: int,
    packed_inputs: bytes,
    score: float,
    anomaly: float,
    supervised: float | None,
    reasons: Sequence[str],
    meta: Sequence[Any],
    model_version: str,
) -> PendingScore:
    """The entry of one scored transaction (``meta`` as :meth:`PendingScore.meta`)."""
    segment, ctype, channel, txn_type, amount, c1h, c24h = meta
    return PendingScore(
        event_id,
        ts_ms,
        codes.encode(codes.SEGMENT, segment),
        codes.encode(codes.CUSTOMER_TYPE, ctype),
        codes.encode(codes.TXN_CHANNEL, channel),
        codes.encode(codes.TXN_TYPE, txn_type),
        amount,
        c1h,
        c24h,
        round(score * _SCALE),
        round(anomaly * _SCALE),
        None if supervised is None else round(supervised * _SCALE),
        bytes(codes.encode(codes.RISK_INPUT, r) for r in reasons),
        packed_inputs,
        model_version,
    )


def versions(pending: Sequence[PendingScore]) -> list[str]:
    """The effective model version of every entry."""
    out: list[str] = []
    current = ""
    for e in reversed(pending):
        current = e.model_version or current
        out.append(current)
    out.reverse()
    return out


def append(pending: list[PendingScore], entry: PendingScore) -> None:
    """Add ``entry`` (its version set) at the end; the previous entry's equal version goes."""
    if pending and pending[-1].model_version == entry.model_version:
        pending[-1].model_version = ""
    pending.append(entry)


def remove(pending: list[PendingScore], keep: list[bool]) -> None:
    """Keep only the entries whose flag is true, preserving every entry's version."""
    effective = versions(pending)
    kept = [(e, v) for e, v, k in zip(pending, effective, keep, strict=True) if k]
    following = None
    for e, v in reversed(kept):
        e.model_version = "" if v == following else v
        following = v
    pending[:] = [e for e, _ in kept]


def prune(pending: list[PendingScore], cutoff_ms: int, keep: int) -> int:
    """Drop entries older than ``cutoff_ms`` (if the oldest is), then all but the newest
    ``keep``; returns how many expired by time."""
    expired = 0
    if pending and pending[0].ts_ms < cutoff_ms:
        flags = [e.ts_ms >= cutoff_ms for e in pending]
        expired = flags.count(False)
        remove(pending, flags)
    if len(pending) > keep:
        # The oldest go. That leaves every other entry's version as it was (an entry's version
        # is that of the first version marker at or after it), so no re-marking is needed.
        del pending[: len(pending) - keep]
    return expired


def pop(pending: list[PendingScore], event_id: str) -> tuple[PendingScore, str] | None:
    """Remove the entry of ``event_id``; it and its model version (None if not pending)."""
    idx = next((i for i, e in enumerate(pending) if e.event_id == event_id), None)
    if idx is None:
        return None
    entry = pending[idx]
    version = versions(pending)[idx]
    remove(pending, [i != idx for i in range(len(pending))])
    return entry, version
