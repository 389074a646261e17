"""Service x risk friction: a contact within 24 h of a risk alert on the customer.

One ``service_friction`` row per (contact, risk rule), the newest alert of each rule; the
risk alerts are those :class:`~finpulse.streams.stages.service.context.ServiceContextStage` keeps
per customer.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from finpulse.models.events import Interaction
from finpulse.sinks.tables import SERVICE_FRICTION_TABLE
from finpulse.streams.core.batch import BatchOutput
from finpulse.streams.stages.service.records import RiskAlert
from finpulse.streams.stages.service.windows import from_ms

log = logging.getLogger(__name__)


def friction_rows(
    ev: Interaction, ms: int, risks: list[RiskAlert], partition: int
) -> list[tuple[Any, ...]]:
    """Rows of a contact at ``ms`` after ``risks`` (oldest first): one per rule, the newest
    rule first, with its newest alert.

    >>> from tests.factories import encode, interaction
    >>> ev = Interaction.model_validate_json(encode(interaction(event_id="i-1")))
    >>> risks = [RiskAlert(0, "card_testing", "orange", None),
    ...          RiskAlert(1000, "card_testing", "red", 91.0)]
    >>> [(r[0], r[5], r[6], r[8]) for r in friction_rows(ev, 7_200_000, risks, 0)]
    [('i-1', 'card_testing', 'red', 7199.0)]
    """
    rules_seen: set[str] = set()
    rows = []
    for alert in reversed(risks):
        if alert.rule_id in rules_seen:
            continue
        rules_seen.add(alert.rule_id)
        rows.append(
            (
                ev.event_id,
                ev.ts,
                ev.customer_id,
                ev.segment.value,
                ev.channel.value,
                alert.rule_id,
                alert.severity,
                from_ms(alert.ms),
                (ms - alert.ms) / 1000.0,
                partition,
            )
        )
    return rows


def record_friction(
    ev: Interaction,
    ms: int,
    risks: list[RiskAlert],
    partition: int,
    out: BatchOutput,
    counts: Counter[str],
) -> None:
    """Queue the friction rows of a contact and count it if it had any.

    >>> from collections import Counter
    >>> from finpulse.models.events import Interaction
    >>> from tests.factories import encode, interaction
    >>> ev = Interaction.model_validate_json(encode(interaction()))
    >>> out, counts = BatchOutput(), Counter()
    >>> record_friction(ev, 0, [], 0, out, counts)
    >>> out.rows, counts["service.friction_contacts"]
    ({}, 0)
    """
    rows = friction_rows(ev, ms, risks, partition)
    out.add_rows(SERVICE_FRICTION_TABLE, rows)
    counts["service.friction_contacts"] += 1 if rows else 0
