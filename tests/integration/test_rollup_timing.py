"""The 1-minute rollups at 100k rows (one hour of a ~28 events/s stream): exact under
re-delivery, and how fast the board queries are on them versus the raw tables read with FINAL
(figures printed with ``pytest -s``)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from finpulse.config.boards.macros import expand
from finpulse.config.boards.risk_overview import BOARD as RISK
from finpulse.config.boards.service_quality import BOARD as SERVICE
from finpulse.config.boards.spec import VARIABLES
from finpulse.sinks.clickhouse import make_client
from finpulse.sinks.rollups import refresh_rollups
from tests.board_data import board_settings

pytestmark = pytest.mark.integration

N = 100_000
REDELIVERED = 5_000

TXN_INSERT = """INSERT INTO {db}.transactions (event_id, ts, customer_id, customer_type, segment,
    account_id, amount, currency, direction, txn_type, channel, schema_version, source_partition,
    source_offset)
SELECT 'b-' || toString(number), toDateTime64({end}, 3) - toIntervalMillisecond(number * 36),
    'c-' || toString(number % 5000), 'individual',
    ['retail', 'private', 'sme', 'corporate', 'government', 'nonprofit'][1 + number % 6],
    'a-' || toString(number % 5000), toDecimal64(1 + (number % 100000) / 100, 6), 'CNY',
    ['debit', 'credit'][1 + number % 2],
    ['transfer', 'card_payment', 'fx', 'bill_payment'][1 + number % 4],
    ['app', 'web', 'branch', 'atm', 'pos', 'call_center', 'api'][1 + number % 7], 1, 0, number
FROM numbers({n})"""

INT_INSERT = """INSERT INTO {db}.interactions (event_id, ts, customer_id, customer_type, segment,
    channel, interaction_type, wait_seconds, handle_seconds, resolved, first_contact_resolution,
    schema_version, source_partition, source_offset)
SELECT 'bi-' || toString(number), toDateTime64({end}, 3) - toIntervalMillisecond(number * 36),
    'c-' || toString(number % 5000), 'individual',
    ['retail', 'private', 'sme', 'corporate', 'government', 'nonprofit'][1 + number % 6],
    ['app', 'web', 'branch', 'call_center', 'chat', 'email'][1 + number % 6],
    if(number % 9 = 0, 'complaint', 'inquiry'), number % 41, 60 + number % 500, true,
    if(number % 3 = 0, NULL, number % 2 = 0), 1, 0, number
FROM numbers({n})"""

RAW_EQUIVALENT = {
    "Transactions per interval by channel": """SELECT $__timeInterval(ts) AS t, channel,
        count() AS transactions FROM transactions FINAL
        WHERE $__timeFilter(ts) AND segment IN (${segment:singlequote})
          AND channel IN (${channel:singlequote})
        GROUP BY t, channel ORDER BY t, channel""",
    "Service level": """SELECT $__timeInterval(ts) AS t, channel,
        countIf(wait_seconds <= 20) / count() AS service_level FROM interactions FINAL
        WHERE $__timeFilter(ts) AND segment IN (${segment:singlequote})
          AND channel IN (${channel:singlequote})
        GROUP BY t, channel ORDER BY t, channel""",
}


def best_ms(client, sql: str, runs: int = 5) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        client.query(sql)
        best = min(best, time.perf_counter() - t0)
    return best * 1000


def test_rollups_at_100k_rows_exact_and_timed(clickhouse, tmp_path, record_property):
    settings = board_settings(clickhouse.clickhouse_url, tmp_path)
    db = settings.clickhouse_database
    client = make_client(settings)
    end = int(datetime.now(UTC).timestamp())
    for sql in (TXN_INSERT, INT_INSERT):
        client.command(sql.format(db=db, end=end, n=N))
        # re-delivery in another insert: same events, other batch (no dedup token match)
        client.command(sql.format(db=db, end=end, n=REDELIVERED))
    t0 = time.perf_counter()
    refresh_rollups(client, db)
    refresh_ms = (time.perf_counter() - t0) * 1000
    raw_rows = client.query(f"SELECT count() FROM {db}.transactions").result_rows[0][0]
    assert raw_rows == N + REDELIVERED  # before merges, the raw table holds the duplicates
    exact = client.query(f"SELECT count(), sum(amount) FROM {db}.transactions FINAL").result_rows
    rolled = client.query(f"SELECT sum(events), sum(amount) FROM {db}.transactions_1m").result_rows
    assert rolled == exact and exact[0][0] == N
    sl = client.query(
        f"SELECT sum(contacts), sum(answered_in_target) FROM {db}.interactions_1m"
    ).result_rows[0]
    assert sl == (N, sum(1 for i in range(N) if i % 41 <= 20))

    start_dt = datetime.fromtimestamp(end, UTC) - timedelta(hours=2)
    end_dt = datetime.fromtimestamp(end + 1, UTC)
    variables = {k: list(v) for k, v in VARIABLES.items()}
    figures = {}
    panels = {p.title.split(":")[0]: p for p in (*RISK.panels, *SERVICE.panels)}
    for name, raw_sql in RAW_EQUIVALENT.items():
        rollup_sql = expand(panels[name].sql, start_dt, end_dt, 300, variables)
        raw = expand(raw_sql, start_dt, end_dt, 300, variables)
        a, b = client.query(rollup_sql).result_rows, client.query(raw).result_rows
        assert [r[:2] for r in a] == [r[:2] for r in b]
        assert all(abs(float(x[2]) - float(y[2])) < 1e-9 for x, y in zip(a, b, strict=True))
        figures[name] = (best_ms(client, rollup_sql), best_ms(client, raw))
    durations = client.query(
        "SELECT view, last_success_duration_ms FROM system.view_refreshes "
        f"WHERE database = '{db}' ORDER BY view"
    ).result_rows
    for view, ms in durations:
        record_property(f"refresh {view}", f"{ms} ms")
        print(f"refresh {view}: {ms} ms (server)")
    print(f"refresh_rollups() wall, incl. waiting for the clock tick: {refresh_ms:.0f} ms")
    rows = client.query(f"SELECT count() FROM {db}.transactions_1m").result_rows[0][0]
    print(f"transactions_1m: {rows} rows for {N} events")
    client.close()
    for name, (rollup_ms, raw_ms) in figures.items():
        record_property(name, f"rollup {rollup_ms:.1f} ms, raw FINAL {raw_ms:.1f} ms")
        print(f"{name}: rollup {rollup_ms:.1f} ms, raw FINAL {raw_ms:.1f} ms")
        assert rollup_ms < 5000
