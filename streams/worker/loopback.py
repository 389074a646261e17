"""Offline stand-in for the internal topics: what a batch sends to ``finpulse.channel_minutes``
comes back into the same pipeline as that topic's records, at once, as the live worker that
owns the partition would consume them.

Offline replay (``finpulse evaluate-service``) and the stage tests run every partition in
one pipeline, so the channel owner's judgement runs there too.

>>> from finpulse.config.settings import Settings
>>> from finpulse.streams.worker.app import default_stages
>>> from tests import factories as f
>>> settings = Settings(restore_model_checkpoints=False, satisfaction_checkpoint_every=0)
>>> loop = Loopback(Pipeline(settings, default_stages))
>>> late = f.interaction(ts="2026-01-05T10:00:00+00:00")
>>> later = f.interaction(customer_id="c-9", ts="2026-01-05T10:05:00+00:00")
>>> outs = loop.process("interaction", [RawRecord("finpulse.interactions", 0, k, f.encode(e))
...                                     for k, e in enumerate([late, later])])
>>> len(outs), outs[1].valid_count  # the batch, then the six channels' minute counts
(2, 6)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from finpulse.streams.core.batch import BatchOutput
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.topics import INTERNAL_TOPICS
from finpulse.streams.worker.pipeline import Pipeline


class Loopback:
    """A pipeline whose internal-topic messages are fed back into it (module text)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.offsets: Counter[tuple[str, int]] = Counter()  # next offset per internal partition

    def process(self, kind: str, records: Sequence[RawRecord]) -> list[BatchOutput]:
        """The batch's output, then the outputs of the internal messages it caused (and
        theirs, in turn), one batch per internal topic and step."""
        outs = [self.pipeline.process(kind, records)]
        step = 0
        while step < len(outs):
            for topic, internal_kind in INTERNAL_TOPICS.items():
                fed = self._records(topic, outs[step])
                if fed:
                    outs.append(self.pipeline.process(internal_kind, fed))
            step += 1
        return outs

    def _records(self, topic: str, out: BatchOutput) -> list[RawRecord]:
        fed = []
        for m in out.messages:
            if m.topic != topic:
                continue
            partition = m.partition if m.partition is not None else 0
            offset = self.offsets[(topic, partition)]
            self.offsets[(topic, partition)] += 1
            fed.append(RawRecord(topic, partition, offset, m.value, m.key, None))
        return fed
