"""Raw Kafka records to validated events, or to dead letters with a readable reason.

>>> rec = RawRecord("finpulse.feedback", 0, 7, b'{"event_id": 1}')
>>> dl = decode("feedback", rec, max_bytes=1024)
>>> dl.error_type, dl.error.split(";")[0]
('invalid_fields', 'event_id: Input should be a valid string (got 1)')
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from finpulse.models.events import EVENT_MODELS, DeadLetter, control_char_fields
from finpulse.models.ids import letter_hex
from finpulse.models.masking import Masker

MAX_REPORTED_ERRORS = 5
# Longest card-number-like run: 19 digits with a separator between each pair.
_CARD_RUN_MAX = 37


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One message as read from the broker."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None
    # The Faust event it came from (live only): state writes use its partition.
    event: Any = field(default=None, compare=False, repr=False)


def deadletter_id(topic: str, partition: int, offset: int) -> str:
    """Stable id of the dead letter for one broker position.

    >>> deadletter_id("t", 0, 1) == deadletter_id("t", 0, 1)
    True
    """
    return letter_hex(hashlib.sha1(f"{topic}/{partition}/{offset}".encode()).hexdigest())


def make_deadletter(
    record: RawRecord, error_type: str, error: str, max_bytes: int, raw_size: int | None = None
) -> DeadLetter:
    """A dead letter for ``record``; the payload is kept (base64) up to ``max_bytes``.

    ``raw_size`` is the original payload size when ``record.value`` is already a prefix.
    """
    raw = record.value or b""
    return DeadLetter(
        id=deadletter_id(record.topic, record.partition, record.offset),
        ingested_at=datetime.now(UTC),
        source_topic=record.topic,
        source_partition=record.partition,
        source_offset=record.offset,
        error_type=error_type,
        error=error,
        raw_size=len(raw) if raw_size is None else raw_size,
        raw_b64=base64.b64encode(raw[:max_bytes]).decode("ascii"),
    )


def describe_validation(exc: ValidationError) -> tuple[str, str]:
    """(error_type, readable text) for a pydantic error on a JSON payload."""
    errors = exc.errors(include_url=False)
    kinds = {e["type"] for e in errors}
    if "json_invalid" in kinds:
        msg = next(e["msg"] for e in errors if e["type"] == "json_invalid")
        return "invalid_json", msg
    if kinds & {"model_type", "model_attributes_type"}:
        return "not_an_object", "payload must be a JSON object"
    parts = []
    for e in errors[:MAX_REPORTED_ERRORS]:
        where = ".".join(str(p) for p in e["loc"]) or "payload"
        got = "" if e["type"] == "missing" else f" (got {_short(e.get('input'))})"
        parts.append(f"{where}: {e['msg']}{got}")
    if len(errors) > MAX_REPORTED_ERRORS:
        parts.append(f"... {len(errors) - MAX_REPORTED_ERRORS} more")
    return "invalid_fields", "; ".join(parts)


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def decode(
    kind: str,
    record: RawRecord,
    max_bytes: int,
    masker: Masker | None = None,
    max_ts: datetime | None = None,
) -> BaseModel | DeadLetter:
    """Parse and validate ``record`` as an event of ``kind``; never raises on bad input.

    With a ``masker`` (PCI DSS, :mod:`finpulse.models.masking`), card-number-like digit runs are
    replaced in the raw bytes *before* anything else, so the event, its error text and the
    payload kept in a dead letter are all masked; account identifiers of a valid event are
    tokenized. ``max_ts`` rejects events dated after it (clock-skew guard).
    """
    value = record.value
    if value is None or len(value) == 0:
        return make_deadletter(record, "empty", "empty payload", max_bytes)
    if len(value) > max_bytes:
        reason = f"payload of {len(value)} bytes exceeds limit {max_bytes}"
        if masker is not None:  # only the kept prefix is masked (and a card run across its end)
            kept = masker.mask_bytes(value[: max_bytes + _CARD_RUN_MAX])
            record = dataclasses.replace(record, value=kept)
        return make_deadletter(record, "too_large", reason, max_bytes, raw_size=len(value))
    size = len(value)
    if masker is not None:
        masked = masker.mask_bytes(value)
        if masked is not value:  # the dead letter keeps the masked payload
            value = masked
            record = dataclasses.replace(record, value=masked)
    try:
        value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return make_deadletter(
            record,
            "not_utf8",
            f"payload is not UTF-8: {exc.reason} at byte {exc.start}",
            max_bytes,
            raw_size=size,
        )
    try:
        event = EVENT_MODELS[kind].model_validate_json(value)
    except ValidationError as exc:
        error_type, text = describe_validation(exc)
        return make_deadletter(record, error_type, text, max_bytes, raw_size=size)
    if max_ts is not None and event.ts > max_ts:  # type: ignore[attr-defined]
        ts = event.ts.isoformat()  # type: ignore[attr-defined]
        text = f"ts: timestamp {ts} is after {max_ts.isoformat()} (now + the allowed clock skew)"
        return make_deadletter(record, "invalid_fields", text, max_bytes, raw_size=size)
    if b"\\" in value and (bad := control_char_fields(event)):
        text = "; ".join(f"{name}: control characters are not allowed" for name in bad)
        return make_deadletter(record, "invalid_fields", text, max_bytes, raw_size=size)
    return masker.mask_accounts(event) if masker is not None else event
