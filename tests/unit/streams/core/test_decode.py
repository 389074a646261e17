"""Raw bytes to events or dead letters: every failure class has its own error type."""

from __future__ import annotations

import base64

import pytest

from finpulse.models.events import DeadLetter, Transaction
from finpulse.streams.core.decode import RawRecord, deadletter_id, decode
from tests import factories as f

LIMIT = 4096


def _dl(value):
    result = decode("transaction", RawRecord("finpulse.transactions", 3, 42, value), LIMIT)
    assert isinstance(result, DeadLetter)
    return result


@pytest.mark.parametrize(
    ("value", "error_type", "fragment"),
    [
        (None, "empty", "empty"),
        (b"", "empty", "empty"),
        (b'{"event_id": ', "invalid_json", "EOF"),
        (b"\xff\xfe\xfd", "not_utf8", "UTF-8"),
        (b"[" * 5000 + b"]" * 5000, "too_large", "exceeds limit 4096"),
        (b"[" * 1000 + b"]" * 1000, "invalid_json", "recursion"),
        (b"42", "not_an_object", "JSON object"),
        (b"null", "not_an_object", "JSON object"),
        (b'{"event_id": "x"}', "invalid_fields", "ts: Field required"),
    ],
)
def test_bad_payloads_become_deadletters(value, error_type, fragment):
    dl = _dl(value)
    assert dl.error_type == error_type
    assert fragment in dl.error
    assert (dl.source_topic, dl.source_partition, dl.source_offset) == (
        "finpulse.transactions",
        3,
        42,
    )


def test_deadletter_keeps_payload_and_stable_id():
    raw = f.encode(f.transaction(amount=-3))
    dl = _dl(raw)
    assert base64.b64decode(dl.raw_b64) == raw
    assert dl.raw_size == len(raw)
    assert dl.id == deadletter_id("finpulse.transactions", 3, 42)
    assert "amount: Input should be greater than 0 (got -3)" in dl.error


def test_oversized_payload_is_truncated_in_the_deadletter():
    dl = _dl(b"x" * (LIMIT * 3))
    assert dl.raw_size == LIMIT * 3
    assert len(base64.b64decode(dl.raw_b64)) == LIMIT


def test_many_errors_are_summarised():
    dl = _dl(b"{}")
    assert dl.error.endswith("more")


def test_valid_payload_decodes():
    event = decode("transaction", RawRecord("t", 0, 0, f.encode(f.transaction())), LIMIT)
    assert isinstance(event, Transaction)
