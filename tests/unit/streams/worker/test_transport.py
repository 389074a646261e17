"""The worker's consumer uses the configured fetch wait, not Faust's fixed 1,500 ms."""

from __future__ import annotations

import asyncio

from config.settings import Settings
from streams.worker.app import build_app


def test_worker_consumer_uses_the_configured_fetch_wait() -> None:
    async def created_wait() -> int:
        app = build_app(Settings(consumer_fetch_max_wait_ms=37))
        consumer = app.consumer  # Faust's Consumer of our transport
        thread = consumer._new_consumer_thread()
        kafka_consumer = thread._create_worker_consumer(app.transport)
        try:
            return int(kafka_consumer._fetch_max_wait_ms)
        finally:
            await kafka_consumer._client.close()

    assert asyncio.run(created_wait()) == 37
