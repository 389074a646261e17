"""Events through a real Tansu broker and a Faust worker process into a real ClickHouse."""

from __future__ import annotations

import json

import pytest

from finpulse.streams.core.topics import DEADLETTER, FEEDBACK, INTERACTIONS, TRANSACTIONS
from tests import factories as f
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


def test_valid_events_land_once_in_their_tables(env):
    txns = [f.transaction() for _ in range(1500)]
    inters = [f.interaction() for _ in range(300)]
    fbs = [f.feedback() for _ in range(120)]
    env.worker()
    env.produce(
        TRANSACTIONS, [f.encode(e) for e in txns], [e["customer_id"].encode() for e in txns]
    )
    env.produce(INTERACTIONS, [f.encode(e) for e in inters])
    env.produce(FEEDBACK, [f.encode(e) for e in fbs])

    assert env.wait_rows("transactions", 1500) == 1500
    assert env.wait_rows("interactions", 300) == 300
    assert env.wait_rows("feedback", 120) == 120
    client = env.client()
    db = env.settings.clickhouse_database
    row = client.query(
        f"SELECT sum(amount), uniqExact(customer_id) FROM {db}.transactions FINAL"
    ).result_rows[0]
    assert float(row[0]) == pytest.approx(sum(e["amount"] for e in txns))
    assert row[1] == len({e["customer_id"] for e in txns})
    assert env.counts("deadletters") == {"deadletters": 0}


def test_malformed_events_become_deadletters_and_worker_keeps_going(env):
    bad = [
        b"{not json",
        b"\xff\xfe\x00garbage",
        f.encode(f.transaction(amount=-5)),
        f.encode(f.transaction(amount="abc")),
        f.encode({k: v for k, v in f.transaction().items() if k != "customer_id"}),
        f.encode(f.transaction(channel="carrier_pigeon")),
        f.encode(f.transaction(ts="2026-01-01T10:00:00")),
        f.encode(f.transaction(unknown_field=1)),
        b"[1, 2, 3]",
        b"x" * (env.settings.max_event_bytes + 1),
    ]
    good = [f.transaction() for _ in range(50)]
    worker = env.worker()
    values = bad + [f.encode(e) for e in good]
    env.produce(TRANSACTIONS, values, [b"one-partition"] * len(values))

    assert env.wait_rows("transactions", 50) == 50
    assert env.wait_rows("deadletters", len(bad)) == len(bad)
    messages = env.consume(DEADLETTER, len(bad))
    letters = [json.loads(m.value) for m in messages]
    assert len(letters) == len(bad)
    by_offset = {d["source_offset"]: d for d in letters}
    assert sorted(by_offset) == list(range(len(bad)))  # all sent with one key
    assert {d["error_type"] for d in letters} == {
        "invalid_json",
        "not_utf8",
        "invalid_fields",
        "not_an_object",
        "too_large",
    }
    assert "amount" in by_offset[2]["error"] and "greater than 0" in by_offset[2]["error"]
    assert "customer_id: Field required" in by_offset[4]["error"]
    assert "channel" in by_offset[5]["error"]
    assert "timezone" in by_offset[6]["error"]
    assert "unknown_field" in by_offset[7]["error"]
    assert all(d["source_topic"] == TRANSACTIONS for d in letters)
    assert worker.alive()
    # Counters are reported once a flush is complete (rows, then changelog), on the stats timer:
    # wait for both, not only the dead letters, which the first flush may already hold.
    stats = wait_for(
        lambda: (
            (s := worker.stats())
            and s["deadletters"] == len(bad)
            and s["processed"] >= len(good)
            and s
        ),
        10,
        "worker counters",
    )
    assert stats["processed"] == 50
    # where the batches' time went: processing, each table's insert, publishing
    timings = stats["batches"]
    assert timings["process_ms"]["n"] >= 1 and timings["batch_events"]["max"] >= 1
    assert 0 < timings["insert_ms.transactions"]["p50"] <= timings["insert_ms.transactions"]["max"]
    assert timings["publish_ms"]["n"] >= 1  # the dead letters
