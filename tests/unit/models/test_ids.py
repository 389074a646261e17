"""Stored ids never read as card numbers (a PCI scanner flags Luhn-valid 13-19 digit runs)."""

from __future__ import annotations

from finpulse.models.alerts import alert_id
from finpulse.models.ids import letter_hex, no_card_runs
from finpulse.models.masking import Masker, find_card_numbers
from finpulse.streams.core.decode import deadletter_id


def test_hash_ids_and_tokens_have_no_digit_runs():
    masker = Masker(b"k")
    ids = [alert_id("r", "customer", f"c-{i}", "2026-01-01") for i in range(3000)]
    ids += [deadletter_id("finpulse.transactions", 0, i) for i in range(3000)]
    ids += [masker.account(f"a-{i}") for i in range(3000)]
    assert not find_card_numbers("\n".join(ids))
    assert not any(ch.isdigit() for i in ids for ch in i.split(":", 1)[-1].removeprefix("al-"))


def test_millisecond_ids_are_split_below_card_length():
    text = no_card_runs("risk:auc:1796115649536:40|4111111111111111111111")
    assert not find_card_numbers(text)
    assert text == "risk:auc:1796115649.536:40|4111111111.1111111111.11"
    assert no_card_runs("v123456789012") == "v123456789012"  # 12 digits stay
    assert letter_hex("0123456789abcdef") == "ghijklmnopabcdef"
