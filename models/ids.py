"""Stored identifiers that can never look like a card number.

PCI DSS scanners flag any Luhn-valid run of 13–19 digits in stored data, and so does
finpulse's own scan (:func:`finpulse.models.masking.find_card_numbers`). Hash-derived ids therefore
use hex with letters for digits, and ids built from epoch milliseconds split long digit runs.

>>> letter_hex("00ff19")
'ggffhp'
>>> no_card_runs("sla|chat|1796115600000|p1")
'sla|chat|1796115600.000|p1'
"""

from __future__ import annotations

import re

_LETTERS = str.maketrans("0123456789", "ghijklmnop")
_LONG_DIGITS = re.compile(r"[0-9]{13,}")
CHUNK = 10


def letter_hex(hexdigest: str) -> str:
    """A hex digest with the digits 0–9 written as the letters g–p (same information)."""
    return hexdigest.translate(_LETTERS)


def no_card_runs(text: str) -> str:
    """``text`` with every run of 13+ digits split by '.' into chunks of at most 10."""

    def split(match: re.Match[str]) -> str:
        run = match.group()
        return ".".join(run[i : i + CHUNK] for i in range(0, len(run), CHUNK))

    return _LONG_DIGITS.sub(split, text)
