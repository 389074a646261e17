"""The CSAT drop judged by the channel's owner on the surveys of every partition (offline:
default stages, MemoryState, explicit times), and its detector's state."""

from __future__ import annotations

import copy
import json
import random

import pytest
from river import drift

from finpulse.models.events import ChannelMinutes
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.state_codec import StateCodec
from finpulse.streams.core.topics import ALERTS, CHANNEL_MINUTES
from finpulse.streams.stages.service import csat_drop as cd
from finpulse.streams.stages.service.channel_level import ChannelLevelStage
from finpulse.streams.stages.service.names import CHANNELS_STATE, RULE_CSAT_DROP
from finpulse.streams.stages.service.records import ChannelRecord, SlaState
from finpulse.streams.stages.service.windows import MINUTE_MS, take_through
from tests import factories as f
from tests.service_helpers import Driver, at, contact

PARTITIONS = 2


def _surveyed(d: Driver, *, clean: int = 10, down: int = 10, per_minute: int = 3) -> None:
    """``per_minute`` surveyed chat contacts per partition and minute: answers of 4-5 for
    ``clean`` minutes, then 1-2 for ``down`` minutes, then quiet minutes that close them."""
    rng = random.Random(5)
    for m in range(clean + down + 3):
        for p in range(PARTITIONS):
            contacts = [
                contact(f"c-{m}-{p}-{k}", at(minutes=m, seconds=5 + k), channel="chat")
                for k in range(per_minute if m < clean + down else 1)
            ]
            d.interactions(contacts, partition=p)
            if m >= clean + down:
                continue
            answers = (4, 5) if m < clean else (1, 2)
            surveys = [
                f.feedback(
                    customer_id=c["customer_id"],
                    ref_event_id=c["event_id"],
                    ts=at(minutes=m, seconds=40 + k),
                    value=rng.choice(answers),
                )
                for k, c in enumerate(contacts)
            ]
            d.feedback(surveys, partition=p)


def _owner(d: Driver) -> ChannelLevelStage:
    return next(s for s in d.pipeline.stages if isinstance(s, ChannelLevelStage))


def test_a_drop_over_both_partitions_is_raised_once_by_the_channel_owner():
    d = Driver(topic_partitions=PARTITIONS, service_pool_wait_s=600)
    _surveyed(d)
    cands = d.candidates(RULE_CSAT_DROP)
    assert cands and {c.subject_id for c in cands} == {"chat"}
    assert all(c.source_event_id.startswith("chat|p") for c in cands)  # the owner's input
    first = cands[0]
    assert 10 <= int(first.context["minute"][14:16]) < 20  # in the drop, not before
    assert first.evidence["csat_drift_detected"] is True
    alerts = [json.loads(m.value) for o in d.outputs for m in o.messages if m.topic == ALERTS]
    new = [a for a in alerts if a["rule_id"] == RULE_CSAT_DROP and a["status"] == "new"]
    assert len(new) == 1
    rec = _owner(d).channels.get("chat")
    assert rec.csat.n > 0 and rec.surveys == {}  # every closed minute fed


def test_no_drop_no_alert_and_every_answer_is_pooled():
    d = Driver(topic_partitions=PARTITIONS, service_pool_wait_s=600)
    _surveyed(d, clean=12, down=0)
    assert d.candidates(RULE_CSAT_DROP) == []
    rec = _owner(d).channels.get("chat")
    assert rec.csat.n == 12 * PARTITIONS * 3  # every survey of both partitions, once


def test_channel_minutes_sent_again_change_no_detector():
    d = Driver(topic_partitions=PARTITIONS, service_pool_wait_s=600)
    _surveyed(d, clean=10, down=3)
    stage = _owner(d)
    before = copy.deepcopy(dict(stage.channels.items()))
    sent = [m for o in d.outputs for m in o.messages if m.topic == CHANNEL_MINUTES]
    assert any(json.loads(m.value)["surveys"] for m in sent)
    again = [
        RawRecord(CHANNEL_MINUTES, m.partition, 10_000 + i, m.value, m.key)
        for i, m in enumerate(sent)
    ]
    out = d.pipeline.process("channel_minute", again)
    assert dict(stage.channels.items()) == before
    assert out.candidates == []
    assert stage.counts["service.pooled_late_surveys"] > 0  # counted, not fed twice


def test_the_detector_survives_its_record_being_stored_and_read_back():
    codec = StateCodec(CHANNELS_STATE, ChannelRecord)
    rng = random.Random(3)
    cells = {m * MINUTE_MS: [rng.randint(8, 10) * (4 if m < 15 else 1), 2] for m in range(40)}
    through = ChannelRecord()
    restarted = ChannelRecord()
    fired_through, fired_restarted = [], []
    for m, cell in cells.items():
        cd.pool_surveys(through, source=0, cells={m: cell})
        fired_through += cd.detect(through, m)
        cd.pool_surveys(restarted, source=0, cells={m: cell})
        fired_restarted += cd.detect(restarted, m)
        restarted = codec.decode(codec.encode(restarted))  # a restart after every minute
    assert fired_through and fired_restarted == fired_through
    assert restarted == through


def test_the_stored_detector_behaves_as_river_s_own():
    rng = random.Random(8)
    values = [rng.choice([4, 5]) for _ in range(100)] + [rng.choice([1, 2]) for _ in range(60)]
    river = drift.PageHinkley(
        min_instances=cd.MIN_ANSWERS, threshold=cd.THRESHOLD, delta=cd.DELTA, mode="down"
    )
    state = cd.from_river(cd.to_river(ChannelRecord().csat), 0)
    flags, ours = [], []
    for v in values:
        river.update(v)
        flags.append(river.drift_detected)
        restored = cd.to_river(state)
        restored.update(v)
        ours.append(restored.drift_detected)
        state = cd.from_river(restored, 0)
    assert any(flags) and ours == flags


def test_a_survey_of_a_closed_minute_counts_in_the_next_open_one():
    sla = SlaState(closed_minute_ms=5 * MINUTE_MS)
    cd.record_survey(sla, "app", 2 * MINUTE_MS, 3)
    cd.record_survey(sla, "app", 6 * MINUTE_MS + 1, 5)
    assert sla.surveys == {"app": {6 * MINUTE_MS: [8, 2]}}
    assert take_through(sla.surveys, 5 * MINUTE_MS) == {} and sla.surveys
    assert take_through(sla.surveys, 6 * MINUTE_MS) == {"app": {6 * MINUTE_MS: [8, 2]}}
    assert sla.surveys == {}


def test_a_channel_minute_of_the_previous_release_has_no_surveys():
    old = (
        '{"event_id": "chat|p1|2026-01-05T10:02:00+00:00", "ts": "2026-01-05T10:03:20+00:00",'
        ' "channel": "chat", "source_partition": 1, "closed_minute": "2026-01-05T10:02:00+00:00",'
        ' "minutes": []}'
    )
    assert ChannelMinutes.model_validate_json(old).surveys == []


def test_survey_sums_off_the_scale_are_refused():
    bad = {
        "event_id": "chat|p1|x",
        "ts": at(minutes=1),
        "channel": "chat",
        "source_partition": 1,
        "closed_minute": at(),
        "minutes": [],
        "surveys": [{"minute": at(), "answers": 2, "answer_sum": 11}],
    }
    with pytest.raises(ValueError, match="answer_sum"):
        ChannelMinutes.model_validate_json(json.dumps(bad))
