"""A terminal feed of ``finpulse.alerts`` for the demo: what on-call staff would receive.

>>> format_alert({"severity": "red", "rule_id": "mule_in_out", "subject_type": "customer",
...               "subject_id": "c-9", "status": "new", "occurrences": 1,
...               "score": None, "owner": "aml-investigations", "reason_codes": []})
'  ALERT RED    mule_in_out                 customer c-9  (new, owner aml-investigations)'
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from finpulse.config.settings import Settings
from finpulse.streams.core.topics import ALERTS


def format_alert(alert: dict[str, Any]) -> str:
    score = f" score {alert['score']:.0f}" if alert.get("score") is not None else ""
    reasons = f" [{', '.join(alert['reason_codes'][:3])}]" if alert.get("reason_codes") else ""
    return (
        f"  ALERT {alert['severity'].upper():<6} {alert['rule_id']:<27} "
        f"{alert['subject_type']} {alert['subject_id']}{score}{reasons}  "
        f"({alert['status']}, owner {alert['owner']})"
    )


class AlertFeed:
    """Consumes the alerts topic in a thread; prints the first ``max_lines`` alerts."""

    def __init__(self, settings: Settings, say: Callable[[str], None], max_lines: int = 25):
        self.settings = settings
        self.say = say
        self.max_lines = max_lines
        self.by_rule: Counter[str] = Counter()
        self.by_severity: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alert-feed", daemon=True)

    def start(self) -> AlertFeed:
        self._thread.start()
        return self

    def _run(self) -> None:
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(
            ALERTS,
            bootstrap_servers=self.settings.broker_bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
            consumer_timeout_ms=300,
            **self.settings.kafka_client_kwargs(),
        )
        try:
            while not self._stop.is_set():
                for message in consumer:
                    alert = json.loads(message.value)
                    self.by_rule[alert["rule_id"]] += 1
                    self.by_severity[alert["severity"]] += 1
                    total = sum(self.by_rule.values())
                    if total <= self.max_lines:
                        self.say(format_alert(alert))
                    elif total == self.max_lines + 1:
                        self.say("  ... more alerts (counted in the summary)")
                    if self._stop.is_set():
                        break
        finally:
            consumer.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
