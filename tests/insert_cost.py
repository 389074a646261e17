"""Client CPU and wall time per ClickHouse insert, through the worker's path
(``ClickHouseSink._store``: JSON over HTTP): a dev measurement, not a test.

``python -m tests.insert_cost [--url URL --database DB] [-n 300]`` prints one JSON line per
case (2,000 and 50 ``transactions`` rows, 10 ``model_metrics`` rows) with mean/p50/p99 of
``time.process_time()`` and ``time.perf_counter()`` per insert, after 20 warm-up inserts.
Without ``--url`` it starts its own local ClickHouse and migrates a database. Rows are built
before the clock starts and carry fresh ids (a new dedup token per insert). Run it in two
venvs against the same server, alternating, to compare HTTP client versions: the CPU figures are the
client's own; wall time includes the server and is noisy on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from finpulse.config.settings import Settings, local_stack_settings
from finpulse.sinks.clickhouse import ClickHouseSink
from finpulse.sinks.migrate import migrate
from finpulse.sinks.tables import MODEL_METRICS_TABLE, TRANSACTIONS_TABLE, Table
from finpulse.streams.local.stack import LocalStack, free_port

WARMUP = 20
_ids = itertools.count()


def transaction_rows(run: str, n: int) -> list[tuple[Any, ...]]:
    """``n`` transactions rows (TRANSACTIONS_TABLE order) with ids unique to ``run``.

    >>> a, b = transaction_rows("r", 2)
    >>> a[0].startswith("r-t"), a[0] != b[0], len(a) == len(TRANSACTIONS_TABLE.columns)
    (True, True, True)
    """
    now = datetime.now(UTC)
    fixed = ("individual", "retail", "a-1", Decimal("120.50"), "CNY", "debit", "card_payment")
    tail = ("pos", None, None, None, None, "d-1", "CN", 1, 0)  # ..., schema_version, cash
    rows = []
    for i in (next(_ids) for _ in range(n)):
        rows.append((f"{run}-t{i}", now, f"c-{i % 97}", *fixed, *tail, i % 2, i))
    return rows


def metric_rows(run: str, n: int) -> list[tuple[Any, ...]]:
    """``n`` model_metrics rows (MODEL_METRICS_TABLE order).

    >>> len(metric_rows("r", 3)), len(metric_rows("r", 1)[0])
    (3, 7)
    """
    now = datetime.now(UTC)
    return [(f"{run}-m{next(_ids)}", now, "risk", "auc", 0.9, 1, "v1") for _ in range(n)]


def summary(xs: list[float]) -> dict[str, float]:
    """Mean, p50 and p99 (nearest rank), rounded to µs when ``xs`` are milliseconds.

    >>> summary([1.0, 2.0, 3.0, 10.0])
    {'mean': 4.0, 'p50': 3.0, 'p99': 10.0}
    """
    s = sorted(xs)

    def rank(q: float) -> float:
        return s[min(len(s) - 1, round(q * (len(s) - 1)))]

    return {
        k: round(v, 3)
        for k, v in [("mean", statistics.fmean(s)), ("p50", rank(0.5)), ("p99", rank(0.99))]
    }


def measure(
    settings: Settings,
    table: Table,
    rows: Callable[[str, int], list[tuple[Any, ...]]],
    n_rows: int,
    n: int,
) -> dict[str, Any]:
    """Insert ``WARMUP + n`` chunks of ``n_rows`` rows; per-insert figures of the last ``n``."""
    run = f"cost-{time.time_ns()}"
    sink = ClickHouseSink(settings, table.name, table.columns, table.id_column)
    cpu: list[float] = []
    wall: list[float] = []

    async def inserts() -> None:
        try:
            for k in range(WARMUP + n):
                chunk = rows(run, n_rows)
                c0, w0 = time.process_time(), time.perf_counter()
                await sink._store(chunk)
                c1, w1 = time.process_time(), time.perf_counter()
                if k >= WARMUP:
                    cpu.append((c1 - c0) * 1e3)
                    wall.append((w1 - w0) * 1e3)
        finally:
            await sink.close()

    asyncio.run(inserts())
    return {
        "table": table.name,
        "rows": n_rows,
        "inserts": n,
        "cpu_ms": summary(cpu),
        "wall_ms": summary(wall),
    }


def main(argv: list[str] | None = None) -> None:
    import aiohttp

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--url", help="ClickHouse HTTP URL (default: start a local one)")
    p.add_argument("--database", default="insert_cost")
    p.add_argument("-n", type=int, default=300, help="timed inserts per case")
    args = p.parse_args(argv)
    stack = None
    url = args.url
    if url is None:
        root = Path(tempfile.mkdtemp(prefix="insert-cost-"))
        stack = LocalStack(
            local_stack_settings(
                data_dir=root,
                local_broker_port=free_port(),
                local_clickhouse_http_port=free_port(),
                local_clickhouse_tcp_port=free_port(),
            )
        )
        stack.start_clickhouse()
        url = stack.clickhouse_url
    settings = Settings(clickhouse_url=url, clickhouse_database=args.database)
    try:
        migrate(settings)
        print(json.dumps({"http_client": "aiohttp", "aiohttp": aiohttp.__version__}))
        cases = [
            (TRANSACTIONS_TABLE, transaction_rows, 2000),
            (TRANSACTIONS_TABLE, transaction_rows, 50),
            (MODEL_METRICS_TABLE, metric_rows, 10),
        ]
        for table, rows, n_rows in cases:
            print(json.dumps(measure(settings, table, rows, n_rows, args.n)), flush=True)
    finally:
        if stack is not None:
            stack.stop()


if __name__ == "__main__":
    main()
