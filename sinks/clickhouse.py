"""Batched, idempotent inserts into ClickHouse.

Writes go over HTTP as JSON from the event loop (:mod:`finpulse.sinks.http_insert`); queries,
migrations and tests use a clickhouse-connect client (:func:`make_client`).

Idempotency has two layers:

* each chunk carries an ``insert_deduplication_token`` derived from its row ids, so
  a retried insert whose first attempt did land is dropped by the server (tables
  set ``non_replicated_deduplication_window``), materialized views included;
* tables are ``ReplacingMergeTree`` keyed by the event's deterministic id, so an
  event re-delivered in a different batch after a crash collapses to one row
  (read with ``FINAL`` for exact counts).
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from finpulse.config.settings import Settings
from finpulse.sinks.base import BatchingSink, SinkUnavailable
from finpulse.sinks.http_insert import HttpInserter, encode_rows, insert_query


def make_client(settings: Settings, database: str | None = None) -> Any:
    """A clickhouse-connect client for ``settings`` (connects immediately).

    ``database=""`` connects without selecting one (used before it exists).
    """
    import clickhouse_connect

    db = settings.clickhouse_database if database is None else database
    return clickhouse_connect.get_client(
        dsn=settings.clickhouse_url,
        username=settings.clickhouse_user,
        password=settings.clickhouse_password.get_secret_value(),
        database=db or None,
        connect_timeout=5,
        send_receive_timeout=60,
        autogenerate_session_id=False,
    )


def dedup_token(table: str, ids: Sequence[str]) -> str:
    """Deterministic insert token for a chunk of row ids.

    >>> dedup_token("t", ["a", "b"]) == dedup_token("t", ["a", "b"])
    True
    >>> dedup_token("t", ["a", "b"]) == dedup_token("t", ["b", "a"])
    False
    """
    digest = hashlib.sha1(table.encode())
    for row_id in ids:
        digest.update(b"\x00" + row_id.encode())
    return digest.hexdigest()


class ClickHouseSink(BatchingSink):
    """Writes tuples (in ``columns`` order) into one table; ``id_column`` names the row id.

    Inserts go over HTTP from the event loop (:mod:`finpulse.sinks.http_insert`).

    >>> sink = ClickHouseSink(Settings(), "transactions", ["event_id", "amount"])
    >>> sink.table, sink.id_index
    ('transactions', 0)
    """

    def __init__(
        self, settings: Settings, table: str, columns: Sequence[str], id_column: str | None = None
    ) -> None:
        super().__init__(
            settings.sink_max_rows, settings.sink_retry_initial_s, settings.sink_retry_max_s
        )
        self.settings = settings
        self.table = table
        self.columns = list(columns)
        self.id_index = self.columns.index(id_column or self.columns[0])
        self._query = insert_query(settings.clickhouse_database, table, self.columns)
        self._inserter: HttpInserter | None = None  # opened on first write, again after a failure
        self.rows_written = 0
        # Round trips of the latest inserts (ms): with the caller's insert time, tells
        # waiting to be sent from waiting for the server.
        self.round_trips_ms: deque[float] = deque(maxlen=1000)

    def setup(self) -> None:
        """Nothing to do: the first write connects (and waits while ClickHouse is down)."""

    async def _store(self, chunk: Sequence[Any]) -> None:
        token = dedup_token(self.table, [str(row[self.id_index]) for row in chunk])
        body = encode_rows(chunk)
        if self._inserter is None:
            self._inserter = HttpInserter(
                self.settings.clickhouse_url,
                self.settings.clickhouse_user,
                self.settings.clickhouse_password.get_secret_value(),
            )
        started = time.perf_counter()
        try:
            await self._inserter.insert(self._query, body, {"insert_deduplication_token": token})
        except SinkUnavailable:
            await self.close()  # the next attempt reconnects (and re-reads the settings)
            raise
        self.round_trips_ms.append((time.perf_counter() - started) * 1000)
        self.rows_written += len(chunk)

    async def close(self) -> None:
        if self._inserter is not None:
            await self._inserter.close()
            self._inserter = None


def count_rows(client: Any, database: str, tables: Sequence[str]) -> dict[str, int]:
    """Exact row counts (``FINAL``: re-delivered events collapse) of ``tables``."""
    return {
        t: int(client.query(f"SELECT count() FROM {database}.{t} FINAL").result_rows[0][0])
        for t in tables
    }
