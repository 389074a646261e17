"""The channel owner inside the real pipeline: contacts spread over partitions are judged
pooled, once per channel (default stages, MemoryState, explicit times)."""

from __future__ import annotations

import copy
import json

from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.topics import ALERTS, CHANNEL_MINUTES
from finpulse.streams.stages.service.channel_level import ChannelLevelStage
from finpulse.streams.stages.service.names import RULE_SLA
from tests.service_helpers import Driver, at, contact

PARTITIONS = 4


def _spread_outage(d: Driver, clean: int = 3, down: int = 6) -> None:
    """One call-centre contact per partition and minute: too few for any partition alone
    (3 contacts in a 2-minute window), an outage for the channel."""
    for m in range(clean + down + 2):
        wait = 240.0 if clean <= m < clean + down else 5.0
        for p in range(PARTITIONS):
            ev = contact(f"c-{m}-{p}", at(minutes=m, seconds=5 + 10 * p), wait_seconds=wait)
            d.interactions([ev], partition=p)


def _published_sla(d: Driver) -> list[dict]:
    alerts = [json.loads(m.value) for o in d.outputs for m in o.messages if m.topic == ALERTS]
    return [a for a in alerts if a["rule_id"] == RULE_SLA and a["status"] == "new"]


def test_an_outage_thin_on_every_partition_is_seen_pooled_and_alerted_once():
    d = Driver(topic_partitions=PARTITIONS, service_pool_wait_s=600)
    _spread_outage(d)
    cands = d.candidates(RULE_SLA)
    assert cands, "no SLA candidate"
    first = cands[0]
    assert first.evidence["consecutive_below_target"] == 3
    assert first.context["contacts"] == 2 * PARTITIONS  # the 2-minute window, all partitions
    assert first.context["answered_in_sl"] == 0
    # from minute 3 every contact waits; minute 3's window still holds minute 2's quick
    # answers, so minutes 4, 5, 6 breach; minute 6 closes at 7:00 + 20 s grace
    assert first.ts.isoformat() == at(minutes=7, seconds=20)
    assert first.source_event_id.startswith("call_center|p")
    [alert] = _published_sla(d)
    assert alert["subject_id"] == "call_center"


def test_a_partition_alone_with_these_contacts_raises_nothing():
    d = Driver(topic_partitions=1)
    for m in range(11):
        wait = 240.0 if 3 <= m < 9 else 5.0
        d.interactions([contact(f"c-{m}", at(minutes=m, seconds=5), wait_seconds=wait)])
    assert d.candidates(RULE_SLA) == []  # one contact a minute: never 3 in a window


def test_channel_minutes_sent_again_change_nothing():
    d = Driver(topic_partitions=PARTITIONS, service_pool_wait_s=600)
    _spread_outage(d, down=2)
    stage = next(s for s in d.pipeline.stages if isinstance(s, ChannelLevelStage))
    before = copy.deepcopy(dict(stage.channels.items()))
    sent = [m for o in d.outputs for m in o.messages if m.topic == CHANNEL_MINUTES]
    # a crashed source re-sends what it sent (at new offsets: the guard cannot skip them)
    offset = 10_000
    again = []
    for m in sent:
        again.append(RawRecord(CHANNEL_MINUTES, m.partition, offset, m.value, m.key))
        offset += 1
    outs = [d.pipeline.process("channel_minute", again)]
    assert dict(stage.channels.items()) == before
    assert [c for o in outs for c in o.candidates] == []


def test_every_minute_of_a_channel_goes_to_one_partition_whatever_its_source():
    # one partition per channel is what gives each channel a single owner (its consumer)
    d = Driver(topic_partitions=PARTITIONS, service_pool_wait_s=600)
    _spread_outage(d)
    sent = [m for o in d.outputs for m in o.messages if m.topic == CHANNEL_MINUTES]
    by_channel = {}
    for m in sent:
        by_channel.setdefault(m.key, set()).add(m.partition)
    assert all(len(parts) == 1 for parts in by_channel.values())
    assert len(by_channel) == 6
