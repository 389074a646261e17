"""The risk model's input drift judged once on every partition's transactions: each
partition sends its minute sums to the model's owner, which pools them (a re-sent message
changes nothing, an idle partition holds it back only for the bounded wait) and raises one
``drift.amount_cny`` alert for a jump in amounts spread over both partitions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from finpulse.config.settings import Settings
from finpulse.models.events import ModelInputMinutes
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.partitioning import key_partition
from finpulse.streams.core.state_codec import StateCodec
from finpulse.streams.core.topics import ALERTS, MODEL_INPUTS, TRANSACTIONS
from finpulse.streams.stages.input_drift import (
    InputMinutes,
    InputPool,
    close_inputs,
    detect_inputs,
    pool_inputs,
    record_input,
)
from finpulse.streams.stages.minute_pool import MINUTE_MS
from finpulse.streams.stages.model_health import STATE_NAME, ModelHealthRecord
from finpulse.streams.worker.app import default_stages
from finpulse.streams.worker.loopback import Loopback
from finpulse.streams.worker.pipeline import Pipeline
from tests import factories as f

T0 = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)


def sent_minutes(
    minutes: int, per_minute: int, amount: Any, source: int
) -> list[ModelInputMinutes]:
    """What one partition sends for ``minutes`` minutes of ``per_minute`` transactions."""
    part, sent = InputMinutes(), []
    for m in range(minutes):
        for k in range(per_minute):
            ts = T0_MS + m * MINUTE_MS + k * (MINUTE_MS // per_minute)
            record_input(part, ts, amount(m), 0.7)
        out = close_inputs(part, "risk", source, grace_ms=20_000, partitions=2)
        if out is not None:
            sent.append(ModelInputMinutes.model_validate_json(out.value or b""))
    return sent


def jump(m: int) -> float:
    return 8.0 if m < 20 else 10.0


def feed(pool: InputPool, messages: list[ModelInputMinutes]) -> list[tuple[str, int]]:
    found = []
    for event in messages:
        pool_inputs(pool, event)
        found += [
            (d.detector, (d.minute_ms - T0_MS) // MINUTE_MS)
            for d in detect_inputs(pool, partitions=2, wait_ms=60_000)
        ]
    return found


def test_a_partition_sends_its_closed_minutes_and_loses_no_late_transaction():
    part = InputMinutes()
    record_input(part, T0_MS + 5_000, 8.0, 0.0)
    record_input(part, T0_MS + MINUTE_MS + 30_000, 9.0, 1.0)  # closes minute 0 (grace 20 s)
    first = close_inputs(part, "risk", 1, grace_ms=20_000, partitions=2)
    assert first is not None and first.partition == key_partition(b"risk", 2)
    record_input(part, T0_MS + 7_000, 10.0, 0.0)  # late: minute 0 is closed, counts in minute 1
    record_input(part, T0_MS + 2 * MINUTE_MS + 30_000, 8.0, 0.0)
    second = close_inputs(part, "risk", 1, grace_ms=20_000, partitions=2)
    assert second is not None
    minutes = [json.loads(m.value or b"")["minutes"] for m in (first, second)]
    assert [[c["transactions"] for c in ms] for ms in minutes] == [[1], [2]]
    assert minutes[1][0]["amount_sum"] == 19.0
    assert close_inputs(part, "risk", 1, grace_ms=20_000, partitions=2) is None


def test_a_jump_over_both_partitions_is_detected_once_at_the_owner():
    a = sent_minutes(40, 15, jump, 0)
    b = sent_minutes(40, 15, jump, 1)
    found = feed(InputPool(), [m for pair in zip(a, b, strict=True) for m in pair])
    assert [d for d, _ in found] == ["amount_cny"] and found[0][1] >= 20


def test_stationary_inputs_raise_nothing():
    a = sent_minutes(40, 15, lambda m: 8.0 + 0.1 * (m % 3), 0)
    b = sent_minutes(40, 15, lambda m: 8.0 + 0.1 * (m % 2), 1)
    assert feed(InputPool(), a + b) == []


def test_messages_sent_again_change_nothing():
    a = sent_minutes(40, 15, jump, 0)
    b = sent_minutes(40, 15, jump, 1)
    once = feed(InputPool(), [m for pair in zip(a, b, strict=True) for m in pair])
    twice = feed(InputPool(), [m for pair in zip(a, a, b, b, strict=True) for m in pair] + a[:5])
    assert once == twice


def test_an_idle_partition_holds_the_owner_back_only_for_the_wait():
    pool = InputPool()
    found = feed(pool, sent_minutes(40, 30, jump, 0))  # partition 1 never sends
    assert [d for d, _ in found] == ["amount_cny"]
    assert pool.fed_through_ms is not None
    assert pool.fed_through_ms == max(pool.sources.values()) - MINUTE_MS  # the 60 s wait


def test_the_owner_record_round_trips_through_the_state_codec_and_resumes():
    a = sent_minutes(40, 15, jump, 0)
    b = sent_minutes(40, 15, jump, 1)
    messages = [m for pair in zip(a, b, strict=True) for m in pair]
    straight = feed(InputPool(), messages)
    codec = StateCodec(STATE_NAME, ModelHealthRecord)
    rec = ModelHealthRecord()
    found = feed(rec.inputs, messages[:30])
    restored = codec.decode(codec.encode(rec))  # a restarted owner, from the changelog
    assert restored == rec
    assert found + feed(restored.inputs, messages[30:]) == straight


# ---------------------------------------------------------------- through the worker's stages


def transactions(minutes: int, per_minute: int) -> list[RawRecord]:
    """Transactions of customers on both partitions (one each: their hourly velocity stays
    the same); amounts jump tenfold at minute 20."""
    records, offsets = [], [0, 0]
    for m in range(minutes):
        for k in range(per_minute):
            cid = f"c-{m}-{k}"
            event = f.transaction(
                event_id=f"t-{m}-{k}",
                customer_id=cid,
                ts=(T0 + timedelta(minutes=m, seconds=k * 60 // per_minute)).isoformat(),
                amount=round((80.0 if m < 20 else 800.0) * (1 + 0.01 * (k % 5)), 2),
                channel="app",
                txn_type="card_payment",
            )
            p = key_partition(cid.encode(), 2)
            records.append(RawRecord(TRANSACTIONS, p, offsets[p], f.encode(event)))
            offsets[p] += 1
    return records


def test_an_amount_jump_spread_over_two_partitions_raises_one_alert():
    settings = Settings(
        restore_model_checkpoints=False, satisfaction_checkpoint_every=0, topic_partitions=2
    )
    loop = Loopback(Pipeline(settings, default_stages))
    records = transactions(40, 30)
    assert {r.partition for r in records} == {0, 1}
    outs = []
    for k in range(0, len(records), 50):
        outs += loop.process("transaction", records[k : k + 50])
    internal = [m for o in outs for m in o.messages if m.topic == MODEL_INPUTS]
    assert {m.key for m in internal} == {b"risk"}
    raised = [
        json.loads(m.value or b"")
        for o in outs
        for m in o.messages
        if m.topic == ALERTS and json.loads(m.value or b"")["rule_id"].startswith("drift.")
    ]
    assert [(a["rule_id"], a["subject_id"], a["status"]) for a in raised] == [
        ("drift.amount_cny", "risk", "new")
    ]
    assert raised[0]["evidence"]["minute"] >= (T0 + timedelta(minutes=20)).isoformat()


def test_the_sums_are_sent_short_enough_to_pass_the_card_number_masking():
    part = InputMinutes()
    for k in range(7):
        record_input(part, T0_MS + k * 1000, 1 / 3 + k * 1.1, 2 / 7)  # long fractions
    record_input(part, T0_MS + 2 * MINUTE_MS, 0.0, 0.0)
    sent = close_inputs(part, "risk", 0, grace_ms=20_000, partitions=2)
    assert sent is not None
    cell = json.loads(sent.value or b"")["minutes"][0]
    assert all(len(str(cell[k]).split(".")[1]) <= 4 for k in ("amount_sum", "velocity_sum"))
    pipeline = Pipeline(Settings(topic_partitions=2), lambda s, st: ())
    out = pipeline.process("model_input_minute", [RawRecord(MODEL_INPUTS, 0, 0, sent.value)])
    assert out.deadletters == [] and out.valid_count == 1


def test_more_than_a_day_of_open_minutes_closes_a_day_per_message_and_loses_none() -> None:
    # a partition whose event time jumps by days in one batch (a replay, a backlog)
    part = InputMinutes()
    start = 1_767_600_000_000
    for k in range(1700):
        record_input(part, start + k * 60_000, 1.0, 1.0)
    record_input(part, start + 4 * 86_400_000, 1.0, 1.0)
    sent = []
    while (out := close_inputs(part, "risk", 0, grace_ms=20_000, partitions=2)) is not None:
        sent.append(json.loads(out.value))
    assert [len(m["minutes"]) for m in sent] == [1440, 260, 0]  # the last: closed through
    assert sum(c["transactions"] for m in sent for c in m["minutes"]) == 1700
    assert len({m["event_id"] for m in sent}) == 3
