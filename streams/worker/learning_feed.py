"""Every worker learns every example: it reads a model's whole learning stream.

A stage with a learning stream (:class:`~finpulse.streams.core.batch.LearningStage`)
produces the labelled examples it joins to its output; the committer publishes them before
the input batch is acknowledged. This feed reads the stream's one partition with a
consumer outside the group (a broadcast: every worker reads every record), from the
position the stage's models have learned to (restored from their checkpoint), and hands
each record to the stage in order. What learning produces (checkpoint rows) goes through
the worker's committer like any batch; there is no input to acknowledge, since the
position lives in the models and in their checkpoints.

``caught_up`` is set once the models have learned the stream up to the end a fetch
reported (its high watermark, right on every broker): a starting worker waits for it
before its first batch, so it scores with the model the others hold. Until then the feed
looks at the high watermark after every ``CATCH_UP_POLL_MS``: a wait for records of up
to ``POLL_MS`` would hold the first batch that long when the stream is already learned.

What the stream no longer holds is said, never passed over in silence (:meth:`follow`):

- **a gap**: the stream's first record after the models' position is further on (the
  records between were removed by the stream's retention, ``FINPULSE_LEARNING_RETENTION_MS``,
  while no checkpoint was newer): logged as an error with the offsets, counted
  (``records_lost_to_retention``), and learning goes on after it: this worker's model then
  differs from the workers' that learned those records (its ``learned`` digest shows it);
- **a stream shorter than the position** (the topic was recreated): logged, counted
  (``stream_restarts``), and the stream is learned from its start;
- **a record that cannot be learned** (``stage.learn`` raises): logged with its offset,
  counted (``records_unlearnable``) and passed over: the same in every worker, so they stay
  in step. Only broker errors are retried from the models' position; any other error
  fails the task, and the worker with it (Faust stops a worker whose task crashed).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from finpulse.config.settings import Settings
from finpulse.streams.core.aiokafka_options import aiokafka_options
from finpulse.streams.core.batch import BatchOutput, LearningStage

log = logging.getLogger(__name__)

Submit = Callable[[BatchOutput], object]

POLL_MS = 500  # longest wait for records once caught up
CATCH_UP_POLL_MS = 20  # until caught up


class LearningFeed:
    """Reads ``stage.learning_topic`` into ``stage.learn`` until stopped."""

    def __init__(
        self,
        settings: Settings,
        stage: LearningStage,
        submit: Submit,
        ready: Callable[[], Awaitable[None]] | None,
    ) -> None:
        self.settings = settings
        self.stage = stage
        self.submit = submit  # stores a learning output (the worker's committer)
        self.ready = ready  # resolves once the stage's models are restored
        self.records = 0
        self.counts: Counter[str] = Counter()  # what was lost or passed over (module text)
        self.caught_up = asyncio.Event()

    async def run(self) -> None:
        """Follow the stream forever (cancel the task to stop); retries, from the models'
        position, while the broker is unreachable."""
        from aiokafka import AIOKafkaConsumer, TopicPartition
        from aiokafka.errors import KafkaError

        if self.ready is not None:
            await self.ready()
        topic = self.stage.learning_topic
        tp = TopicPartition(topic, 0)
        while True:
            consumer = AIOKafkaConsumer(
                group_id=None,
                enable_auto_commit=False,
                # a position the stream no longer holds: from its first record, and
                # follow() says what was lost
                auto_offset_reset="earliest",
                fetch_max_wait_ms=self.settings.consumer_fetch_max_wait_ms,
                **aiokafka_options(self.settings),  # type: ignore[arg-type]
            )
            try:
                await consumer.start()
                consumer.assign([tp])
                start = self.stage.learning_offset()
                consumer.seek(tp, start)
                log.info("learning %s from offset %d", topic, start)
                while True:
                    poll_ms = POLL_MS if self.caught_up.is_set() else CATCH_UP_POLL_MS
                    batches = await consumer.getmany(tp, timeout_ms=poll_ms)
                    records = batches.get(tp, [])
                    again = self.follow(
                        records, await consumer.position(tp), consumer.highwater(tp)
                    )
                    if again is not None:
                        consumer.seek(tp, again)
            except asyncio.CancelledError:
                raise
            except (KafkaError, OSError) as exc:  # the broker: try again from the position
                log.warning("learning feed %s: %r; retrying", topic, exc)
                await asyncio.sleep(1.0)
            finally:
                await consumer.stop()

    def follow(self, records: Sequence[Any], position: int, end: int | None) -> int | None:
        """Learn the ``records`` of one fetch, the consumer's ``position`` after them and the
        stream's ``end`` (high watermark; None before a fetch reported one); returns the
        offset to read from next when that is not ``position`` (a recreated stream).

        >>> from types import SimpleNamespace as Record
        >>> from finpulse.models.learning import ExampleBatch, encode_batch
        >>> from finpulse.streams.core.state import MemoryState
        >>> from finpulse.streams.stages.risk import RiskStage
        >>> stage = RiskStage(Settings(), MemoryState("risk_customers"))
        >>> feed = LearningFeed(Settings(), stage, print, None)
        >>> empty = encode_batch(ExampleBatch([]))
        >>> feed.follow([Record(offset=0, value=empty)], 1, 3), stage.learning_offset()
        (None, 1)
        >>> feed.follow([Record(offset=2, value=empty)], 3, 3), stage.learning_offset()
        (None, 3)
        >>> feed.caught_up.is_set(), dict(feed.counts)  # offset 1 was lost to the retention
        (True, {'records_lost_to_retention': 1})
        """
        topic = self.stage.learning_topic
        expected = self.stage.learning_offset()
        if end is not None and end < expected:
            log.error(
                "%s ends at offset %d, before the position %d the models learned to: the "
                "stream was recreated; learning it from its start",
                *(topic, end, expected),
            )
            self.counts["stream_restarts"] += 1
            self.stage.move_learning_to(0)
            return 0
        fresh = [r for r in records if r.offset >= expected]
        first = fresh[0].offset if fresh else position
        if first > expected:
            log.error(
                "%s: offsets %d to %d are no longer on the stream (retention %d ms): %d "
                "records this worker's models never learned; learning goes on from %d",
                *(topic, expected, first - 1, self.settings.learning_retention_ms),
                *(first - expected, first),
            )
            self.counts["records_lost_to_retention"] += first - expected
            self.stage.move_learning_to(first)
        out = BatchOutput()
        for record in fresh:
            self._learn(record, out)
        if out.rows or out.messages:
            self.submit(out)
        if end is not None and self.stage.learning_offset() >= end:
            self.caught_up.set()
        return None

    def _learn(self, record: Any, out: BatchOutput) -> None:
        offset: int = record.offset
        try:
            self.stage.learn(offset, record.value, out)
        except Exception:  # the record, not the broker: logged, counted, passed over
            log.exception("%s offset %d cannot be learned; passed over",
                          self.stage.learning_topic, offset)  # fmt: skip
            self.counts["records_unlearnable"] += 1
            if self.stage.learning_offset() <= offset:
                self.stage.move_learning_to(offset + 1)
        self.records += 1
