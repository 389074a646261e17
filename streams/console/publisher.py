"""Publishes console actions: the action on ``finpulse.alert_actions``, and a verdict's fraud
label on ``finpulse.feedback`` keyed by the customer (as upstream labels are), so the worker
that holds the customer's pending transactions learns from it."""

from __future__ import annotations

from typing import Any

from finpulse.config.settings import Settings
from finpulse.models.actions import AlertAction, verdict_feedback
from finpulse.streams.core.aiokafka_options import aiokafka_options
from finpulse.streams.core.topics import ALERT_ACTIONS, FEEDBACK


class ActionPublisher:
    """An aiokafka producer (``acks=all``); :meth:`start` before use. Not the idempotent
    producer (its InitProducerId fails on Tansu): a retried send may duplicate a message,
    which the deterministic action and feedback ids absorb (one row; one label, the second
    finds no pending transaction)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: Any = None

    async def start(self) -> None:
        from aiokafka import AIOKafkaProducer

        self._producer = AIOKafkaProducer(
            acks="all",
            request_timeout_ms=10_000,
            **aiokafka_options(self.settings),  # type: ignore[arg-type]
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def publish(self, action: AlertAction) -> None:
        """Send the action (and its fraud label, if a verdict) and wait for the broker."""
        key = (action.customer_id or action.subject_id or action.rule_id).encode()
        await self._producer.send_and_wait(
            ALERT_ACTIONS, action.model_dump_json().encode(), key=key
        )
        feedback = verdict_feedback(action)
        if feedback is not None:
            await self._producer.send_and_wait(
                FEEDBACK, feedback.model_dump_json().encode(), key=feedback.customer_id.encode()
            )
