"""The satisfaction model's error drift, detected on its learning stream like the risk
model's: the same detections in every worker and after a restore, raised by the owner as
``drift.satisfaction_error``; a checkpoint from before the detector starts a fresh one."""

from __future__ import annotations

import json
import random
from collections import Counter

from finpulse.config.policy import load_policy
from finpulse.config.settings import Settings
from finpulse.models.learning import Example, ExampleBatch, encode_batch
from finpulse.models.stream_drift import ErrorDrift
from finpulse.sinks.checkpoints import MemoryCheckpoints, checkpoint_row
from finpulse.streams.core.batch import BatchOutput, Outgoing
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.state import MemoryState
from finpulse.streams.core.topics import MODEL_HEALTH
from finpulse.streams.stages import model_health
from finpulse.streams.stages.service.satisfaction import MODEL_NAME, Satisfaction
from finpulse.streams.worker.pipeline import Pipeline

T0_MS = 1_796_000_000_000
PER_RECORD = 20
SETTINGS = Settings(restore_model_checkpoints=False, topic_partitions=2)


def stream(good: int = 30, flipped: int = 20, seed: int = 2) -> list[bytes]:
    """Survey answers that follow the wait (short: 5, long: 1), then the reverse."""
    rng = random.Random(seed)
    records = []
    for r in range(good + flipped):
        examples = []
        for i in range(PER_RECORD):
            wait = rng.random() * 2
            happy = (wait < 1) == (r < good)
            n = r * PER_RECORD + i
            examples.append(
                Example(0, n, f"i-{n}", 5.0 if happy else 1.0, {"wait_log": wait}, T0_MS + n)
            )
        records.append(encode_batch(ExampleBatch(examples)))
    return records


def learn(sat: Satisfaction, records: list[bytes]) -> list[Outgoing]:
    out = BatchOutput()
    for offset in range(sat.position.next_offset, len(records)):
        sat.learn_examples(offset, records[offset], out)
    return [m for m in out.messages if m.topic == MODEL_HEALTH]


def test_every_worker_detects_the_same_rise_of_the_error_after_the_answers_flip():
    records = stream()
    a = learn(Satisfaction(SETTINGS, None, Counter()), records)
    b = learn(Satisfaction(SETTINGS, None, Counter()), records)
    assert a and a == b
    first = json.loads(a[0].value or b"")
    assert (first["model"], first["detector"]) == (MODEL_NAME, "satisfaction_error")
    assert first["stream_offset"] >= 30  # after the flip
    assert {m.key for m in a} == {MODEL_NAME.encode()}


def test_the_detector_is_in_the_checkpoint_and_an_older_one_starts_it_fresh():
    records = stream()
    straight = learn(Satisfaction(SETTINGS, None, Counter()), records)
    sat = Satisfaction(SETTINGS, None, Counter())
    learn(sat, records[:35])
    store = MemoryCheckpoints()
    store.save_row(checkpoint_row(MODEL_NAME, "v", 1, sat.state(), position=35))
    restored = Satisfaction(SETTINGS, None, Counter(), store)
    restored.restore()
    after = [m for m in straight if json.loads(m.value or b"")["stream_offset"] >= 35]
    assert learn(restored, records) == after
    older = {k: v for k, v in sat.state().items() if k != "error_drift"}
    store.save_row(checkpoint_row(MODEL_NAME, "v", 1, older, position=35))
    fresh = Satisfaction(SETTINGS, None, Counter(), store)
    fresh.restore()
    assert isinstance(fresh.error_drift, ErrorDrift) and fresh.error_drift.fed == 0
    assert fresh.position.next_offset == 35


def test_the_owner_raises_it_once_as_drift_satisfaction_error():
    records = stream()
    copies = [learn(Satisfaction(SETTINGS, None, Counter()), records) for _ in range(2)]
    policy = load_policy()
    stage = model_health.ModelHealthStage(SETTINGS, policy, MemoryState(model_health.STATE_NAME))
    pipeline = Pipeline(SETTINGS, lambda s, st: (stage,))
    raws = [
        RawRecord(MODEL_HEALTH, m.partition or 0, k, m.value)
        for k, m in enumerate(copies[0] + copies[1])
    ]
    out = pipeline.process("model_detection", raws)
    assert [c.rule_id for c in out.candidates] == ["drift.satisfaction_error"] * len(copies[0])
    assert {(c.subject_type, c.subject_id) for c in out.candidates} == {("model", MODEL_NAME)}
    assert policy.rule("drift.satisfaction_error").owner == "service-quality"
