"""The notifier agent: consumes ``finpulse.alerts`` and POSTs each alert to the webhook.

It is its own agent, so a slow or failing endpoint holds back only notifications,
never scoring. An alert that still fails after the last retry becomes a dead
letter (``error_type = notify_failed``) with the alert as payload; the offset is
acknowledged only after delivery or dead-lettering (at-least-once notifications). Like the
ingest agents, it takes its messages from the bulk intake (:mod:`finpulse.streams.worker.intake`).
"""

from __future__ import annotations

import logging
from typing import Any

import faust

from finpulse.config.settings import Settings
from finpulse.sinks.webhook import WebhookNotifier
from finpulse.streams.core.batch import BatchOutput
from finpulse.streams.core.decode import RawRecord, make_deadletter
from finpulse.streams.core.topics import ALERTS
from finpulse.streams.worker.intake import acknowledger
from finpulse.streams.worker.runtime import Runtime

log = logging.getLogger(__name__)

NOTIFY_BATCH = 200


def add_notifier_agent(app: faust.App, settings: Settings, runtime: Runtime) -> Any:
    """Register the webhook agent when ``FINPULSE_WEBHOOK_URL`` is set; returns the notifier."""
    notifier = WebhookNotifier(settings)
    if not notifier.enabled:
        log.info("FINPULSE_WEBHOOK_URL not set: alerts are not sent to a webhook")
        return None
    topic = app.topic(
        ALERTS, value_serializer="raw", key_serializer="raw", partitions=settings.topic_partitions
    )

    intake = app.bulk_intake.subscribe(app, topic)  # type: ignore[attr-defined]

    async def notify(stream: faust.StreamT) -> None:
        consumer = app.consumer
        while True:
            messages = await intake.take(NOTIFY_BATCH, 0.2, consumer)
            payloads = [m.value for m in messages]
            results = await notifier.deliver(payloads)
            out = BatchOutput()
            for m, failure in zip(messages, results, strict=True):
                if failure is None:
                    continue
                record = RawRecord(m.topic, m.partition, m.offset, m.value, m.key)
                reason = (
                    f"webhook delivery failed after {failure.attempts} attempts: {failure.error}"
                )
                out.deadletters.append(
                    make_deadletter(record, "notify_failed", reason, settings.max_event_bytes)
                )
            if out.deadletters:
                log.error("%d alerts could not be delivered; dead-lettered", len(out.deadletters))
            # acknowledged after delivery or dead-lettering, through the one commit path
            await runtime.committer.submit(
                "alert", out, acknowledger(messages, consumer), urgent=True
            )
            runtime.notify_failed += len(out.deadletters)
            runtime.notified += len(payloads) - len(out.deadletters)

    app.agent(topic, name="finpulse.notify.webhook")(notify)
    return notifier
