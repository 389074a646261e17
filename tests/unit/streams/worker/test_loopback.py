"""The internal topic offline: channel minutes go back into the pipeline, bad ones become dead
letters, and none of them is stored as an event row."""

from __future__ import annotations

import json

from finpulse.config.settings import Settings
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.topics import CHANNEL_MINUTES
from finpulse.streams.worker.app import default_stages
from finpulse.streams.worker.loopback import Loopback
from finpulse.streams.worker.pipeline import Pipeline
from tests import factories as f

SETTINGS = Settings(
    restore_model_checkpoints=False, satisfaction_checkpoint_every=0, topic_partitions=2
)


def _minutes(**over: object) -> bytes:
    value = {
        "event_id": "chat|p0|2026-01-05T10:00:00+00:00",
        "ts": "2026-01-05T10:01:20+00:00",
        "channel": "chat",
        "source_partition": 0,
        "closed_minute": "2026-01-05T10:00:00+00:00",
        "minutes": [{"minute": "2026-01-05T10:00:00+00:00", "contacts": 3, "answered": 1}],
        **over,
    }
    return json.dumps(value).encode()


def test_a_bad_channel_minute_is_a_dead_letter_with_its_reason():
    pipeline = Pipeline(SETTINGS, default_stages)
    bad = _minutes(minutes=[{"minute": "2026-01-05T10:00:00+00:00", "contacts": 2, "answered": 5}])
    out = pipeline.process("channel_minute", [RawRecord(CHANNEL_MINUTES, 1, 0, bad, b"chat")])
    [dl] = out.deadletters
    assert dl.source_topic == CHANNEL_MINUTES and "answered exceeds contacts" in dl.error
    assert out.rows == {} and out.valid_count == 0


def test_good_channel_minutes_are_judged_not_stored():
    pipeline = Pipeline(SETTINGS, default_stages)
    out = pipeline.process(
        "channel_minute", [RawRecord(CHANNEL_MINUTES, 1, 0, _minutes(), b"chat")]
    )
    assert out.deadletters == [] and out.rows == {} and out.valid_count == 1


def test_what_a_batch_sends_comes_back_on_its_partition_in_offset_order():
    loop = Loopback(Pipeline(SETTINGS, default_stages))
    sent = []
    for k in range(4):  # each contact closes the minutes before it
        ev = f.interaction(customer_id=f"c-{k}", ts=f"2026-01-05T10:0{2 * k}:10+00:00")
        outs = loop.process("interaction", [RawRecord("finpulse.interactions", 0, k, f.encode(ev))])
        batch = [m for m in outs[0].messages if m.topic == CHANNEL_MINUTES]
        assert sum(o.valid_count for o in outs[1:]) == len(batch) == 6  # all came back
        sent.extend(batch)
    per_partition = {}
    for m in sent:
        per_partition[m.partition] = per_partition.get(m.partition, 0) + 1
    # the next offset of each internal partition is the count of what went there
    assert {p: n for (_, p), n in loop.offsets.items()} == per_partition
