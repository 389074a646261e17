"""Every worker reads every silence from ``finpulse.alert_actions``.

A silence may cover a whole rule, whose alerts come from every partition, so each worker
reads all partitions of the topic from the beginning with its own group-less consumer and
keeps the silences in the alert manager's :class:`~finpulse.models.silences.Silences`.
Other actions are skipped; a record that is not a valid action is logged and counted.
"""

from __future__ import annotations

import asyncio
import logging

from pydantic import ValidationError

from finpulse.config.settings import Settings
from finpulse.models.actions import AlertAction
from finpulse.models.silences import Silence, Silences
from finpulse.streams.core.aiokafka_options import aiokafka_options
from finpulse.streams.core.topics import ALERT_ACTIONS

log = logging.getLogger(__name__)


class SilenceFeed:
    """Reads ``finpulse.alert_actions`` into ``silences`` until stopped."""

    def __init__(self, settings: Settings, silences: Silences) -> None:
        self.settings = settings
        self.silences = silences
        self.read = 0
        self.invalid = 0

    async def run(self) -> None:
        """Follow the topic forever (cancel the task to stop); retries while the broker is
        unreachable."""
        from aiokafka import AIOKafkaConsumer

        while True:
            # Without a group, a subscription is every partition, read from the beginning.
            consumer = AIOKafkaConsumer(
                ALERT_ACTIONS,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                fetch_max_wait_ms=self.settings.consumer_fetch_max_wait_ms * 4,
                **aiokafka_options(self.settings),  # type: ignore[arg-type]
            )
            try:
                await consumer.start()
                while True:
                    batches = await consumer.getmany(timeout_ms=500)
                    for records in batches.values():
                        for record in records:
                            self._take(record.value)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker unreachable: try again
                log.warning("silence feed: %s; retrying", exc)
                await asyncio.sleep(1.0)
            finally:
                await consumer.stop()

    def _take(self, value: bytes | None) -> None:
        self.read += 1
        try:
            action = AlertAction.model_validate_json(value or b"")
        except ValidationError as exc:
            self.invalid += 1
            log.warning("not an alert action on %s: %s", ALERT_ACTIONS, exc.errors()[:1])
            return
        silence = Silence.of(action)
        if silence is not None:
            self.silences.add(silence)
            log.info(
                "silence %s: %s/%s until %s",
                *(silence.action_id, silence.rule_id, silence.subject_id, silence.ends),
            )
