"""Input drift of a shared model, judged once on the transactions of every partition.

The risk model's input detectors (Page-Hinkley on the log amount, ``drift.amount_cny``, and
on the log hourly velocity, ``drift.txn_count_1h``) watch what is scored, which no stream
shares: each partition scores its own customers. So, like the CSAT drop:

* **each partition** (the risk stage) sums its scored transactions' inputs per minute of
  event time (:class:`InputMinutes`, table ``risk_partitions``, key ``p{partition}``),
  closes a minute when its event time passes the minute's end plus a grace, and sends the
  closed minutes' sums and the newest minute it has closed to ``finpulse.model_inputs``,
  keyed by the model (:func:`close_inputs`). A re-run after a crash sends the same bytes;
* **the model's owner** (the worker owning that key's partition,
  :mod:`~finpulse.streams.stages.model_health`) sets them per (source partition, minute)
  (:mod:`~finpulse.streams.stages.minute_pool`: a re-sent message changes nothing) and, once
  a minute is complete (every partition closed it, or the bounded wait passed), feeds its
  pooled mean to each detector once per transaction, minutes in time order
  (:func:`detect_inputs`). Its detectors' state is in its keyed record, so a restarted owner
  resumes them. Within a minute the order of transactions from different partitions is not
  defined; the mean is.

>>> part = InputMinutes()
>>> for k in range(3):
...     record_input(part, 1_767_607_200_000 + k * 50_000, 9.0 + k, 0.5)
>>> msg = close_inputs(part, "risk", 1, grace_ms=20_000, partitions=2)
>>> msg.topic, msg.key, sorted(part.open)  # minute 0 closed, minute 1 still open
('finpulse.model_inputs', b'risk', [1767607260000])
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from finpulse.models.events import ModelInputMinutes
from finpulse.models.page_hinkley import PageHinkleyState, feed_repeated, restore, state_of
from finpulse.streams.core.batch import Outgoing
from finpulse.streams.core.partitioning import key_partition
from finpulse.streams.core.topics import MODEL_INPUTS
from finpulse.streams.stages.minute_pool import (
    MINUTE_MS,
    judged_through,
    minute_of,
    set_cells,
    sum_sources,
)

STATE_NAME = "risk_partitions"
DETECTORS = ("amount_cny", "txn_count_1h")  # rule drift.<name>; a cell's sums, in order
MIN_INSTANCES = 500  # transactions before a detector may fire
THRESHOLD = 200.0  # Page-Hinkley threshold on the cumulative deviation
# Sums are sent rounded: a float's long run of fraction digits can read as a Luhn-valid card
# number to the input guard's PCI DSS masking (finpulse.models.masking), breaking the JSON
SUM_DECIMALS = 4


class InputMinutes(msgspec.Struct, array_like=True):
    """A partition's open minutes of scored inputs (key ``p{partition}``)."""

    watermark_ms: int | None = None  # newest event time scored on the partition
    closed_minute_ms: int | None = None  # the last minute sent to the owner
    open: dict[int, list[float]] = msgspec.field(default_factory=dict)
    # ^ minute start ms -> [transactions, sum of log amounts, sum of log velocities]


def record_input(part: InputMinutes, ts_ms: int, amount: float, velocity: float) -> None:
    """Count one scored transaction into its minute (the first open one when its own minute
    is closed, so none is lost)."""
    minute = minute_of(ts_ms)
    closed = part.closed_minute_ms
    if closed is not None and minute <= closed:
        minute = closed + MINUTE_MS
    cell = part.open.get(minute)
    if cell is None:
        cell = part.open[minute] = [0.0, 0.0, 0.0]
    cell[0] += 1
    cell[1] += amount
    cell[2] += velocity
    if part.watermark_ms is None or ts_ms > part.watermark_ms:
        part.watermark_ms = ts_ms


MINUTES_PER_MESSAGE = 1440  # a day of minutes: the most one message holds (ModelInputMinutes)


def close_inputs(
    part: InputMinutes, model: str, source: int, *, grace_ms: int, partitions: int
) -> Outgoing | None:
    """The message of the minutes the partition's watermark closed (their end plus the grace
    passed; at most ``MINUTES_PER_MESSAGE`` from the first open one, the rest left for the
    next call), taken out of ``part``; ``None`` when none closed. Sent with or without
    transactions: the owner learns how far the partition has closed."""
    if part.watermark_ms is None:
        return None
    closable = minute_of(part.watermark_ms - grace_ms - MINUTE_MS)
    if part.closed_minute_ms is not None and closable <= part.closed_minute_ms:
        return None  # the common case within a minute
    if part.open:  # at most a message's worth; the rest closes with the next batch
        closable = min(closable, min(part.open) + (MINUTES_PER_MESSAGE - 1) * MINUTE_MS)
    done = {m: c for m, c in part.open.items() if m <= closable}
    part.open = {m: c for m, c in part.open.items() if m > closable}
    part.closed_minute_ms = closable
    value = ModelInputMinutes.model_validate(
        {
            "event_id": f"{model}|p{source}|{_iso(closable)}",
            "ts": _ts(closable + MINUTE_MS + grace_ms),
            "model": model,
            "source_partition": source,
            "closed_minute": _ts(closable),
            "minutes": [
                {
                    "minute": _ts(m),
                    "transactions": int(n),
                    "amount_sum": round(a, SUM_DECIMALS),
                    "velocity_sum": round(v, SUM_DECIMALS),
                }
                for m, (n, a, v) in sorted(done.items())
            ],
        },
        strict=False,
    )
    key = model.encode()
    return Outgoing(
        MODEL_INPUTS, key, value.model_dump_json().encode(), key_partition(key, partitions)
    )


class InputPool(msgspec.Struct, array_like=True):
    """A model owner's pooled input minutes and input-drift detectors."""

    sources: dict[int, int] = msgspec.field(default_factory=dict)
    # ^ source partition -> newest minute it has closed
    cells: dict[int, dict[int, list[float]]] = msgspec.field(default_factory=dict)
    # ^ minute -> source partition -> [transactions, amount sum, velocity sum], until fed
    fed_through_ms: int | None = None  # the newest minute fed to the detectors
    detectors: dict[str, PageHinkleyState] = msgspec.field(default_factory=dict)


def pool_inputs(pool: InputPool, event: ModelInputMinutes) -> int:
    """Set one source's closed minutes; returns how many came after their minute was fed
    (dropped: feeding them now would count a re-sent one twice)."""
    fed = pool.fed_through_ms
    cells = {
        _ms(m.minute): [float(m.transactions), m.amount_sum, m.velocity_sum] for m in event.minutes
    }
    return set_cells(
        pool.cells,
        pool.sources,
        source=event.source_partition,
        closed=_ms(event.closed_minute),
        cells=cells,
        judged=fed,
        floor=None if fed is None else fed + MINUTE_MS,
    )


class InputDrift(msgspec.Struct, frozen=True):
    """A drift of one input detected in one pooled minute."""

    detector: str
    minute_ms: int
    mean: float  # the minute's pooled mean of the input
    transactions: int


def detect_inputs(pool: InputPool, *, partitions: int, wait_ms: int) -> list[InputDrift]:
    """Feed the pooled minutes that became complete to the detectors, in time order; the
    drifts detected.

    >>> t0, parts, pool = 1_767_607_200_000, [InputMinutes(), InputMinutes()], InputPool()
    >>> for m in range(31):  # 20 transactions a minute on each partition; amounts jump
    ...     for source, part in enumerate(parts):
    ...         for k in range(20):
    ...             record_input(part, t0 + m * MINUTE_MS + k * 1000, 8.0 + 3 * (m >= 15), 0.5)
    ...         sent = close_inputs(part, "risk", source, grace_ms=0, partitions=1)
    ...         if sent is not None:
    ...             _ = pool_inputs(pool, ModelInputMinutes.model_validate_json(sent.value))
    >>> [(d.detector, (d.minute_ms - t0) // MINUTE_MS, d.mean) for d in
    ...  detect_inputs(pool, partitions=2, wait_ms=60_000)]
    [('amount_cny', 16, 11.0)]
    >>> pool.cells, (pool.fed_through_ms - t0) // MINUTE_MS  # minute 30 is still open
    ({}, 29)
    """
    through = judged_through(pool.sources, partitions=partitions, wait_ms=wait_ms)
    if through is None:
        return []
    due = {m: by_source for m, by_source in pool.cells.items() if m <= through}
    if not due:
        return []
    detectors = {name: _river(pool.detectors.get(name)) for name in DETECTORS}
    fired = []
    for minute, (n, *sums) in sorted(sum_sources(due).items()):
        count = int(n)
        for (name, d), total in zip(detectors.items(), sums, strict=True):
            mean = total / count
            if feed_repeated(d, mean, count):
                fired.append(InputDrift(name, minute, round(mean, 4), count))
    pool.cells = {m: c for m, c in pool.cells.items() if m > through}
    pool.fed_through_ms = max(through, pool.fed_through_ms or through)
    pool.detectors = {name: state_of(d) for name, d in detectors.items()}
    return fired


def _river(state: PageHinkleyState | None) -> Any:
    from river import drift

    d = drift.PageHinkley(min_instances=MIN_INSTANCES, threshold=THRESHOLD)
    return d if state is None else restore(d, state)


def _ts(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _iso(ms: int) -> str:
    return _ts(ms).isoformat()


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)
