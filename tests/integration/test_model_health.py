"""A drift of the shared risk model, raised once whatever the number of workers.

Three workers (two input partitions; every worker learns the whole learning stream) score
the same transactions; their fraud labels first follow the amount (large ones are fraud),
then flip. Every worker's detector, fed on the learning stream, finds the rise of the
supervised error at the same stream positions and sends each detection to
``finpulse.model_health``; the model's owner raises each once: one ``drift.supervised_error``
alert whose occurrences are the distinct detections. A worker killed and started again
replays the stream from its start (no checkpoint yet) and sends its detections again: the
alert does not change.

A jump in the amounts scored over two workers raises the one ``drift.amount_cny`` alert the
same transactions raise offline in one pipeline: the model's owner pools every
partition's minutes.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from finpulse.config.settings import Settings
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.partitioning import key_partition
from finpulse.streams.core.topics import ALERTS, FEEDBACK, MODEL_HEALTH, RISK_EXAMPLES, TRANSACTIONS
from finpulse.streams.worker.app import default_stages
from finpulse.streams.worker.loopback import Loopback
from finpulse.streams.worker.pipeline import Pipeline
from tests import factories as f
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

N = 1200  # transactions, each labelled
FLIP_AT = 600  # the labels of the later ones are flipped
CUSTOMERS = 300
RULE = "drift.supervised_error"
NO_CHECKPOINT = {"risk_checkpoint_every_labels": 10**6, "risk_checkpoint_every_events": 0}


def _events() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    txns, labels = [], []
    for i in range(N):
        large = i % 4 == 0
        cid = f"mh-{i % CUSTOMERS}"
        t = f.transaction(
            event_id=f"mh-t-{i}",
            customer_id=cid,
            account_id=f"{cid}-a",
            ts=(start + timedelta(seconds=5 * i)).isoformat(),
            amount=(3000.0 + 7 * (i % 300)) if large else (60.0 + i % 200),
        )
        txns.append(t)
        fraud = large if i < FLIP_AT else not large
        labels.append(
            f.feedback(
                event_id=f"mh-f-{i}",
                customer_id=cid,
                ref_event_id=t["event_id"],
                kind="fraud_confirmed" if fraud else "fraud_cleared",
                ts=(start + timedelta(hours=1, seconds=5 * i)).isoformat(),
                value=None,
            )
        )
    return txns, labels


def _send(env: Any, topic: str, events: list[dict[str, Any]]) -> None:
    env.produce(topic, [f.encode(e) for e in events], [e["customer_id"].encode() for e in events])


def _detections(env: Any) -> Counter[str]:
    """Detection id -> copies on finpulse.model_health."""
    return Counter(m.key.decode() + "|" + json.loads(m.value)["event_id"]
                   for m in env.consume(MODEL_HEALTH, 10**6, timeout_s=3))  # fmt: skip


def _alert_rows(env: Any) -> list[tuple[str, int]]:
    client = env.client()
    try:
        return [
            (str(r[0]), int(r[1]))
            for r in client.query(
                f"SELECT alert_id, occurrences FROM {env.settings.clickhouse_database}.alerts "
                f"FINAL WHERE rule_id = '{RULE}'"
            ).result_rows
        ]
    except Exception:  # table busy: the caller keeps waiting
        return []
    finally:
        client.close()


def _stream_end(env: Any) -> int:
    return len(env.consume(RISK_EXAMPLES, 10**6, timeout_s=3))


def _owner_counts(workers: list[Any]) -> tuple[int, int]:
    """Detections raised and copies dropped by the model-health stage, over the workers."""
    counts = [w.stats().get("stages", {}).get("model_health", {}) for w in workers]
    return (
        sum(c.get("model_health.raised", 0) for c in counts),
        sum(c.get("model_health.repeated", 0) for c in counts),
    )


def _learned(workers: list[Any], end: int) -> bool:
    return all(
        w.stats().get("learned", {}).get(RISK_EXAMPLES, {}).get("to") == end for w in workers
    )


def test_a_drift_of_the_labelled_stream_over_three_workers_raises_one_alert_per_detection(env):
    txns, labels = _events()
    workers = [env.worker(name=f"w{k}", **NO_CHECKPOINT) for k in range(3)]
    wait_for(lambda: all(w.stats() for w in workers), 90, "three workers running")
    _send(env, TRANSACTIONS, txns)
    env.wait_rows("risk_scores", N, timeout_s=180)  # every transaction scored and pending
    _send(env, FEEDBACK, labels)
    env.wait_rows("feedback", N, timeout_s=180)
    ends = [-1]

    def learned() -> bool:  # the stream's end, read twice the same, learned by every worker
        ends.append(_stream_end(env))
        return ends[-1] == ends[-2] > 0 and _learned(workers, ends[-1])

    wait_for(learned, 180, "every worker learned the whole stream")
    end = ends[-1]
    # each worker sent each detection (none at all fails here too)
    copies = wait_for(lambda: (c := _detections(env)) and set(c.values()) == {3} and c, 60,
                      "every detection sent by each worker")  # fmt: skip
    detections = len(copies)
    try:
        wait_for(lambda: [n for _, n in _alert_rows(env)] == [detections], 120, "the alert")
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}; rows {_alert_rows(env)}, {detections} detections, owner counts "
            f"{_owner_counts(workers)}, {copies}"
        ) from None
    wait_for(
        lambda: _owner_counts(workers) == (detections, 2 * detections),
        30,
        "the owner's counts: each detection raised once, the other copies dropped",
    )
    published = [json.loads(m.value) for m in env.consume(ALERTS, 10**6, timeout_s=3)]
    drift = [a for a in published if a["rule_id"] == RULE]
    # new once; escalated every third repeat (escalate_every: 3), yellow to orange to red
    steps = min((detections - 1) // 3, 2)
    assert [a["status"] for a in drift] == ["new"] + ["escalated"] * steps, drift
    assert {(a["subject_type"], a["subject_id"], a["domain"]) for a in drift} == {
        ("model", "risk", "model_health")
    }
    first = drift[0]["evidence"]
    assert first["detector"] == "ADWIN" and first["error_mean"] > first["error_mean_before"]

    # a worker crashes and comes back: it replays the stream and sends every detection again
    workers[1].kill()
    workers[1] = env.worker(name="w1", **NO_CHECKPOINT)
    wait_for(lambda: _learned(workers, end), 180, "the restarted worker learned again")
    wait_for(lambda: set(_detections(env).values()) == {4}, 60, "the replayed detections sent")
    owner_settled = [n for _, n in _alert_rows(env)]
    assert owner_settled == [detections], owner_settled
    again = [json.loads(m.value) for m in env.consume(ALERTS, 10**6, timeout_s=3)]
    assert [a for a in again if a["rule_id"] == RULE] == drift


# ------------------------------------------------------------------------------ input drift

PER_MINUTE, MINUTES, JUMP_AT = 30, 40, 20
POOL_WAIT = {"drift_pool_wait_s": 86400.0}  # the owner waits for both partitions' minutes


def _amounts_jump() -> list[dict[str, Any]]:
    """Transactions of customers seen once (their velocity stays the same) on both
    partitions, amounts ten times higher from minute ``JUMP_AT``; then one transaction per
    partition well later, which closes every minute on both."""
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
    txns = []
    for m in range(MINUTES):
        for k in range(PER_MINUTE):
            txns.append(
                f.transaction(
                    event_id=f"ij-{m}-{k}",
                    customer_id=f"ij-{m}-{k}",
                    ts=(start + timedelta(minutes=m, seconds=2 * k)).isoformat(),
                    amount=round((80.0 if m < JUMP_AT else 800.0) * (1 + 0.01 * (k % 7)), 2),
                )
            )
    closers = {}
    for k in range(100):
        cid = f"ij-close-{k}"
        closers.setdefault(key_partition(cid.encode(), 2), cid)
    for cid in closers.values():
        txns.append(
            f.transaction(customer_id=cid, ts=(start + timedelta(minutes=MINUTES + 5)).isoformat())
        )
    return txns


def _offline_alerts(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The input-drift alerts of the same transactions replayed offline, partitioned as the
    broker partitions them, every internal message fed back at once."""
    settings = Settings(
        restore_model_checkpoints=False, satisfaction_checkpoint_every=0, topic_partitions=2,
        **POOL_WAIT,
    )  # fmt: skip
    loop = Loopback(Pipeline(settings, default_stages))
    offsets = Counter[int]()
    records = []
    for e in events:
        p = key_partition(e["customer_id"].encode(), 2)
        records.append(RawRecord(TRANSACTIONS, p, offsets[p], f.encode(e)))
        offsets[p] += 1
    outs = [
        o
        for k in range(0, len(records), 100)
        for o in loop.process("transaction", records[k : k + 100])
    ]
    return [
        json.loads(m.value or b"")
        for o in outs
        for m in o.messages
        if m.topic == ALERTS and json.loads(m.value or b"")["rule_id"].startswith("drift.")
    ]


def test_an_amount_jump_over_two_workers_raises_the_alert_one_worker_would(env):
    events = _amounts_jump()
    expected = _offline_alerts(events)
    assert [(a["rule_id"], a["status"]) for a in expected] == [("drift.amount_cny", "new")]
    workers = [env.worker(name=f"w{k}", **POOL_WAIT) for k in range(2)]
    wait_for(lambda: all(w.stats() for w in workers), 90, "two workers running")
    _send(env, TRANSACTIONS, events)
    env.wait_rows("risk_scores", len(events), timeout_s=180)

    def raised() -> list[dict[str, Any]]:
        published = [json.loads(m.value) for m in env.consume(ALERTS, 10**6, timeout_s=3)]
        return [a for a in published if a["rule_id"].startswith("drift.")]

    got = wait_for(raised, 120, "the input-drift alert")
    keys = ("rule_id", "status", "subject_id", "alert_id", "first_seen", "evidence")
    assert [{k: a[k] for k in keys} for a in got] == [{k: a[k] for k in keys} for a in expected]
