"""A worker restart on the real broker and ClickHouse keeps per-customer features and models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from finpulse.sinks.tables import MODEL_CHECKPOINTS_TABLE
from finpulse.streams.core.topics import FEEDBACK, TRANSACTIONS
from tests import factories as f
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

CUSTOMER = "c-restart"


def _query(env, sql):
    client = env.client()
    try:
        return client.query(sql.format(db=env.settings.clickhouse_database)).result_rows
    finally:
        client.close()


def test_restart_keeps_features_and_restores_the_model_checkpoint(env):
    now = datetime.now(UTC).replace(microsecond=0)
    history = [
        f.transaction(
            event_id=f"t-restart-{i}",
            customer_id=CUSTOMER,
            ts=(now - timedelta(minutes=50 - 10 * i)).isoformat(),
            amount=100.0 + i,
        )
        for i in range(5)
    ]
    labels = [
        f.feedback(
            customer_id=CUSTOMER,
            ref_event_id=t["event_id"],
            kind="fraud_confirmed" if i == 0 else "fraud_cleared",
            ts=now.isoformat(),
            value=None,
        )
        for i, t in enumerate(history[:3])
    ]
    key = CUSTOMER.encode()
    first = env.worker(name="risk-1", risk_checkpoint_every_labels=2)
    env.produce(TRANSACTIONS, [f.encode(e) for e in history], [key] * len(history))
    assert env.wait_rows("risk_scores", 5) == 5
    env.produce(FEEDBACK, [f.encode(e) for e in labels], [key] * len(labels))
    wait_for(
        lambda: (
            env.row_count(MODEL_CHECKPOINTS_TABLE.name) >= 1
            and _query(env, "SELECT countIf(label IS NOT NULL) FROM {db}.risk_scores FINAL")[0][0]
            == 3
        ),
        30,
        "a checkpoint and 3 labelled risk_scores rows",
    )
    ((version, n_learned),) = _query(
        env,
        f"SELECT model_version, n_learned FROM {{db}}.{MODEL_CHECKPOINTS_TABLE.name} "
        "ORDER BY position DESC, created_at DESC LIMIT 1",
    )
    assert n_learned >= 2 and version == f"risk-v1+{n_learned}"
    first.stop(timeout_s=15)

    env.worker(name="risk-2")
    new = f.transaction(event_id="t-restart-new", customer_id=CUSTOMER, ts=now.isoformat())
    env.produce(TRANSACTIONS, [f.encode(new)], [key])
    env.wait_rows("risk_scores", 6)
    ((count_1h, count_24h, model_version),) = _query(
        env,
        "SELECT txn_count_1h, txn_count_24h, model_version FROM {db}.risk_scores FINAL "
        "WHERE event_id = 't-restart-new'",
    )
    assert (count_1h, count_24h) == (6, 6)  # the five before the restart count
    assert model_version == version  # the new process restored the checkpoint
