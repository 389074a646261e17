"""Board test data: events through the real pipeline ``Runtime`` into a real ClickHouse, and
the agreed column lists of tables other branches are still adding ("contract tables").

The contract tables are an offline substitute, named as such: they let every panel's SQL run
now; once a real migration creates the table, the real one is used instead.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from finpulse.config.settings import Settings
from finpulse.models.actions import AlertAction, action_id
from finpulse.sinks.clickhouse import make_client
from finpulse.sinks.migrate import migrate
from finpulse.sinks.rollups import refresh_rollups
from finpulse.streams.console.store import ConsoleStore
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.topics import FEEDBACK, INTERACTIONS, TRANSACTIONS
from finpulse.streams.worker.app import default_stages
from finpulse.streams.worker.pipeline import Pipeline
from finpulse.streams.worker.runtime import Runtime
from tests import factories as f

_db = itertools.count()

TXN_CHANNELS = ["app", "web", "branch", "atm", "pos", "call_center", "api"]
SVC_CHANNELS = ["app", "web", "branch", "call_center", "chat", "email"]
SEGMENTS = ["retail", "private", "sme", "corporate", "government", "nonprofit"]
TXN_TYPES = ["transfer", "cash_withdrawal", "cash_deposit", "card_payment", "bill_payment", "fx"]


def board_settings(clickhouse_url: str, tmp: Any) -> Settings:
    """Settings of a fresh, migrated database on the session ClickHouse."""
    s = Settings(
        data_dir=tmp,
        clickhouse_url=clickhouse_url,
        clickhouse_database=f"board_{int(datetime.now().timestamp())}_{next(_db)}",
        sink_retry_initial_s=0.05,
        sink_retry_max_s=0.5,
    )
    migrate(s)
    return s


def make_events(now: datetime, n_txn: int = 700, n_int: int = 360) -> dict[str, list[dict]]:
    """Varied events spread over the last three hours (raw tables keep 90 days)."""
    txns = []
    for i in range(n_txn):
        txns.append(
            f.transaction(
                ts=(now - timedelta(seconds=15 * i + 5)).isoformat(),
                channel=TXN_CHANNELS[i % 7],
                segment=SEGMENTS[i % 6],
                customer_type="institution" if i % 6 in (3, 4) else "individual",
                txn_type=TXN_TYPES[i % 6],
                direction="credit" if i % 3 == 0 else "debit",
                currency="USD" if i % 10 == 0 else "CNY",
                amount=round(10 + (i * 37) % 90000 + 0.25, 2),
                customer_id=f"c-{i % 120}",
            )
        )
    inters = []
    for i in range(n_int):
        complaint = i % 5 == 0
        inters.append(
            f.interaction(
                ts=(now - timedelta(seconds=29 * i + 7)).isoformat(),
                channel=SVC_CHANNELS[i % 6],
                segment=SEGMENTS[(i + 1) % 6],
                customer_id=f"c-{i % 120}",
                interaction_type="complaint" if complaint else "inquiry",
                complaint_id=f"cmp-{i}" if complaint else None,
                wait_seconds=float((i * 7) % 45),
                handle_seconds=float(60 + (i * 13) % 600),
                resolved=i % 4 != 0,
                first_contact_resolution=None if i % 3 == 0 else i % 2 == 0,
            )
        )
    txns += overdue_large_value(now)
    fbs = []
    for i, it in enumerate(inters):
        if i % 3 == 0:
            fbs.append(
                f.feedback(
                    ts=(datetime.fromisoformat(it["ts"]) + timedelta(minutes=2)).isoformat(),
                    kind="csat_survey",
                    ref_event_id=it["event_id"],
                    customer_id=it["customer_id"],
                    value=1 + i % 5,
                )
            )
        if it["interaction_type"] == "complaint" and i % 10 == 0:
            fbs.append(
                f.feedback(
                    kind="complaint_closed",
                    ref_event_id=it["event_id"],
                    customer_id=it["customer_id"],
                    value=None,
                )
            )
    for t in txns[::50]:
        fbs.append(
            f.feedback(
                kind="fraud_confirmed",
                ref_event_id=t["event_id"],
                customer_id=t["customer_id"],  # feedback is keyed by the customer (contract)
                value=None,
            )
        )
    return {"transaction": txns, "interaction": inters, "feedback": fbs}


OVERDUE_DAYS_AGO = 12  # beyond five working days whatever the calendar says


def overdue_large_value(now: datetime) -> list[dict]:
    """Two same-day cash deposits of one customer (30,000 + 25,000 RMB: a cumulative cash
    report) twelve days ago, so the register holds a report past its deadline."""
    day = now - timedelta(days=OVERDUE_DAYS_AGO)
    return [
        f.transaction(
            ts=(day + timedelta(minutes=k)).isoformat(),
            customer_id="c-overdue",
            account_id="a-overdue",
            txn_type="cash_deposit",
            direction="credit",
            channel="branch",
            amount=amount,
        )
        for k, amount in enumerate((30000.0, 25000.0))
    ]


MALFORMED = [b"{not json", b"[1, 2]", b"\xff\xfe", b'{"event_id": "x"}']
TOPIC = {"transaction": TRANSACTIONS, "interaction": INTERACTIONS, "feedback": FEEDBACK}


def _records(kind: str, events: list[dict], start_offset: int = 0) -> list[RawRecord]:
    return [
        RawRecord(TOPIC[kind], 0, start_offset + i, f.encode(e), e["customer_id"].encode())
        for i, e in enumerate(events)
    ]


def fill_through_pipeline(settings: Settings, now: datetime) -> dict[str, Any]:
    """Run the events through ``Runtime.handle`` in batches, then re-deliver a slice of them
    in different batches (as after a worker crash). Returns the events and expected counts."""
    events = make_events(now)
    published: list[Any] = []

    async def publish(messages: Any) -> None:
        published.extend(messages)

    async def run() -> None:
        rt = Runtime(settings, publish, Pipeline(settings, default_stages))
        for kind, evs in events.items():
            recs = _records(kind, evs)
            for i in range(0, len(recs), 100):
                await rt.handle(kind, recs[i : i + 100])
        bad = [RawRecord(TRANSACTIONS, 1, i, v) for i, v in enumerate(MALFORMED)]
        await rt.handle("transaction", bad)
        # re-delivery: the same records again, cut into different batches
        for kind in ("transaction", "interaction"):
            recs = _records(kind, events[kind])[:230]
            for i in range(0, len(recs), 70):
                await rt.handle(kind, recs[i : i + 70])
        await rt.handle("transaction", bad)
        await fill_consumer_lag(rt, now)
        await rt.close()

    asyncio.run(run())
    client = make_client(settings)
    try:
        refresh_rollups(client, settings.clickhouse_database)
    finally:
        client.close()
    actions = act_on_alerts(settings, datetime.now(UTC))
    return {
        "events": events,
        "malformed": len(MALFORMED),
        "published": published,
        "actions": actions,
    }


# What on-call staff did, by the alert's place in (first_seen, alert_id) order: respond after
# 5 minutes and resolve after 30; respond after 90 (late for a 60-minute target); assign after
# 10; nothing. An action later than ``now`` has not happened yet.
RESPONSES: tuple[tuple[tuple[str, int], ...], ...] = (
    (("acknowledge", 5), ("resolve", 30)),
    (("acknowledge", 90),),
    (("assign", 10),),
    (),
)


def act_on_alerts(settings: Settings, now: datetime) -> list[AlertAction]:
    """Record console actions (through the console's own store) on the stored alerts."""
    client = make_client(settings)
    try:
        result = client.query(
            "SELECT alert_id, rule_id, owner, severity, subject_type, subject_id, customer_id, "
            f"source_event_id, first_seen FROM {settings.clickhouse_database}.alerts FINAL "
            "ORDER BY first_seen, alert_id"
        )
    finally:
        client.close()
    alerts = [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]
    store = ConsoleStore(settings)
    store.connect()
    try:
        done = []
        for i, alert in enumerate(alerts):
            for action, minutes in RESPONSES[i % len(RESPONSES)]:
                ts = alert["first_seen"].replace(tzinfo=UTC) + timedelta(minutes=minutes)
                if ts > now:
                    continue
                act = AlertAction(
                    action_id=action_id(alert["alert_id"], "ana", action, "board-data"),
                    ts=ts,
                    actor="ana",
                    action=action,
                    alert_id=alert["alert_id"],
                    rule_id=alert["rule_id"],
                    owner=alert["owner"],
                    severity=alert["severity"],
                    subject_type=alert["subject_type"],
                    subject_id=alert["subject_id"],
                    customer_id=alert["customer_id"],
                    source_event_id=alert["source_event_id"],
                    assignee="ana" if action == "assign" else None,
                    reason="handled" if action == "resolve" else "",
                )
                store.record(act)
                done.append(act)
        return done
    finally:
        store.close()


async def fill_consumer_lag(rt: Runtime, now: datetime, workers: int = 2) -> None:
    """``consumer_lag`` rows of two workers (two transaction partitions each) every 5 minutes
    over the last three hours, made by the worker's :class:`LagMonitor` and written through
    the runtime's committer as the worker does; a backlog builds and drains in the middle."""
    from types import SimpleNamespace

    from faust.types import TP

    from finpulse.streams.worker.intake import IntakeBuffer
    from finpulse.streams.worker.lag import KIND, LagMonitor

    def message(tp: Any, offset: int, ts: float) -> Any:
        return SimpleNamespace(tp=tp, offset=offset, timestamp=ts, generation_id=1)

    for w in range(workers):
        buffer = IntakeBuffer(maxsize=1 << 30)
        counted = {"events": 0, "deadletters": 0}
        lag = LagMonitor(
            f"host-{w}:{100 + w}",
            {TRANSACTIONS: buffer},
            lambda c=counted: (c["events"], c["deadletters"]),  # type: ignore[misc]
        )
        tps = [TP(TRANSACTIONS, 2 * w), TP(TRANSACTIONS, 2 * w + 1)]
        offset = dict.fromkeys(tps, 0)
        high = dict.fromkeys(tps, 0)
        for step in range(36, 0, -1):  # every 5 minutes, oldest first
            at = now - timedelta(minutes=5 * step)
            behind = 400 * (step % 12) if 12 <= step < 24 else 0  # a backlog, then caught up
            for tp in tps:
                high[tp] += 1500
                end = at.timestamp()
                fetched = [
                    message(tp, o, end - (high[tp] - o) * 0.1) for o in range(offset[tp], high[tp])
                ]
                for m in fetched:
                    buffer.put(m)
                done = high[tp] - behind
                lag.note_processed([m for m in fetched if m.offset < done][-1:])
                offset[tp] = high[tp]
            counted["events"] += 3000 - behind
            counted["deadletters"] += step % 4
            for ms in (20.0 + step, 35.0 + step, 90.0 + 2 * step):
                lag.note_batch_ms(ms)
            rows = lag.rows(tps, 1, high.get, dict(high), at=at, now_monotonic=lag._since + 300)
            await rt.committer.submit(KIND, lag.batch(rows), acknowledge=lambda: None, urgent=True)


# ---- contract tables (offline substitute until the owning branch's migration lands) ---------

CONTRACT_DDL: dict[str, str] = {
    "risk_scores": """CREATE TABLE IF NOT EXISTS {db}.risk_scores (
        event_id String, ts DateTime64(3, 'UTC'), customer_id String,
        segment LowCardinality(String), customer_type LowCardinality(String),
        channel LowCardinality(String), txn_type LowCardinality(String),
        amount_cny Decimal(24, 6), score Float64, anomaly Float64, supervised Nullable(Float64),
        reason_codes Array(LowCardinality(String)), model_version LowCardinality(String),
        label Nullable(UInt8))
        ENGINE = ReplacingMergeTree ORDER BY (ts, event_id)""",
    "model_metrics": """CREATE TABLE IF NOT EXISTS {db}.model_metrics (
        ts DateTime64(3, 'UTC'), model LowCardinality(String), metric LowCardinality(String),
        value Float64, n UInt64, model_version LowCardinality(String))
        ENGINE = ReplacingMergeTree ORDER BY (model, metric, ts)""",
}

CONTRACT_FILL: dict[str, str] = {
    "risk_scores": """INSERT INTO {db}.risk_scores
        SELECT event_id, ts, customer_id, segment, customer_type, channel, txn_type,
               amount, cityHash64(event_id) % 100, (cityHash64(event_id) % 97) / 97, NULL,
               ['amount_vs_history'], 'risk-1.0', NULL
        FROM {db}.transactions FINAL""",
    "model_metrics": """INSERT INTO {db}.model_metrics
        SELECT now64(3) - toIntervalMinute(number * 5), m.1, m.2, 0.5 + (number % 40) / 100,
               100 * number, 'v1'
        FROM numbers(36) ARRAY JOIN [('risk', 'auc'), ('risk', 'pr_auc'),
             ('satisfaction', 'mae'), ('satisfaction', 'csat_predicted')] AS m""",
}


def existing_tables(client: Any, db: str) -> set[str]:
    rows = client.query(f"SELECT name FROM system.tables WHERE database = '{db}'").result_rows
    return {r[0] for r in rows}


def add_contract_tables(client: Any, db: str, pending: frozenset[str]) -> list[str]:
    """Create (and fill) the contract tables of pending tables the migrations lack."""
    have = existing_tables(client, db)
    made = [t for t in CONTRACT_DDL if t in pending and t not in have]
    for t in made:
        client.command(CONTRACT_DDL[t].format(db=db))
        client.command(CONTRACT_FILL[t].format(db=db))
    return made
