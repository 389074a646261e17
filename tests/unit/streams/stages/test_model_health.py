"""Model-health alerts raised once: the supervised error's drift detected on the learning
stream (the same detections in every worker, and after a restore from a checkpoint), sent to
``finpulse.model_health`` and raised by the model's owner once per detection, however many
copies arrive and in whatever order."""

from __future__ import annotations

import json
import pickle
from typing import Any

import numpy as np

from finpulse.config.policy import load_policy
from finpulse.config.settings import Settings
from finpulse.models.evaluation import DriftMonitor
from finpulse.models.learning import Example, ExampleBatch, encode_batch
from finpulse.models.packing import pack_rows
from finpulse.models.risk import SUPERVISED_NAMES
from finpulse.models.stream_drift import ErrorDrift
from finpulse.sinks.checkpoints import MemoryCheckpoints, checkpoint_row
from finpulse.sinks.tables import ALERTS_TABLE, MODEL_CHECKPOINTS_TABLE
from finpulse.streams.core.batch import BatchOutput, Outgoing
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.partitioning import key_partition
from finpulse.streams.core.state import MemoryState
from finpulse.streams.core.topics import ALERTS, MODEL_HEALTH
from finpulse.streams.stages import alerting, model_health
from finpulse.streams.stages.risk import STATE_NAME, RiskStage
from finpulse.streams.worker.pipeline import Pipeline

T0_MS = 1_796_000_000_000  # 2026-11-30
PER_RECORD = 40
GOOD, FLIPPED = 15, 15
PARTITIONS = 2


def settings(**over: Any) -> Settings:
    return Settings(restore_model_checkpoints=False, topic_partitions=PARTITIONS, **over)


def learning_stream(phases: tuple[int, ...] = (GOOD, FLIPPED), seed: int = 4) -> list[bytes]:
    """Records of labelled examples: fraud is a high first input, then, after each phase of
    so many records, the labels flip, so the model learned so far is wrong."""
    rng = np.random.default_rng(seed)
    flips = np.cumsum(phases)
    records = []
    for r in range(int(flips[-1])):
        X = rng.normal(size=(PER_RECORD, len(SUPERVISED_NAMES)))
        flipped = np.searchsorted(flips, r, side="right") % 2 == 1
        y = (X[:, 0] <= 1.0) if flipped else (X[:, 0] > 1.0)
        examples = [
            Example(0, r * PER_RECORD + i, f"t-{r}-{i}", float(label), inputs,
                    T0_MS + (r * PER_RECORD + i) * 1000)
            for i, (label, inputs) in enumerate(zip(y, pack_rows(X, "e"), strict=True))
        ]  # fmt: skip
        records.append(encode_batch(ExampleBatch(examples)))
    return records


def risk_stage(store: MemoryCheckpoints | None = None, **over: Any) -> RiskStage:
    stage = RiskStage(settings(**over), MemoryState(STATE_NAME), checkpoints=store)
    stage.restore()
    return stage


def learn(stage: RiskStage, stream: list[bytes]) -> BatchOutput:
    """Learn the stream from the stage's position on, as a worker's learning feed does."""
    out = BatchOutput()
    for offset in range(stage.learning_offset(), len(stream)):
        stage.learn(offset, stream[offset], out)
    return out


def detections(out: BatchOutput) -> list[Outgoing]:
    return [m for m in out.messages if m.topic == MODEL_HEALTH]


def ids(messages: list[Outgoing]) -> list[str]:
    return [json.loads(m.value or b"")["event_id"] for m in messages]


# ------------------------------------------------------------- detected on the learning stream


def test_the_error_drift_is_detected_on_the_learning_stream_after_the_labels_flip():
    stage = risk_stage()
    sent = detections(learn(stage, learning_stream()))
    assert sent, "no detection"
    first = json.loads(sent[0].value or b"")
    assert first["model"] == "risk" and first["detector"] == "supervised_error"
    assert first["stream_offset"] >= GOOD  # after the flip, not before
    assert first["event_id"] == f"risk|supervised_error|{first['stream_offset']}|{first['index']}"
    assert {m.key for m in sent} == {b"risk"}
    assert {m.partition for m in sent} == {key_partition(b"risk", PARTITIONS)}
    assert stage.counts["drift_detections"] == len(sent)


def test_every_worker_sends_the_same_detections():
    stream = learning_stream()
    a, b = risk_stage(), risk_stage()
    assert detections(learn(a, stream)) == detections(learn(b, stream))


def test_a_worker_restored_from_a_checkpoint_sends_the_same_detections_after_it():
    stream = learning_stream()
    a = risk_stage(risk_checkpoint_every_labels=PER_RECORD * (GOOD + 2))
    out = learn(a, stream)
    (row,) = out.rows[MODEL_CHECKPOINTS_TABLE]  # after record GOOD + 1, amid the drift
    store = MemoryCheckpoints()
    store.save_row(row)
    restored = risk_stage(store)
    assert restored.learning_offset() == GOOD + 2
    after = [m for m in detections(out) if json.loads(m.value or b"")["stream_offset"] >= GOOD + 2]
    assert detections(learn(restored, stream)) == after


def test_a_format_3_checkpoint_is_migrated_with_a_fresh_detector_at_its_position(caplog):
    stream = learning_stream()
    old = risk_stage()
    learn(old, stream[:5])
    models = pickle.loads(pickle.dumps(old.m))
    del models.error_drift  # as a format-3 pickle has it, with the per-worker detectors
    models.drift = DriftMonitor()
    store = MemoryCheckpoints()
    store.save_row(checkpoint_row("risk", "risk-v1+200", 200, {"format": 3, "models": models}))
    with caplog.at_level("INFO"):
        restored = risk_stage(store)
    assert "migrating a risk checkpoint of format 3" in caplog.text
    assert restored.learning_offset() == 5 and restored.m.error_drift.fed == 0
    assert isinstance(restored.m.error_drift, ErrorDrift) and not hasattr(restored.m, "drift")
    learn(restored, stream)  # it goes on learning and detecting
    assert restored.m.error_drift.fed == PER_RECORD * (GOOD + FLIPPED - 5)


# ------------------------------------------------------------------------ raised by the owner


class Owner:
    """The worker owning the model's partition of finpulse.model_health: the model-health
    stage, then the alert manager, on one pipeline (its keyed state in memory)."""

    def __init__(self) -> None:
        policy = load_policy()

        def stages(s: Settings, state: Any) -> tuple[Any, ...]:
            return (
                model_health.ModelHealthStage(
                    s, policy, state(model_health.STATE_NAME, model_health.ModelHealthRecord)
                ),
                alerting.AlertStage(policy, state(alerting.STATE_NAME, alerting.AlertState)),
            )

        self.pipeline = Pipeline(settings(), stages)
        self.stage = self.pipeline.stages[0]
        self.offset = 0

    def consume(self, messages: list[Outgoing], batch: int = 3) -> list[BatchOutput]:
        outs = []
        for k in range(0, len(messages), batch):
            raws = []
            for m in messages[k : k + batch]:
                raws.append(RawRecord(MODEL_HEALTH, m.partition or 0, self.offset, m.value))
                self.offset += 1
            outs.append(self.pipeline.process("model_detection", raws))
        return outs


def published(outs: list[BatchOutput]) -> list[dict[str, Any]]:
    return [json.loads(m.value or b"") for o in outs for m in o.messages if m.topic == ALERTS]


def candidates(outs: list[BatchOutput]) -> list[str]:
    return [c.source_event_id or "" for o in outs for c in o.candidates]


def test_three_workers_copies_and_a_replay_raise_each_detection_once():
    stream = learning_stream()
    sent = [detections(learn(risk_stage(), stream)) for _ in range(3)]
    n = len(sent[0])
    assert n >= 1
    # the copies interleave on the topic; one worker replays its stream after a restart
    interleaved = [m for trio in zip(*sent, strict=True) for m in trio] + sent[0]
    owner = Owner()
    outs = owner.consume(interleaved)
    assert candidates(outs) == ids(sent[0])  # one per detection, in stream order
    assert owner.stage.counts["model_health.raised"] == n
    assert owner.stage.counts["model_health.repeated"] == 3 * n
    alerts = published(outs)
    assert [a["rule_id"] for a in alerts][:1] == ["drift.supervised_error"]
    assert {a["subject_id"] for a in alerts} == {"risk"}
    assert alerts[0]["domain"] == "model_health" and alerts[0]["status"] == "new"
    rows = [r for o in outs for r in o.rows.get(ALERTS_TABLE, [])]
    occurrences = ALERTS_TABLE.columns.index("occurrences")
    assert max(r[occurrences] for r in rows) == n  # every detection counted once


def test_an_older_detection_arriving_after_a_newer_one_is_not_raised():
    stream = learning_stream((GOOD, FLIPPED, FLIPPED))
    sent = detections(learn(risk_stage(), stream))
    assert len(sent) >= 2, "the stream should drift twice"
    owner = Owner()
    outs = owner.consume([sent[1], sent[0]], batch=1)
    assert candidates(outs) == ids(sent[1:2])


def test_a_restarted_owner_raises_nothing_again():
    stream = learning_stream()
    sent = detections(learn(risk_stage(), stream))
    owner = Owner()
    first = owner.consume(sent)
    # the owner's state is restored (changelog) while the input is re-delivered from an
    # earlier committed offset: the guard and the raised positions both hold
    again = Owner()
    for st_new, st_old in zip(again.pipeline.states, owner.pipeline.states, strict=True):
        for key, value in st_old.items():
            st_new.put(key, value, RawRecord(MODEL_HEALTH, 0, 0, b""))
    again.pipeline.offsets.put("0", {}, RawRecord(MODEL_HEALTH, 0, 0, b""))  # guard lost
    assert candidates(again.consume(sent)) == []
    assert candidates(first) == ids(sent)


def test_a_detection_of_an_unknown_rule_is_logged_not_raised(caplog):
    owner = Owner()
    value = json.dumps(
        {"event_id": "risk|mystery|3|1", "ts": "2026-11-30T02:00:00+00:00", "model": "risk",
         "detector": "mystery", "stream_offset": 3, "index": 1}
    ).encode()  # fmt: skip
    with caplog.at_level("WARNING"):
        outs = owner.consume([Outgoing(MODEL_HEALTH, b"risk", value, 0)])
    assert candidates(outs) == [] and "no policy rule drift.mystery" in caplog.text


def test_a_malformed_detection_is_dead_lettered():
    owner = Owner()
    (out,) = owner.consume([Outgoing(MODEL_HEALTH, b"risk", b'{"model": "risk"}', 0)])
    assert len(out.deadletters) == 1 and out.candidates == []
