"""Inserts over ClickHouse's HTTP interface from the event loop: rows as JSON, no threads.

clickhouse-connect serializes rows in Python, so the worker ran it in threads; those threads
then held the interpreter in turns with the event loop and the broker client's thread,
which delayed consumption (see docs/benchmarks.md). Here the body is built with orjson in
the loop (cheap per row) and sent with aiohttp, whose waiting costs nothing.

The body is ``JSONCompactColumns``: one JSON array per column, in the insert's column order
(one orjson call for the whole chunk: cheaper than a call per row, docs/benchmarks.md).
Values: datetimes as ISO 8601 (read with ``date_time_input_format=best_effort``; naive ones
as the column's time zone, UTC here), ``Decimal`` as a quoted exact string, dates, booleans,
lists, ``None`` as NULL. JSON has no NaN or infinity: orjson writes them as null, stored as
NULL in a Nullable column and 0 in another (events with such values are dead-lettered
before they get here).

>>> encode_rows([("a", 1), ("b", None)])
b'[["a","b"],[1,null]]'
>>> insert_query("db", "t", ["id", "n"])
'INSERT INTO db.t (id, n) FORMAT JSONCompactColumns'
"""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import orjson

from finpulse.sinks.base import SinkUnavailable

KEEPALIVE_S = 3.0  # below the server's keep_alive_timeout (10 s), so no stale connections


def _default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)
    raise TypeError(f"no JSON form for {type(value).__name__}")


def encode_rows(rows: Sequence[Sequence[Any]]) -> bytes:
    """The ``JSONCompactColumns`` body of ``rows`` (tuples of equal length)."""
    return orjson.dumps(list(zip(*rows, strict=True)), default=_default)


def insert_query(database: str, table: str, columns: Sequence[str]) -> str:
    """The INSERT statement (sent as the ``query`` parameter; the rows are the body)."""
    return f"INSERT INTO {database}.{table} ({', '.join(columns)}) FORMAT JSONCompactColumns"


class HttpInserter:
    """POSTs inserts to one ClickHouse server; one keep-alive session, opened on first use.

    Every failure (refused connection, timeout, an error status) raises
    :class:`SinkUnavailable` with the server's first error line; credentials travel in
    headers and appear in no message.
    """

    def __init__(self, url: str, user: str, password: str, timeout_s: float = 60.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"ClickHouse URL must be http(s)://host:port, got {parts.scheme}://…")
        port = parts.port or (8443 if parts.scheme == "https" else 8123)
        self.endpoint = f"{parts.scheme}://{parts.hostname}:{port}/"
        self._headers = {"X-ClickHouse-User": user, "X-ClickHouse-Key": password}
        self.timeout_s = timeout_s
        self._session: Any = None

    def _open(self) -> Any:
        if self._session is None or self._session.closed:
            import aiohttp

            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout_s, connect=5),
                connector=aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_S),
            )
        return self._session

    async def insert(self, query: str, body: bytes, settings: dict[str, str]) -> None:
        """Run ``query`` with ``body`` as its data; returns when the server has stored it."""
        params = {"query": query, "date_time_input_format": "best_effort", **settings}
        try:
            async with self._open().post(self.endpoint, params=params, data=body) as response:
                if response.status != 200:
                    text = (await response.text()).strip().splitlines()
                    first = text[0] if text else ""
                    raise SinkUnavailable(f"HTTP {response.status}: {first}"[:300])
                await response.read()
        except SinkUnavailable:
            raise
        except Exception as exc:  # refused, reset, timeout, DNS: all retryable
            raise SinkUnavailable(f"{type(exc).__name__}: {exc}"[:300]) from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
