"""Valid event payloads for tests, with current timestamps (raw tables have a TTL)."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from typing import Any

_ids = itertools.count()


def _now() -> str:
    return datetime.now(UTC).isoformat()


def transaction(**over: Any) -> dict[str, Any]:
    n = next(_ids)
    ev = {
        "event_id": f"t-{n}",
        "ts": _now(),
        "customer_id": f"c-{n % 97}",
        "customer_type": "individual",
        "segment": "retail",
        "account_id": f"a-{n % 97}",
        "amount": 120.5,
        "currency": "CNY",
        "direction": "debit",
        "txn_type": "card_payment",
        "channel": "pos",
        "device_id": "d-1",
        "ip_country": "CN",
    }
    ev.update(over)
    return ev


def interaction(**over: Any) -> dict[str, Any]:
    n = next(_ids)
    ev = {
        "event_id": f"i-{n}",
        "ts": _now(),
        "customer_id": f"c-{n % 97}",
        "customer_type": "individual",
        "segment": "retail",
        "channel": "call_center",
        "interaction_type": "inquiry",
        "wait_seconds": 12.0,
        "handle_seconds": 240.0,
        "resolved": True,
        "sentiment": 0.2,
    }
    ev.update(over)
    return ev


def feedback(**over: Any) -> dict[str, Any]:
    n = next(_ids)
    ev = {
        "event_id": f"f-{n}",
        "ts": _now(),
        "customer_id": f"c-{n % 97}",
        "kind": "csat_survey",
        "ref_event_id": "i-0",
        "value": 4,
    }
    ev.update(over)
    return ev


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()
