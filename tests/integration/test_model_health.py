"""A drift of the shared risk model, raised once whatever the number of workers.

Three workers (two input partitions; every worker learns the whole learning stream) score
the same transactions; their fraud labels first follow the amount (large ones are fraud),
then flip. Every worker's detector, fed on the learning stream, finds the rise of the
supervised error at the same stream positions and sends each detection to
``finpulse.model_health``; the model's owner raises each once: one ``drift.supervised_error``
alert whose occurrences are the distinct detections. A worker killed and started again
replays the stream from its start (no checkpoint yet) and sends its detections again: the
alert does not change.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from finpulse.streams.core.topics import ALERTS, FEEDBACK, MODEL_HEALTH, RISK_EXAMPLES, TRANSACTIONS
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
        raise AssertionError(f"{exc}; rows {_alert_rows(env)}, {detections} detections") from None
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
