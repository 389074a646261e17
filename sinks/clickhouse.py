"""Batched, idempotent inserts into ClickHouse over HTTP (clickhouse-connect).

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
import logging
from collections.abc import Sequence
from typing import Any

from config.settings import Settings
from sinks.base import BatchingSink, SinkUnavailable

log = logging.getLogger(__name__)


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
        self._client: Any = None
        self._column_types: Any = None  # fetched once, so inserts skip a DESCRIBE round trip
        self.rows_written = 0

    def setup(self) -> None:
        """Connect now if ClickHouse is up; otherwise the first write connects (and waits)."""
        try:
            self._connect()
        except SinkUnavailable as exc:
            log.warning("ClickHouse not reachable yet (%s); will retry on write", exc)

    def _connect(self) -> Any:
        if self._client is None:
            try:
                self._client = make_client(self.settings)
            except Exception as exc:  # connection refused, DNS, auth: all retryable here
                raise SinkUnavailable(_describe(exc)) from exc
        return self._client

    def _write_chunk(self, chunk: Sequence[Any]) -> None:
        client = self._connect()
        token = dedup_token(self.table, [str(row[self.id_index]) for row in chunk])
        try:
            if self._column_types is None:
                context = client.create_insert_context(self.table, self.columns)
                self._column_types = context.column_types
            client.insert(
                self.table,
                chunk if isinstance(chunk, list) else list(chunk),
                column_names=self.columns,
                column_types=self._column_types,
                settings={"insert_deduplication_token": token},
            )
        except Exception as exc:
            # Network errors and server errors alike: keep the rows and try again later.
            self._client = None
            raise SinkUnavailable(_describe(exc)) from exc
        self.rows_written += len(chunk)

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def count_rows(client: Any, database: str, tables: Sequence[str]) -> dict[str, int]:
    """Exact row counts (``FINAL``: re-delivered events collapse) of ``tables``."""
    return {
        t: int(client.query(f"SELECT count() FROM {database}.{t} FINAL").result_rows[0][0])
        for t in tables
    }
