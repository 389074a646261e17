"""Stateless facts of one event that rules can read, before any per-customer state.

Stateful features (windows, first-seen flags, z-scores) come from the risk and
service stages through ``BatchOutput.annotations[event_id]["features"]`` and are
merged over these.

>>> t = Transaction.model_validate_json(
...     '{"event_id": "t-1", "ts": "2026-01-05T10:00:00+00:00", "customer_id": "c-1",'
...     ' "customer_type": "individual", "segment": "retail", "account_id": "a-1",'
...     ' "amount": 60000, "currency": "CNY", "direction": "debit",'
...     ' "txn_type": "cash_deposit", "channel": "branch"}')
>>> f = base_features(t); (f["is_cash"], f["amount_cny"], f["direction"])
(True, 60000.0, 'debit')
"""

from __future__ import annotations

from typing import Any

from finpulse.models.events import Interaction, Transaction
from finpulse.models.money import to_cny

CASH_TYPES = frozenset({"cash_withdrawal", "cash_deposit"})


def base_features(event: Any) -> dict[str, Any]:
    """The event's own rule-readable facts (enums as their string values)."""
    if isinstance(event, Transaction):
        return {
            "amount_cny": to_cny(event.amount, event.currency),
            "currency": event.currency,
            "is_cash": event.txn_type.value in CASH_TYPES,
            "is_transfer": event.txn_type.value == "transfer",
            "txn_type": event.txn_type.value,
            "direction": event.direction.value,
            "channel": event.channel.value,
            "customer_type": event.customer_type.value,
            "segment": event.segment.value,
            "cross_border": bool(event.cross_border),
        }
    if isinstance(event, Interaction):
        return {
            "channel": event.channel.value,
            "interaction_type": event.interaction_type.value,
            "is_complaint": event.interaction_type.value == "complaint"
            or event.complaint_id is not None,
            "wait_seconds": event.wait_seconds,
            "handle_seconds": event.handle_seconds,
            "resolved": event.resolved,
            "transfers": event.transfers,
            "sentiment": event.sentiment,
            "customer_type": event.customer_type.value,
            "segment": event.segment.value,
        }
    return {}
