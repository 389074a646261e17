"""Webhook notifier: POST each alert as JSON, retry with backoff, then give up with a reason.

Receivers get ``Content-Type: application/json``, ``X-Finpulse-Alert-Id`` (deduplicate on
it: delivery is at-least-once) and, when ``FINPULSE_WEBHOOK_SECRET`` is set,
``X-Finpulse-Signature: sha256=<hex HMAC of the body>``.

>>> sign(b'{"a": 1}', "k").startswith("sha256=")
True
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from finpulse.config.settings import Settings
from finpulse.sinks.base import Backoff

log = logging.getLogger(__name__)


def sign(body: bytes, secret: str) -> str:
    """The signature header value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class DeliveryFailure:
    payload: bytes
    error: str
    attempts: int


class WebhookNotifier:
    """Sends alert payloads to one URL; ``deliver`` never raises for a bad endpoint."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.webhook_url
        self.secret = settings.webhook_secret
        self.timeout_s = settings.webhook_timeout_s
        self.max_attempts = settings.webhook_max_attempts
        self.retry_initial_s = settings.webhook_retry_initial_s
        self.retry_max_s = settings.webhook_retry_max_s
        self.concurrency = settings.webhook_concurrency
        self._session: Any = None
        self.sent = 0
        self.failed = 0

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    async def setup(self) -> None:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s)
            )

    async def deliver(self, payloads: Sequence[bytes]) -> list[DeliveryFailure | None]:
        """POST every payload (bounded concurrency); per payload ``None`` (delivered) or the
        :class:`DeliveryFailure` after the last attempt."""
        await self.setup()
        gate = asyncio.Semaphore(self.concurrency)

        async def one(body: bytes) -> DeliveryFailure | None:
            async with gate:
                return await self._post_with_retry(body)

        results = list(await asyncio.gather(*(one(p) for p in payloads)))
        failed = sum(r is not None for r in results)
        self.sent += len(payloads) - failed
        self.failed += failed
        return results

    async def _post_with_retry(self, body: bytes) -> DeliveryFailure | None:
        backoff = Backoff(self.retry_initial_s, self.retry_max_s)
        error = ""
        for attempt in range(1, self.max_attempts + 1):
            error = await self._post(body)
            if not error:
                return None
            if attempt < self.max_attempts:
                log.warning("webhook attempt %d/%d failed: %s", attempt, self.max_attempts, error)
                await asyncio.sleep(backoff.next())
        return DeliveryFailure(body, error, self.max_attempts)

    async def _post(self, body: bytes) -> str:
        """One POST; returns an error text, or '' on success."""
        headers = {"Content-Type": "application/json"}
        with contextlib.suppress(ValueError):
            headers["X-Finpulse-Alert-Id"] = str(json.loads(body).get("alert_id", ""))
        if self.secret is not None:
            headers["X-Finpulse-Signature"] = sign(body, self.secret.get_secret_value())
        try:
            async with self._session.post(self.url, data=body, headers=headers) as resp:
                if 200 <= resp.status < 300:
                    return ""
                return f"HTTP {resp.status}"
        except TimeoutError:
            return f"timeout after {self.timeout_s}s"
        except Exception as exc:  # connection refused, DNS, TLS: all worth a retry
            return f"{type(exc).__name__}: {str(exc)[:200]}"

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
