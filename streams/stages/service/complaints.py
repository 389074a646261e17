"""Complaint tracking: open, close, and age against the decision deadline in event time.

A complaint opens with the first interaction that carries its ``complaint_id`` (or has
``interaction_type`` complaint, whose id is then the interaction's ``event_id``) and closes
with a ``complaint_closed`` feedback whose ``ref_event_id`` is one of the complaint's
interactions. Interactions and feedback are keyed by customer, so both arrive on the same
partition and the whole life of a complaint is partition-local.

Open complaints live in buckets of the partition state keyed ``p{partition}|c{open day}``
(:class:`~finpulse.streams.stages.service.records.ComplaintBucket`), so opening or closing
one rewrites one small bucket, and the aging sweep reads only the buckets that still hold
open complaints (listed in the partition record's ``complaint_days``).

Aging uses the partition's watermark (the newest event time seen on it) as the clock. Each
complaint is checked whenever it changes and by a sweep each time the watermark passes the
next sweep time (hourly); a check yields a :class:`ComplaintChange` when the status changes
(``open`` -> ``due_soon`` -> ``overdue``, or ``closed``) and once per whole day open, so the
policy rules (``on: complaint``) see ``days_open`` grow day by day.

>>> from finpulse.streams.core.state import MemoryState
>>> from finpulse.streams.stages.service.cache import BatchCache
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

The stage drives the book through :class:`Complaints`, which also keeps each customer's own
record of their open complaints (``open_complaints`` in the customer record) and the
``complaint_closed`` feedback that arrived before its complaint (``early_closes``), and turns
changes into rows and
``on: complaint`` candidates.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from finpulse.config.settings import Settings
from finpulse.models.alerts import AlertCandidate
from finpulse.models.events import Feedback, Interaction
from finpulse.sinks.tables import COMPLAINTS_TABLE
from finpulse.streams.core.batch import BatchOutput
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.stages.rules import RuleEngine
from finpulse.streams.stages.service.cache import BatchCache
from finpulse.streams.stages.service.records import (
    BookedComplaint,
    ComplaintBucket,
    EarlyClose,
    OpenComplaint,
    PartitionRecord,
    ServiceCustomer,
)
from finpulse.streams.stages.service.windows import DAY_MS, HOUR_MS, from_ms

log = logging.getLogger(__name__)

SWEEP_EVERY_MS = HOUR_MS
EARLY_CLOSES_KEPT = 8  # complaint_closed events kept per customer until their complaint arrives
REFS_KEPT = 10  # interaction event ids kept per open complaint in the customer record

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

    def _meta(self, partition: int) -> PartitionRecord:
        return self.cache.get(f"p{partition}", PartitionRecord, partition=partition)  # type: ignore[no-any-return]

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
        bucket = self.cache.get(key, ComplaintBucket, partition=partition).complaints
        if complaint_id in bucket:
            return []
        entry = BookedComplaint(ms, event_id, OPEN, 0, **info)
        bucket[complaint_id] = entry
        self.cache.touch(key, record)
        meta = self._meta(partition)
        days = meta.complaint_days
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
        stored = self.cache.peek(key, partition=partition)
        if stored is None or complaint_id not in stored.complaints:
            if known is None:
                return []
            entry = BookedComplaint(open_day * DAY_MS, event_id, OPEN, 0, **known)
            return [self._change(complaint_id, entry, CLOSED, ms, True, event_id, partition)]
        bucket = self.cache.get(key, ComplaintBucket, partition=partition).complaints
        entry = bucket.pop(complaint_id)
        if bucket:
            self.cache.touch(key, record)
        else:
            self.cache.delete(key, record)
            meta = self._meta(partition)
            meta.complaint_days = [d for d in meta.complaint_days if d != open_day]
            self.cache.touch(f"p{partition}", record)
        return [self._change(complaint_id, entry, CLOSED, ms, True, event_id, partition)]

    def find(self, partition: int, ref: str) -> tuple[str, int] | None:
        """(complaint_id, open_day) of the open complaint whose id or opening event is ``ref``."""
        for day in list(self._meta(partition).complaint_days):
            bucket = self.cache.peek(self._bucket_key(partition, day), partition=partition)
            for complaint_id, entry in bucket.complaints.items() if bucket else ():
                if complaint_id == ref or entry.event_id == ref:
                    return complaint_id, day
        return None

    def age(
        self, partition: int, watermark_ms: int, record: RawRecord | None, force: bool = False
    ) -> list[ComplaintChange]:
        """Sweep the open complaints of ``partition`` if the sweep is due (or ``force``)."""
        meta = self._meta(partition)
        if not force and watermark_ms < meta.next_sweep_ms:
            return []
        meta.next_sweep_ms = watermark_ms - watermark_ms % SWEEP_EVERY_MS + SWEEP_EVERY_MS
        self.cache.touch(f"p{partition}", record)
        out: list[ComplaintChange] = []
        for day in list(meta.complaint_days):
            key = self._bucket_key(partition, day)
            bucket = self.cache.get(key, ComplaintBucket, partition=partition).complaints
            touched = False
            for cid, entry in bucket.items():
                age_ms = watermark_ms - entry.opened_ms
                whole_days = int(age_ms // DAY_MS)
                status = status_at(age_ms / DAY_MS, self.deadline_days, self.due_soon_days)
                changed = status != entry.status
                if changed or whole_days > entry.days_reported:
                    entry.status = status
                    entry.days_reported = whole_days
                    touched = True
                    out.append(
                        self._change(
                            cid, entry, status, watermark_ms, changed, entry.event_id, partition
                        )
                    )
            if touched:
                self.cache.touch(key, record)
        return out

    def _change(
        self,
        complaint_id: str,
        entry: BookedComplaint,
        status: str,
        ms: int,
        changed: bool,
        event_id: str,
        partition: int,
    ) -> ComplaintChange:
        return ComplaintChange(
            complaint_id=complaint_id,
            status=status,
            ts_ms=ms,
            opened_ms=entry.opened_ms,
            due_ms=entry.opened_ms + self.deadline_ms,
            days_open=(ms - entry.opened_ms) / DAY_MS,
            changed=changed,
            info=entry.info(),
            source_event_id=event_id,
            partition=partition,
        )


def is_complaint(ev: Interaction) -> bool:
    """Whether an interaction is (part of) a complaint.

    >>> from tests.factories import encode, interaction
    >>> is_complaint(Interaction.model_validate_json(encode(interaction(complaint_id="k-1"))))
    True
    """
    return ev.complaint_id is not None or ev.interaction_type.value == "complaint"


def complaint_row(ch: ComplaintChange) -> tuple[Any, ...]:
    """The ``service_complaints`` row of a change (version key ``{id}|{status}``).

    >>> ch = ComplaintChange("k-1", CLOSED, DAY_MS, 0, 15 * DAY_MS, 1.0, True, {}, "f-1", 2)
    >>> row = complaint_row(ch)
    >>> row[:2], row[3], row[9].isoformat(), row[-3:]
    (('k-1', 'closed'), '', '1970-01-02T00:00:00+00:00', ('f-1', 2, 'k-1|closed'))
    """
    return (
        ch.complaint_id,
        ch.status,
        from_ms(ch.ts_ms),
        ch.info.get("customer_id") or "",
        ch.info.get("customer_type") or "",
        ch.info.get("segment") or "",
        ch.info.get("channel") or "",
        from_ms(ch.opened_ms),
        from_ms(ch.due_ms),
        from_ms(ch.ts_ms) if ch.status == CLOSED else None,
        round(ch.days_open, 4),
        ch.source_event_id,
        ch.partition,
        f"{ch.complaint_id}|{ch.status}",
    )


def keep_early_close(cust: ServiceCustomer, fb: Feedback, ms: int) -> None:
    """Keep a close whose complaint is not known yet (bounded, the newest kept).

    >>> from tests.factories import encode, feedback
    >>> cust = ServiceCustomer()
    >>> keep_early_close(cust, Feedback.model_validate_json(encode(feedback(
    ...     event_id="f-1", kind="complaint_closed", ref_event_id="i-7", value=None))), 5)
    >>> cust.early_closes
    {'i-7': EarlyClose(closed_ms=5, event_id='f-1')}
    """
    early = cust.early_closes
    early[fb.ref_event_id] = EarlyClose(ms, fb.event_id)
    if len(early) > EARLY_CLOSES_KEPT:
        del early[next(iter(early))]


class Complaints:
    """Complaints of a batch: open from interactions, close from feedback, publish changes.

    >>> from collections import Counter
    >>> from finpulse.config.policy import load_policy
    >>> from finpulse.streams.core.state import MemoryState
    >>> from finpulse.streams.stages.rules import RuleEngine
    >>> from tests.factories import encode, interaction
    >>> complaints = Complaints(Settings(), RuleEngine(load_policy()), Counter())
    >>> book = complaints.book(BatchCache(MemoryState("p")))
    >>> ev = interaction(event_id="i-1", complaint_id="k-1")
    >>> ev = Interaction.model_validate_json(encode(ev))
    >>> rec = RawRecord("finpulse.interactions", 0, 0, b"", None, None)
    >>> cust = ServiceCustomer()
    >>> [c.status for c in complaints.on_interaction(book, cust, ev, rec, 0)]
    ['open']
    >>> cust.open_complaints
    {'k-1': OpenComplaint(open_day=0, event_ids=['i-1'])}
    """

    def __init__(self, settings: Settings, engine: RuleEngine, counts: Counter[str]) -> None:
        self.settings = settings
        self.engine = engine
        self.counts = counts  # shared with the stage

    def book(self, partitions: BatchCache) -> ComplaintBook:
        """The complaint book of one batch over the partition records.

        >>> from collections import Counter
        >>> from finpulse.streams.core.state import MemoryState
        >>> s = Settings()
        >>> Complaints(s, None, Counter()).book(BatchCache(MemoryState("p"))).deadline_days == (
        ...     s.complaint_deadline_days)
        True
        """
        s = self.settings
        return ComplaintBook(partitions, s.complaint_deadline_days, s.complaint_due_soon_days)

    def on_interaction(
        self,
        book: ComplaintBook,
        cust: ServiceCustomer,
        ev: Interaction,
        record: RawRecord,
        ms: int,
    ) -> list[ComplaintChange]:
        """Open the complaint of a complaint interaction, or add the interaction to it.

        A close kept for it (it came first) closes it at once. Example: the class doc.
        """
        complaint_id = ev.complaint_id or ev.event_id
        open_complaints = cust.open_complaints
        if complaint_id in open_complaints:
            known = open_complaints[complaint_id]
            known.event_ids = [*known.event_ids, ev.event_id][-REFS_KEPT:]
            return []
        info = {
            "customer_id": ev.customer_id,
            "customer_type": ev.customer_type.value,
            "segment": ev.segment.value,
            "channel": ev.channel.value,
        }
        opened = book.open(record.partition, ms, complaint_id, ev.event_id, info, record)
        if not opened:
            return []
        open_complaints[complaint_id] = OpenComplaint(ms // DAY_MS, [ev.event_id])
        return opened + self._close_early(book, cust, ev, record, ms, complaint_id)

    def _close_early(
        self,
        book: ComplaintBook,
        cust: ServiceCustomer,
        ev: Interaction,
        record: RawRecord,
        ms: int,
        complaint_id: str,
    ) -> list[ComplaintChange]:
        # Topics are consumed independently: the closing feedback may have been processed
        # first (e.g. the complaint re-delivered after a crash).
        early = cust.early_closes
        hit = early.pop(ev.event_id, None) or early.pop(complaint_id, None)
        if hit is None:
            return []
        day = ms // DAY_MS
        closed = book.close(
            record.partition, max(hit.closed_ms, ms), complaint_id, day, hit.event_id, record
        )
        del cust.open_complaints[complaint_id]
        return closed

    def on_close(
        self, book: ComplaintBook, cust: ServiceCustomer, fb: Feedback, record: RawRecord, ms: int
    ) -> list[ComplaintChange]:
        """Close the complaint a ``complaint_closed`` feedback refers to (or keep the close).

        >>> from collections import Counter
        >>> from finpulse.streams.core.state import MemoryState
        >>> from tests.factories import encode, feedback
        >>> complaints = Complaints(Settings(), None, Counter())  # no rules needed
        >>> book = complaints.book(BatchCache(MemoryState("p")))
        >>> fb = Feedback.model_validate_json(encode(feedback(
        ...     kind="complaint_closed", ref_event_id="i-1", value=None)))
        >>> rec = RawRecord("finpulse.feedback", 0, 0, b"", None, None)
        >>> cust = ServiceCustomer(open_complaints={"k-1": OpenComplaint(0, ["i-1"])})
        >>> [c.status for c in complaints.on_close(book, cust, fb, rec, DAY_MS)]
        ['closed']
        >>> cust.open_complaints
        {}
        """
        known = {
            "customer_id": fb.customer_id,
            "customer_type": cust.customer_type,
            "segment": cust.segment,
            "channel": None,
        }
        partition = record.partition
        for complaint_id, open_complaint in list(cust.open_complaints.items()):
            if fb.ref_event_id in open_complaint.event_ids or fb.ref_event_id == complaint_id:
                closed = book.close(
                    partition,
                    ms,
                    complaint_id,
                    open_complaint.open_day,
                    fb.event_id,
                    record,
                    known=known,
                )
                del cust.open_complaints[complaint_id]
                return closed
        found = book.find(partition, fb.ref_event_id)  # the customer lost it
        if found is not None:
            return book.close(partition, ms, found[0], found[1], fb.event_id, record)
        self.counts["service.complaint_close_unmatched"] += 1
        keep_early_close(cust, fb, ms)  # the complaint it closes may arrive later
        return []

    def publish(self, changes: Sequence[ComplaintChange], out: BatchOutput) -> None:
        """Queue a row per status change and evaluate the ``on: complaint`` rules on each.

        >>> from collections import Counter
        >>> from finpulse.config.policy import load_policy
        >>> from finpulse.streams.stages.rules import RuleEngine
        >>> complaints = Complaints(Settings(), RuleEngine(load_policy()), Counter())
        >>> ch = ComplaintChange("k-1", OVERDUE, 16 * DAY_MS, 0, 15 * DAY_MS, 16.0, True,
        ...                      {"customer_id": "c-1"}, "i-1", 0)
        >>> out = BatchOutput()
        >>> complaints.publish([ch], out)
        >>> len(out.rows[COMPLAINTS_TABLE]), [c.rule_id for c in out.candidates]
        (1, ['service.complaint_overdue'])
        """
        rows = []
        for ch in changes:
            if ch.changed:
                rows.append(complaint_row(ch))
            out.candidates.extend(self._evaluate(ch))
        out.add_rows(COMPLAINTS_TABLE, rows)

    def _evaluate(self, ch: ComplaintChange) -> list[AlertCandidate]:
        return self.engine.evaluate(
            "complaint",
            ch.features(),
            subject_id=ch.complaint_id,
            ts=from_ms(ch.ts_ms),
            source_event_id=f"complaint|{ch.complaint_id}|{ch.status}|{int(ch.days_open)}",
            customer_id=ch.info.get("customer_id"),
            segment=ch.info.get("segment"),
            channel=ch.info.get("channel"),
        )
