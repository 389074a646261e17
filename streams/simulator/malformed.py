"""Malformed payloads: each one is guaranteed to fail validation by :mod:`finpulse.models.events`.

>>> import random
>>> d = {"event_id": "f-1", "ts": "2026-01-05T10:00:00.000+00:00", "customer_id": "c-1",
...      "kind": "csat_survey", "ref_event_id": "i-1", "value": 4}
>>> payload, kind, eid = corrupt(random.Random(0), "feedback", d)
>>> kind in MALFORMED_KINDS and isinstance(payload, bytes)
True
>>> corrupt(random.Random(0), "feedback", d, kind="naive_timestamp")[0][:46]
b'{"event_id":"f-1","ts":"2026-01-05T10:00:00.00'
"""

from __future__ import annotations

import json
import random

MALFORMED_KINDS = (
    "truncated_json",
    "non_utf8",
    "wrong_type",
    "missing_field",
    "out_of_range",
    "unknown_enum",
    "naive_timestamp",
    "unknown_field",
    "not_an_object",
)
_KIND_WEIGHTS = (18, 8, 16, 14, 14, 12, 10, 5, 3)

_REQUIRED = {
    "transaction": (
        "event_id", "ts", "customer_id", "customer_type", "segment", "account_id", "amount",
        "currency", "direction", "txn_type", "channel",
    ),
    "interaction": (
        "event_id", "ts", "customer_id", "customer_type", "segment", "channel",
        "interaction_type", "wait_seconds", "handle_seconds", "resolved",
    ),
    "feedback": ("event_id", "ts", "customer_id", "kind", "ref_event_id"),
}  # fmt: skip
_WRONG_TYPES = {
    "transaction": (
        ("amount", "abc"), ("amount", "12,50"), ("cross_border", "yes"), ("customer_id", 12345),
        ("amount", None),
    ),
    "interaction": (
        ("resolved", "yes"), ("wait_seconds", "12s"), ("transfers", "two"), ("transfers", 1.5),
        ("resolved", 1),
    ),
    "feedback": (("value", "five"), ("ref_event_id", 42), ("ts", 1767607200)),
}  # fmt: skip
_OUT_OF_RANGE = {
    "transaction": (
        ("amount", -120.5), ("amount", 0), ("amount", 5e12), ("amount", 12.1234567),
        ("ts", "1970-01-01T00:00:00+00:00"), ("schema_version", 2),
    ),
    "interaction": (
        ("sentiment", 3), ("sentiment", -1.5), ("wait_seconds", -5.0), ("transfers", -1),
        ("handle_seconds", 30 * 86400.0),
    ),
    "feedback": (("value", 9), ("value", 0), ("value", 3.5), ("ts", "2199-01-01T00:00:00+00:00")),
}  # fmt: skip
_UNKNOWN_ENUM = {
    "transaction": (
        ("txn_type", "crypto_swap"), ("channel", "fax"), ("segment", "vip"),
        ("direction", "sideways"), ("customer_type", "robot"), ("currency", "yuan"),
    ),
    "interaction": (
        ("channel", "carrier_pigeon"), ("interaction_type", "praise"), ("segment", "gold"),
    ),
    "feedback": (("kind", "fraud_maybe"), ("kind", "CSAT")),
}  # fmt: skip
_encode = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


def corrupt(
    rng: random.Random, kind_of_event: str, d: dict[str, object], kind: str | None = None
) -> tuple[bytes, str, str | None]:
    """Corrupt a valid event dict; returns (payload, malformed kind, event id if still readable).

    ``kind_of_event`` is ``transaction``, ``interaction`` or ``feedback``; ``d`` is not modified.
    """
    if kind is None:
        kind = rng.choices(MALFORMED_KINDS, weights=_KIND_WEIGHTS)[0]
    eid = str(d["event_id"])
    bad = dict(d)
    if kind == "truncated_json":
        raw = _encode(d).encode()
        return raw[: rng.randint(1, len(raw) - 2)], kind, None
    if kind == "non_utf8":
        cid = str(d["customer_id"]).encode()
        raw = _encode(d).encode().replace(b'"' + cid + b'"', b'"' + cid + b'\xff\xfe"', 1)
        return raw, kind, None
    if kind == "wrong_type":
        field, value = rng.choice(_WRONG_TYPES[kind_of_event])
        bad[field] = value
    elif kind == "missing_field":
        del bad[rng.choice(_REQUIRED[kind_of_event][1:])]
    elif kind == "out_of_range":
        field, value = rng.choice(_OUT_OF_RANGE[kind_of_event])
        bad[field] = value
        if field == "value":
            bad["kind"] = "csat_survey"
    elif kind == "unknown_enum":
        field, value = rng.choice(_UNKNOWN_ENUM[kind_of_event])
        bad[field] = value
    elif kind == "naive_timestamp":
        bad["ts"] = str(d["ts"]).replace("+00:00", "")
    elif kind == "unknown_field":
        bad[rng.choice(("customer_name", "amount_cny", "wait_time", "note"))] = "x"
    elif kind == "not_an_object":
        return _encode([d]).encode(), kind, None
    else:
        raise ValueError(f"unknown malformed kind {kind!r}")
    return _encode(bad).encode(), kind, eid
