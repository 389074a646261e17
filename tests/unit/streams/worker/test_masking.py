"""PCI DSS masking: card numbers and account ids never survive decoding in clear."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest

from finpulse.config.settings import Settings
from finpulse.models.events import DeadLetter, Transaction
from finpulse.models.masking import (
    ACCOUNT_PREFIX,
    CARD_PREFIX,
    Masker,
    find_card_numbers,
    luhn_valid,
)
from finpulse.streams.core.decode import RawRecord, decode
from finpulse.streams.worker.app import default_stages
from finpulse.streams.worker.pipeline import Pipeline
from tests import factories as f

# Luhn-valid test PANs of several brands and lengths (13..19 digits).
CARDS = [
    "4222222222222",  # Visa, 13
    "4111111111111111",  # Visa, 16
    "5555555555554444",  # Mastercard
    "378282246310005",  # Amex, 15
    "6011111111111117",  # Discover
    "3530111333300000",  # JCB
    "6212345678901265",  # UnionPay
    "4000000000000000006",  # 19
]
M = Masker(b"unit-test-key")


def _spaced(card: str, sep: str) -> str:
    return sep.join(card[i : i + 4] for i in range(0, len(card), 4))


@pytest.mark.parametrize("card", CARDS)
def test_test_cards_are_luhn_valid_and_off_by_one_is_not(card):
    assert luhn_valid(card)
    assert not luhn_valid(card[:-1] + str((int(card[-1]) + 1) % 10))


@pytest.mark.parametrize("card", CARDS)
@pytest.mark.parametrize("sep", ["", " ", "-"])
def test_card_numbers_are_replaced_by_a_stable_token(card, sep):
    text = f'{{"note": "pay {_spaced(card, sep)} now"}}'.encode()
    masked = M.mask_bytes(text)
    assert card.encode() not in masked.replace(b" ", b"").replace(b"-", b"")
    assert CARD_PREFIX.encode() in masked
    assert find_card_numbers(masked.decode()) == []
    # Stable: same number, same token, whatever the separators; other keys differ.
    assert masked == M.mask_bytes(f'{{"note": "pay {card} now"}}'.encode())
    assert masked != Masker(b"other").mask_bytes(text)


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-01T07:45:00.123456+00:00",  # timestamps
        "t-1234567890",  # ids
        "4111111111111112",  # Luhn-invalid
        "411111111111",  # 12 digits
        "amount 120.50, 1767607200",
    ],
)
def test_other_digit_runs_are_kept(text):
    assert M.mask_text(text) == text


@pytest.mark.parametrize(
    "text",
    [
        CARDS[1] + " 12 26",  # expiry after the number
        "0000 " + _spaced(CARDS[1], " ") + " 2026",  # groups around it
        "99" + CARDS[1] + "7123",  # glued into a run longer than 19 digits
        CARDS[1] + "-" + CARDS[2],  # two cards in one run
    ],
)
def test_card_inside_a_longer_digit_run_is_masked(text):
    assert find_card_numbers(text)
    masked = M.mask_text(text)
    assert CARD_PREFIX in masked and find_card_numbers(masked) == []


def test_account_tokens_are_stable_keyed_and_idempotent():
    token = M.account("6222020200112233")
    assert token.startswith(ACCOUNT_PREFIX) and len(token) == len(ACCOUNT_PREFIX) + 16
    assert M.account("6222020200112233") == token == M.account(token)
    assert Masker(b"other").account("6222020200112233") != token


def test_default_key_is_the_development_key_and_a_set_key_is_used():
    assert Masker.from_settings(Settings()).uses_development_key
    keyed = Masker.from_settings(Settings(pii_key="s3cret"))
    assert not keyed.uses_development_key
    assert keyed.account("a") == Masker(b"s3cret").account("a")


def _decode(value: bytes, **kw):
    return decode("transaction", RawRecord("finpulse.transactions", 0, 1, value), 4096, M, **kw)


def test_valid_event_has_tokenized_accounts_and_masked_strings():
    ev = f.transaction(
        account_id=CARDS[1],
        counterparty_id="CP-" + CARDS[2],
        device_id=_spaced(CARDS[3], " "),
        merchant_category=_spaced(CARDS[4], "-"),
    )
    t = _decode(f.encode(ev))
    assert isinstance(t, Transaction)
    assert t.account_id.startswith(ACCOUNT_PREFIX)
    assert t.counterparty_id is not None and t.counterparty_id.startswith(ACCOUNT_PREFIX)
    assert t.device_id is not None and t.device_id.startswith(CARD_PREFIX)
    assert t.merchant_category is not None and t.merchant_category.startswith(CARD_PREFIX)
    assert find_card_numbers(t.model_dump_json()) == []


@pytest.mark.parametrize(
    "value",
    [
        f.encode(f.transaction(amount=CARDS[1])),  # wrong type: error text quotes the input
        f.encode(f.transaction(channel=CARDS[2])),  # unknown enum
        f.encode(f.transaction(note=CARDS[0])),  # unknown field
        ('{"account_id": "' + CARDS[1] + '", ').encode(),  # invalid JSON
        b"\xff\xfe card " + CARDS[1].encode(),  # not UTF-8
        b"x" * 4090 + CARDS[1].encode(),  # too large, card across the kept prefix's end
    ],
)
def test_deadletters_keep_only_masked_payload_and_errors(value):
    dl = _decode(value)
    assert isinstance(dl, DeadLetter)
    raw = base64.b64decode(dl.raw_b64)
    assert find_card_numbers(raw.decode("utf-8", "replace")) == []
    assert find_card_numbers(dl.error) == []
    assert dl.raw_size == len(value)


def test_future_timestamps_beyond_the_skew_are_deadlettered():
    now = datetime(2026, 6, 1, tzinfo=UTC)
    ahead = f.encode(f.transaction(ts=(now + timedelta(hours=2)).isoformat()))
    assert isinstance(_decode(ahead, max_ts=now + timedelta(hours=3)), Transaction)
    dl = _decode(ahead, max_ts=now + timedelta(hours=1))
    assert isinstance(dl, DeadLetter) and "is after" in dl.error


def test_pipeline_uses_settings_skew_and_its_clock():
    p = Pipeline(Settings(max_future_skew_s=60), default_stages)
    ts = datetime.now(UTC) + timedelta(minutes=5)
    rec = RawRecord("finpulse.transactions", 0, 0, f.encode(f.transaction(ts=ts.isoformat())))
    assert len(p.process("transaction", [rec]).deadletters) == 1
    p.clock = lambda: ts  # replay with a reference time: deterministic
    out = p.process("transaction", [dataclasses.replace(rec, offset=1)])
    assert out.valid_count == 1
    row = next(iter(out.rows.values()))[0]
    assert not find_card_numbers(json.dumps([str(c) for c in row]))


def test_row_builders_pass_enum_values_as_plain_strings():
    # finpulse.sinks.tables relies on every event enum being a StrEnum (no per-field conversion).
    import enum

    import finpulse.models.events as ev
    from finpulse.sinks.tables import TRANSACTIONS_TABLE, transaction_row

    enums = [v for v in vars(ev).values() if isinstance(v, type) and issubclass(v, enum.Enum)]
    assert enums and all(issubclass(e, enum.StrEnum) for e in enums)
    t = Transaction.model_validate_json(f.encode(f.transaction(channel="pos")))
    row = dict(zip(TRANSACTIONS_TABLE.columns, transaction_row(t, 1, 2), strict=True))
    assert row["channel"] == "pos" and str(row["channel"]) == "pos"
    assert (row["source_partition"], row["source_offset"]) == (1, 2)
