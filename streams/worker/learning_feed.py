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
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

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
        ready: Callable[[], Awaitable[None]],
    ) -> None:
        self.settings = settings
        self.stage = stage
        self.submit = submit  # stores a learning output (the worker's committer)
        self.ready = ready  # resolves once the stage's models are restored
        self.records = 0
        self.caught_up = asyncio.Event()

    async def run(self) -> None:
        """Follow the stream forever (cancel the task to stop); retries, from the models'
        position, while the broker is unreachable."""
        from aiokafka import AIOKafkaConsumer, TopicPartition

        await self.ready()
        topic = self.stage.learning_topic
        tp = TopicPartition(topic, 0)
        while True:
            consumer = AIOKafkaConsumer(
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",  # a position older than the retention
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
                    self._learn(batches.get(tp, []))
                    end = consumer.highwater(tp)
                    if end is not None and self.stage.learning_offset() >= end:
                        self.caught_up.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker unreachable: try again from the position
                log.warning("learning feed %s: %s; retrying", topic, exc)
                await asyncio.sleep(1.0)
            finally:
                await consumer.stop()

    def _learn(self, records: list[object]) -> None:
        out = BatchOutput()
        for record in records:
            offset: int = record.offset  # type: ignore[attr-defined]
            if offset < self.stage.learning_offset():
                continue  # learned before a reconnect
            self.stage.learn(offset, record.value, out)  # type: ignore[attr-defined]
            self.records += 1
        if out.rows or out.messages:
            self.submit(out)
