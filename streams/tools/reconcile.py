"""Count reconciliation: every produced event is a row or a dead letter, exactly once.

Used after fault tests and by ``finpulse bench``: ``produced = processed + dead-lettered``
where both sides are ClickHouse ``FINAL`` counts (re-deliveries collapse), the number of
distinct ids equals the ``FINAL`` count (no duplicate survived), and, when worker counters
are given, they cover everything (they exceed the produced count only by re-deliveries
after a crash).

>>> r = Reconciliation(produced=10, rows={"transactions": 8}, unique_rows=8, deadletters=2,
...                    unique_deadletters=2)
>>> r.accounted, r.ok
(10, True)
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from finpulse.sinks.tables import DEADLETTERS_TABLE, EVENT_TABLES


@dataclass(frozen=True)
class Reconciliation:
    """Counts on both sides of a run; :attr:`ok` when they agree exactly."""

    produced: int
    rows: Mapping[str, int]
    unique_rows: int
    deadletters: int
    unique_deadletters: int
    worker_processed: int | None = None
    worker_deadletters: int | None = None
    problems: tuple[str, ...] = field(default=())

    @property
    def accounted(self) -> int:
        return sum(self.rows.values()) + self.deadletters

    @property
    def ok(self) -> bool:
        return not self.issues()

    def issues(self) -> list[str]:
        """Human-readable mismatches (empty when the run reconciles)."""
        found = list(self.problems)
        if self.accounted != self.produced:
            found.append(
                f"produced {self.produced} != rows {sum(self.rows.values())} "
                f"+ dead letters {self.deadletters}"
            )
        if self.unique_rows != sum(self.rows.values()):
            found.append(f"{self.unique_rows} distinct ids but {sum(self.rows.values())} rows")
        if self.unique_deadletters != self.deadletters:
            found.append(f"{self.unique_deadletters} distinct dead letters of {self.deadletters}")
        return found


def reconcile(
    client: Any,
    database: str,
    produced: int,
    worker_stats: Iterable[Mapping[str, Any]] | None = None,
    *,
    exact_counters: bool = False,
    tables: Sequence[str] | None = None,
) -> Reconciliation:
    """Compare ``produced`` with the ClickHouse ``FINAL`` counts of ``database``.

    ``worker_stats`` are the workers' stats dicts; their ``processed + deadletters`` must be
    at least the ClickHouse counts (at-least-once), and equal when ``exact_counters`` (no
    crash, so no re-delivery).
    """
    names = list(tables or [t.name for t in EVENT_TABLES.values()])
    rows: dict[str, int] = {}
    unique = 0
    for name in names:
        final, distinct = client.query(
            f"SELECT (SELECT count() FROM {database}.{name} FINAL), "
            f"(SELECT uniqExact(event_id) FROM {database}.{name})"
        ).result_rows[0]
        rows[name] = int(final)
        unique += int(distinct)
    dl = DEADLETTERS_TABLE.name
    dead, dead_unique = client.query(
        f"SELECT (SELECT count() FROM {database}.{dl} FINAL), "
        f"(SELECT uniqExact(id) FROM {database}.{dl})"
    ).result_rows[0]
    problems: list[str] = []
    processed = dead_counted = None
    if worker_stats is not None:
        stats = list(worker_stats)
        processed = sum(int(s.get("processed", 0)) for s in stats)
        dead_counted = sum(int(s.get("deadletters", 0)) for s in stats)
        pairs = ((processed, sum(rows.values()), "processed"), (dead_counted, dead, "dead"))
        for counted, stored, what in pairs:
            if counted < stored or (exact_counters and counted != stored):
                problems.append(f"workers counted {counted} {what}, ClickHouse holds {stored}")
    return Reconciliation(
        produced=produced,
        rows=rows,
        unique_rows=unique,
        deadletters=int(dead),
        unique_deadletters=int(dead_unique),
        worker_processed=processed,
        worker_deadletters=dead_counted,
        problems=tuple(problems),
    )


def wait_reconciled(
    client: Any, database: str, produced: int, timeout_s: float, interval_s: float = 0.25
) -> Reconciliation:
    """Poll :func:`reconcile` until everything produced is accounted for or the deadline.

    Returns the last result (check ``.ok``); it never waits past ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        result = reconcile(client, database, produced)
        if result.accounted >= produced or time.monotonic() > deadline:
            return result
        time.sleep(interval_s)  # poll interval inside a deadline wait
