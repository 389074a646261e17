"""Complaint tracking: open, close, and age against the decision deadline in event time.

A complaint opens with the first interaction that carries its ``complaint_id`` (or has
``interaction_type`` complaint, whose id is then the interaction's ``event_id``) and closes
with a ``complaint_closed`` feedback whose ``ref_event_id`` is one of the complaint's
interactions. Interactions and feedback are keyed by customer, so both arrive on the same
partition and the whole life of a complaint is partition-local.

Open complaints live in buckets of the partition state keyed ``p{partition}|c{open day}``,
so opening or closing one rewrites one small bucket, and the aging sweep reads only the
buckets that still hold open complaints (listed in the partition's ``cdays``).

Aging uses the partition's watermark (the newest event time seen on it) as the clock. Each
complaint is checked whenever it changes and by a sweep each time the watermark passes the
next sweep time (hourly); a check yields a :class:`ComplaintChange` when the status changes
(``open`` -> ``due_soon`` -> ``overdue``, or ``closed``) and once per whole day open, so the
policy rules (``on: complaint``) see ``days_open`` grow day by day.

>>> from streams.core.state import MemoryState
>>> from streams.stages.service.cache import BatchCache
>>> book = ComplaintBook(BatchCache(MemoryState("p")), deadline_days=15, due_soon_days=3)
>>> info = {"customer_id": "c-1", "customer_type": "individual", "segment": "retail",
...         "channel": "chat"}
>>> [c.status for c in book.open(0, 0, "cmp-1", "i-1", info, None)]
['open']
>>> [(c.status, c.days_open) for c in book.age(0, 13 * DAY_MS, None) if c.changed]
[('due_soon', 13.0)]
>>> [(c.status, c.days_open) for c in book.age(0, 16 * DAY_MS, None) if c.changed]
[('overdue', 16.0)]
>>> [c.status for c in book.close(0, 17 * DAY_MS, "cmp-1", 0, "f-9", None)]
['closed']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streams.core.decode import RawRecord
from streams.stages.service.cache import BatchCache
from streams.stages.service.windows import DAY_MS, HOUR_MS

SWEEP_EVERY_MS = HOUR_MS

OPEN = "open"
DUE_SOON = "due_soon"
OVERDUE = "overdue"
CLOSED = "closed"


@dataclass(frozen=True)
class ComplaintChange:
    """A complaint at a check: its status, age and whether the status changed."""

    complaint_id: str
    status: str
    ts_ms: int
    opened_ms: int
    due_ms: int
    days_open: float
    changed: bool
    info: dict[str, Any]
    source_event_id: str
    partition: int

    def features(self) -> dict[str, Any]:
        """The features the ``on: complaint`` rules compare."""
        return {
            "days_open": round(self.days_open, 3),
            "days_to_deadline": round((self.due_ms - self.ts_ms) / DAY_MS, 3),
            "overdue": self.status == OVERDUE,
            "closed": self.status == CLOSED,
            "status": self.status,
            "channel": self.info.get("channel"),
            "segment": self.info.get("segment"),
            "customer_type": self.info.get("customer_type"),
        }


def status_at(days_open: float, deadline_days: float, due_soon_days: float) -> str:
    """Status of an open complaint ``days_open`` days old.

    >>> [status_at(d, 15, 3) for d in (1, 12, 15)]
    ['open', 'due_soon', 'overdue']
    """
    if days_open >= deadline_days:
        return OVERDUE
    if days_open >= deadline_days - due_soon_days:
        return DUE_SOON
    return OPEN


class ComplaintBook:
    """Open complaints of the partitions a worker holds, in a :class:`BatchCache`."""

    def __init__(self, cache: BatchCache, deadline_days: float, due_soon_days: float) -> None:
        self.cache = cache
        self.deadline_ms = int(deadline_days * DAY_MS)
        self.deadline_days = deadline_days
        self.due_soon_days = due_soon_days

    def _meta(self, partition: int) -> dict[str, Any]:
        return self.cache.get(f"p{partition}", dict)  # type: ignore[no-any-return]

    def _bucket_key(self, partition: int, day: int) -> str:
        return f"p{partition}|c{day}"

    def open(
        self,
        partition: int,
        ms: int,
        complaint_id: str,
        event_id: str,
        info: dict[str, Any],
        record: RawRecord | None,
    ) -> list[ComplaintChange]:
        """Open ``complaint_id`` at event time ``ms``; its open day is ``ms // DAY_MS``."""
        day = ms // DAY_MS
        key = self._bucket_key(partition, day)
        bucket = self.cache.get(key, dict)
        if complaint_id in bucket:
            return []
        entry = {"o": ms, "e": event_id, "s": OPEN, "d": 0, **info}
        bucket[complaint_id] = entry
        self.cache.touch(key, record)
        meta = self._meta(partition)
        days = meta.setdefault("cdays", [])
        if day not in days:
            days.append(day)
            days.sort()
            self.cache.touch(f"p{partition}", record)
        return [self._change(complaint_id, entry, OPEN, ms, True, event_id, partition)]

    def close(
        self,
        partition: int,
        ms: int,
        complaint_id: str,
        open_day: int,
        event_id: str,
        record: RawRecord | None,
        known: dict[str, Any] | None = None,
    ) -> list[ComplaintChange]:
        """Close an open complaint (opened on ``open_day``); unknown ones yield nothing.

        ``known`` (the customer's record of the complaint) closes it even when the
        partition's book lost it: after a crash, state keys are restored independently.
        """
        key = self._bucket_key(partition, open_day)
        bucket = self.cache.peek(key)
        if not bucket or complaint_id not in bucket:
            if known is None:
                return []
            entry = {"o": open_day * DAY_MS, "e": event_id, "s": OPEN, "d": 0, **known}
            return [self._change(complaint_id, entry, CLOSED, ms, True, event_id, partition)]
        bucket = self.cache.get(key, dict)
        entry = bucket.pop(complaint_id)
        if bucket:
            self.cache.touch(key, record)
        else:
            self.cache.delete(key, record)
            meta = self._meta(partition)
            meta["cdays"] = [d for d in meta.get("cdays", []) if d != open_day]
            self.cache.touch(f"p{partition}", record)
        return [self._change(complaint_id, entry, CLOSED, ms, True, event_id, partition)]

    def find(self, partition: int, ref: str) -> tuple[str, int] | None:
        """(complaint_id, open_day) of the open complaint whose id or opening event is ``ref``."""
        for day in list(self._meta(partition).get("cdays", [])):
            bucket = self.cache.peek(self._bucket_key(partition, day)) or {}
            for complaint_id, entry in bucket.items():
                if complaint_id == ref or entry.get("e") == ref:
                    return complaint_id, day
        return None

    def age(
        self, partition: int, watermark_ms: int, record: RawRecord | None, force: bool = False
    ) -> list[ComplaintChange]:
        """Sweep the open complaints of ``partition`` if the sweep is due (or ``force``)."""
        meta = self._meta(partition)
        if not force and watermark_ms < meta.get("sweep", 0):
            return []
        meta["sweep"] = watermark_ms - watermark_ms % SWEEP_EVERY_MS + SWEEP_EVERY_MS
        self.cache.touch(f"p{partition}", record)
        out: list[ComplaintChange] = []
        for day in list(meta.get("cdays", [])):
            key = self._bucket_key(partition, day)
            bucket = self.cache.get(key, dict)
            touched = False
            for cid, entry in bucket.items():
                age_ms = watermark_ms - entry["o"]
                whole_days = int(age_ms // DAY_MS)
                status = status_at(age_ms / DAY_MS, self.deadline_days, self.due_soon_days)
                changed = status != entry["s"]
                if changed or whole_days > entry["d"]:
                    entry["s"] = status
                    entry["d"] = whole_days
                    touched = True
                    out.append(
                        self._change(
                            cid, entry, status, watermark_ms, changed, entry["e"], partition
                        )
                    )
            if touched:
                self.cache.touch(key, record)
        return out

    def _change(
        self,
        complaint_id: str,
        entry: dict[str, Any],
        status: str,
        ms: int,
        changed: bool,
        event_id: str,
        partition: int,
    ) -> ComplaintChange:
        info = {k: entry.get(k) for k in ("customer_id", "customer_type", "segment", "channel")}
        return ComplaintChange(
            complaint_id=complaint_id,
            status=status,
            ts_ms=ms,
            opened_ms=entry["o"],
            due_ms=entry["o"] + self.deadline_ms,
            days_open=(ms - entry["o"]) / DAY_MS,
            changed=changed,
            info=info,
            source_event_id=event_id,
            partition=partition,
        )
