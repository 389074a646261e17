"""Minute arithmetic, additive service aggregates and the service-level (SLA) check.

Everything here is pure: times are epoch milliseconds of *event* time, state is a plain
record (:class:`~finpulse.streams.stages.service.records.SlaState`), so the same code runs in
Faust tables and in offline replay, and tests drive it with explicit timestamps (a fake
clock).

A minute aggregate is a list of additive counters (:data:`AGG_FIELDS`), so partial
aggregates from several partitions combine exactly by summing.

The SLA check pools the trailing ``window`` closed minutes of one channel and calls the
window *breached* when the service level is below target with confidence: the Wilson upper
bound of the share answered in time (at ``z``) is below the target. With ``z = 0`` it is the
plain point estimate. Pooling and the bound keep a minute with two or three contacts from
raising an alarm on its own, while a real outage (almost every contact late) breaches after
one or two minutes.

>>> minute_of(90_500)
60000
>>> round(wilson_upper(8, 10, 1.645), 3)
0.931
>>> sla_window_breached(contacts=20, answered=4, target=0.8, z=1.645, min_contacts=3)
True
>>> sla_window_breached(contacts=2, answered=0, target=0.8, z=1.645, min_contacts=3)
False
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from finpulse.streams.stages.minute_pool import MINUTE_MS, minute_of
from finpulse.streams.stages.service.records import SlaState

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Additive counters of one (minute, channel, segment) aggregate, in this order.
AGG_FIELDS: tuple[str, ...] = (
    "contacts",
    "answered_in_sl",
    "wait_sum",
    "handle_sum",
    "resolved",
    "fcr_known",
    "fcr",
    "transfers",
    "transferred",
    "complaints",
    "repeat_contacts",
)
_IDX = {name: i for i, name in enumerate(AGG_FIELDS)}


_MS = timedelta(milliseconds=1)


def to_ms(ts: datetime) -> int:
    """Epoch milliseconds of an aware datetime.

    >>> to_ms(datetime(1970, 1, 1, 0, 1, tzinfo=UTC))
    60000
    """
    return (ts - EPOCH) // _MS


def from_ms(ms: int) -> datetime:
    """Aware UTC datetime of epoch milliseconds.

    >>> from_ms(60000).isoformat()
    '1970-01-01T00:01:00+00:00'
    """
    # Exact for whole milliseconds: the float's error (< 0.5 µs up to year 2100) is rounded
    # away to the microsecond; cheaper than EPOCH + timedelta (docs/benchmarks.md).
    return datetime.fromtimestamp(ms / 1000, UTC)


def empty_agg() -> list[float]:
    """A zeroed aggregate."""
    return [0] * len(AGG_FIELDS)


@dataclass(frozen=True)
class Contact:
    """What one interaction contributes to its minute aggregate."""

    wait_s: float
    handle_s: float
    resolved: bool
    fcr: bool | None
    transfers: int
    complaint: bool
    repeat: bool


def add_contact(agg: list[float], c: Contact, threshold_s: float) -> None:
    """Add one contact to ``agg`` in place.

    >>> a = empty_agg()
    >>> add_contact(a, Contact(12.0, 200.0, True, True, 0, False, False), 20.0)
    >>> add_contact(a, Contact(45.0, 100.0, False, None, 2, True, True), 20.0)
    >>> dict(zip(AGG_FIELDS, a))["answered_in_sl"], a[_IDX["transfers"]], a[_IDX["fcr_known"]]
    (1, 2, 1)
    """
    agg[_IDX["contacts"]] += 1
    agg[_IDX["answered_in_sl"]] += 1 if c.wait_s <= threshold_s else 0
    agg[_IDX["wait_sum"]] += c.wait_s
    agg[_IDX["handle_sum"]] += c.handle_s
    agg[_IDX["resolved"]] += 1 if c.resolved else 0
    if c.fcr is not None:
        agg[_IDX["fcr_known"]] += 1
        agg[_IDX["fcr"]] += 1 if c.fcr else 0
    agg[_IDX["transfers"]] += c.transfers
    agg[_IDX["transferred"]] += 1 if c.transfers > 0 else 0
    agg[_IDX["complaints"]] += 1 if c.complaint else 0
    agg[_IDX["repeat_contacts"]] += 1 if c.repeat else 0


def combine(aggs: Iterable[list[float]]) -> list[float]:
    """Sum partial aggregates (what ClickHouse's SUM does over partitions).

    >>> combine([[1, 1] + [0] * 9, [2, 0] + [0] * 9])[:2]
    [3, 1]
    """
    total = empty_agg()
    for a in aggs:
        for i, v in enumerate(a):
            total[i] += v
    return total


def metrics(agg: list[float]) -> dict[str, float | None]:
    """Derived service metrics of an aggregate (None where undefined).

    >>> m = metrics([4, 3, 40.0, 800.0, 3, 4, 2, 1, 1, 0, 1])
    >>> m["service_level"], m["avg_speed_of_answer_s"], m["first_contact_resolution"]
    (0.75, 10.0, 0.5)
    """
    n = agg[_IDX["contacts"]]
    known = agg[_IDX["fcr_known"]]
    return {
        "contacts": n,
        "service_level": agg[_IDX["answered_in_sl"]] / n if n else None,
        "avg_speed_of_answer_s": agg[_IDX["wait_sum"]] / n if n else None,
        "avg_handle_time_s": agg[_IDX["handle_sum"]] / n if n else None,
        "first_contact_resolution": agg[_IDX["fcr"]] / known if known else None,
        "transfers": agg[_IDX["transfers"]],
        "complaints": agg[_IDX["complaints"]],
        "repeat_contacts": agg[_IDX["repeat_contacts"]],
    }


def wilson_upper(answered: float, contacts: float, z: float) -> float:
    """Upper Wilson score bound of the share ``answered / contacts`` at ``z``.

    >>> wilson_upper(0, 3, 1.645) < 0.5, round(wilson_upper(5, 5, 1.645), 6)
    (True, 1.0)
    """
    if contacts <= 0:
        return 1.0
    p = answered / contacts
    z2 = z * z
    denom = 1 + z2 / contacts
    centre = p + z2 / (2 * contacts)
    margin = z * math.sqrt(p * (1 - p) / contacts + z2 / (4 * contacts * contacts))
    return min(1.0, (centre + margin) / denom)


def sla_window_breached(
    *, contacts: float, answered: float, target: float, z: float, min_contacts: int
) -> bool:
    """Whether a pooled window is below ``target`` with confidence (see module doc)."""
    if contacts < min_contacts:
        return False
    return wilson_upper(answered, contacts, z) < target


@dataclass(frozen=True)
class SlaCheck:
    """One closed minute of one channel, as judged by :func:`advance_sla`."""

    channel: str
    minute_ms: int
    contacts: int
    answered: int
    service_level: float
    upper_bound: float
    breached: bool
    consecutive: int


def record_sla_contact(sla: SlaState, channel: str, minute_ms: int, in_sl: bool) -> None:
    """Count one contact into the channel's minute ring of ``sla`` (in place)."""
    ring = sla.minutes.setdefault(channel, {})
    cell = ring.setdefault(minute_ms, [0, 0])
    cell[0] += 1
    cell[1] += 1 if in_sl else 0


def advance_sla(
    sla: SlaState,
    watermark_ms: int,
    *,
    window_minutes: int,
    target: float,
    z: float,
    min_contacts: int,
    grace_ms: int,
) -> list[SlaCheck]:
    """Close every minute whose end + grace the watermark has passed; judge each channel.

    ``sla`` is the SLA state of one partition (the last closed minute, the per-channel minute
    rings and the per-channel runs of consecutive breached minutes). Returns one
    :class:`SlaCheck` per (closed minute, channel with contacts in its window), in time order.
    A closed minute whose window lacks evidence is not breached and resets the
    run. A jump of the watermark over a long idle gap judges only the minutes that can still
    hold contacts.

    >>> st = SlaState()
    >>> for s in range(0, 120, 10):  # two minutes, every contact waits 60 s
    ...     record_sla_contact(st, "chat", minute_of(s * 1000), False)
    >>> checks = advance_sla(st, 140_000, window_minutes=5, target=0.8, z=1.645,
    ...                      min_contacts=3, grace_ms=20_000)
    >>> [(c.minute_ms, c.breached, c.consecutive) for c in checks]
    [(0, True, 1), (60000, True, 2)]
    """
    win = sla.minutes
    run = sla.breached_run
    closable = minute_of(watermark_ms - grace_ms - MINUTE_MS)  # newest minute that has ended
    last = sla.closed_minute_ms
    if last is not None and closable <= last:
        return []  # nothing new closed (the common case within a minute)
    starts = sorted({m for ring in win.values() for m in ring})
    if last is None:
        if not starts:
            return []
        last = starts[0] - MINUTE_MS
    if closable <= last:
        return []
    span = window_minutes * MINUTE_MS
    # Only minutes whose window holds a data minute can have evidence; between them every
    # run is reset (a minute without contacts in its window is not breached).
    minutes = sorted(
        {m for k in starts for m in range(k, k + span, MINUTE_MS) if last < m <= closable}
    )
    checks: list[SlaCheck] = []
    previous = last
    for m in minutes:
        if m != previous + MINUTE_MS:
            for ch in run:
                run[ch] = 0
        previous = m
        lo = m - span + MINUTE_MS
        for ch in sorted(win):
            n = a = 0
            for key, (cn, ca) in win[ch].items():
                if lo <= key <= m:
                    n += cn
                    a += ca
            if n == 0:
                run[ch] = 0
                continue
            upper = wilson_upper(a, n, z)
            breached = n >= min_contacts and upper < target
            run[ch] = run.get(ch, 0) + 1 if breached else 0
            checks.append(SlaCheck(ch, m, n, a, a / n, upper, breached, run[ch]))
    if previous != closable:  # the minutes after the data have no evidence
        for ch in run:
            run[ch] = 0
    sla.closed_minute_ms = closable
    keep_from = closable - span + MINUTE_MS
    for ch in list(win):
        ring = {k: v for k, v in win[ch].items() if k >= keep_from}
        if ring:
            win[ch] = ring
        else:
            del win[ch]
            run.pop(ch, None)
    return checks


def close_minutes(
    sla: SlaState, watermark_ms: int, grace_ms: int
) -> tuple[int, dict[str, dict[int, list[int]]]] | None:
    """Close every minute of one partition whose end + grace the watermark has passed.

    Returns the newest closed minute and, per channel, the closed minutes' cells
    ``{minute: [contacts, answered]}`` (taken out of ``sla.minutes``: a closed minute takes no
    more contacts), or ``None`` when no new minute closed. The partition does not judge
    them: its channel owner pools every partition's cells (:mod:`.pooling`).

    >>> st = SlaState()
    >>> record_sla_contact(st, "chat", 0, False)
    >>> record_sla_contact(st, "chat", 60_000, True)
    >>> close_minutes(st, 100_000, 20_000)
    (0, {'chat': {0: [1, 0]}})
    >>> close_minutes(st, 110_000, 20_000) is None, st.minutes
    (True, {'chat': {60000: [1, 1]}})
    """
    closable = minute_of(watermark_ms - grace_ms - MINUTE_MS)  # newest minute that has ended
    last = sla.closed_minute_ms
    if last is not None and closable <= last:
        return None  # the common case within a minute
    closed = take_through(sla.minutes, closable)
    sla.closed_minute_ms = closable
    return closable, closed


def take_through(
    rings: dict[str, dict[int, list[int]]], through: int
) -> dict[str, dict[int, list[int]]]:
    """Take the minutes up to ``through`` out of per-channel minute rings (in place).

    >>> rings = {"chat": {0: [1, 0], 60_000: [2, 2]}, "app": {0: [3, 1]}}
    >>> take_through(rings, 0), rings
    ({'chat': {0: [1, 0]}, 'app': {0: [3, 1]}}, {'chat': {60000: [2, 2]}})
    """
    taken: dict[str, dict[int, list[int]]] = {}
    for channel in list(rings):
        ring = rings[channel]
        done = {m: cell for m, cell in ring.items() if m <= through}
        if done:
            taken[channel] = done
            rest = {m: cell for m, cell in ring.items() if m > through}
            if rest:
                rings[channel] = rest
            else:
                del rings[channel]
    return taken
