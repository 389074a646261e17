"""PCI DSS masking: card numbers and account identifiers never leave a worker in clear.

Two transformations, both keyed (HMAC-SHA256 with ``FINPULSE_PII_KEY``) and stable, so the
same input always maps to the same token and joins, per-account features and alert dedup
keep working on the tokens:

* **card numbers** -- a run of digits, optionally separated by single spaces or dashes,
  holding a Luhn-valid number of 13-19 digits (see :func:`contains_card_number`; digit
  runs that cannot be checked cheaply -- a 20+-digit number, 64+ digits -- count too),
  anywhere in the raw payload bytes (every string field, unknown fields, even invalid
  JSON) is replaced as a whole by ``card:<12 letter-hex>``
  (hex with g–p for 0–9: :mod:`finpulse.models.ids`, so a token never reads as a card number);
* **account identifiers** (``account_id``, ``counterparty_id``) become ``acct:<16 letter-hex>``.

>>> m = Masker(b"test-key")
>>> m.mask_bytes(b'{"device_id": "4111 1111 1111 1111"}')
b'{"device_id": "card:ggaejcheoiok"}'
>>> m.mask_bytes(b'{"device_id": "4111 1111 1111 1112"}')  # not Luhn-valid: kept
b'{"device_id": "4111 1111 1111 1112"}'
>>> m.account("a-42")
'acct:pppemjelgcaeckao'
>>> m.account(m.account("a-42")) == m.account("a-42")  # idempotent on tokens
True
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from typing import Any

from finpulse.models.ids import letter_hex

log = logging.getLogger(__name__)

CARD_PREFIX = "card:"
ACCOUNT_PREFIX = "acct:"
CARD_TOKEN_HEX = 12
ACCOUNT_TOKEN_HEX = 16
MIN_CARD_DIGITS = 13
MAX_CARD_DIGITS = 19
MAX_SCAN_DIGITS = 64  # longer digit runs are masked whole, unchecked
# Used only when FINPULSE_PII_KEY is unset (local demo, tests); public, hence not secret.
DEVELOPMENT_KEY = b"finpulse-development-pii-key-not-secret"

# A candidate: >= 13 digits, each pair separated by at most one space or dash, not glued
# to further digits. Matching is on bytes, so it also covers non-UTF-8 payloads.
_CANDIDATE = re.compile(rb"(?<![0-9])[0-9](?:[ \-]?[0-9]){12,}(?![0-9])")
# A stretch of 13+ digits, spaces and dashes (no look-around). Every candidate lies inside
# one, so _CANDIDATE only runs on these stretches.
_RUN = re.compile(rb"[0-9][0-9 \-]{11,}[0-9]")
# The fast path (bytes.translate and a substring search, in C): a stretch of 13+ bytes that
# are digits, spaces or dashes, each mapped to "#"; without one, _RUN cannot match.
_RUN_CLASS = bytes(0x23 if chr(b) in "0123456789 -" else 0x2E for b in range(256))
_RUN_MIN = b"#" * 13
_DIGITS_ONLY = re.compile(rb"[^0-9]")
_SEPARATOR = re.compile(rb"[ \-]")


def luhn_valid(digits: bytes | str) -> bool:
    """True when ``digits`` (only 0-9) passes the Luhn checksum.

    >>> luhn_valid("4111111111111111"), luhn_valid("4111111111111112")
    (True, False)
    """
    total = 0
    for i, ch in enumerate(reversed(digits if isinstance(digits, str) else digits.decode())):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def contains_card_number(run: bytes) -> bool:
    """True when a digit run (digits, single spaces or dashes) holds a card number.

    A card number is a Luhn-valid sequence of 13-19 digits that is the whole run or a
    sequence of whole separator-delimited groups of it (``4111 1111 1111 1111 12/26``).
    A single group of 20+ digits, or a run of more than ``MAX_SCAN_DIGITS`` digits, counts
    as holding one without checking (it may embed a card; no field has such values), which
    keeps the work linear in the run length for hostile input.

    >>> contains_card_number(b"4111111111111111 12"), contains_card_number(b"1234567890123")
    (True, False)
    >>> contains_card_number(b"4111111111111112")  # a shorter window may pass Luhn: ignored
    False
    """
    groups = _SEPARATOR.split(run)
    digits = b"".join(groups)
    n = len(digits)
    if n > MAX_SCAN_DIGITS or any(len(g) > MAX_CARD_DIGITS for g in groups):
        return True
    if len(groups) == 1:
        return n >= MIN_CARD_DIGITS and luhn_valid(digits)
    # Luhn sums of any window in O(1): prefix sums of plain and doubled digits by parity.
    plain = [[0] * (n + 1), [0] * (n + 1)]
    doubled = [[0] * (n + 1), [0] * (n + 1)]
    for j, ch in enumerate(digits):
        d = ch - 48
        dd = 2 * d - 9 if d > 4 else 2 * d
        for p in (0, 1):
            mine = j % 2 == p
            plain[p][j + 1] = plain[p][j] + (d if mine else 0)
            doubled[p][j + 1] = doubled[p][j] + (dd if mine else 0)
    bounds = [0]
    for g in groups:
        bounds.append(bounds[-1] + len(g))
    ends = set(bounds)
    for a in bounds:
        for b in range(a + MIN_CARD_DIGITS, min(a + MAX_CARD_DIGITS, n) + 1):
            if b in ends:
                p = (b - 1) % 2  # the last digit is not doubled, nor every second one before
                total = plain[p][b] - plain[p][a] + doubled[1 - p][b] - doubled[1 - p][a]
                if total % 10 == 0:
                    return True
    return False


def find_card_numbers(text: str) -> list[str]:
    """The card-number-like runs in ``text`` (what a scanner of stored data looks for).

    >>> find_card_numbers("pay 4111-1111-1111-1111 now, ref 1234567890123")
    ['4111-1111-1111-1111']
    """
    found = []
    for match in _CANDIDATE.finditer(text.encode("utf-8", "surrogateescape")):
        if contains_card_number(match.group()):
            found.append(match.group().decode("utf-8", "replace"))
    return found


class Masker:
    """Keyed, stable masking of card numbers and account identifiers.

    The constructor only stores the key; an unbounded input space is avoided by capping
    the account-token cache.
    """

    CACHE_MAX = 200_000

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._accounts: dict[str, str] = {}

    @classmethod
    def from_settings(cls, settings: Any) -> Masker:
        """The masker of ``settings.pii_key``, or of the public development key when unset.

        >>> from finpulse.config.settings import Settings
        >>> Masker.from_settings(Settings()).account("a") == Masker(DEVELOPMENT_KEY).account("a")
        True
        """
        secret = getattr(settings, "pii_key", None)
        if secret is None or not secret.get_secret_value():
            return cls(DEVELOPMENT_KEY)
        return cls(secret.get_secret_value().encode())

    @property
    def uses_development_key(self) -> bool:
        return self._key == DEVELOPMENT_KEY

    def _digest(self, data: bytes, size: int) -> str:
        return letter_hex(hmac.new(self._key, data, hashlib.sha256).hexdigest()[:size])

    def card_token(self, digits: bytes) -> str:
        """``card:<12 letter-hex>`` for a digit string (separators removed by the caller)."""
        return CARD_PREFIX + self._digest(b"card\x00" + digits, CARD_TOKEN_HEX)

    def _replace(self, match: re.Match[bytes]) -> bytes:
        if not contains_card_number(match.group()):
            return match.group()
        return self.card_token(_DIGITS_ONLY.sub(b"", match.group())).encode()

    def mask_bytes(self, raw: bytes) -> bytes:
        """``raw`` with every card-number-like run replaced by its token (same object if none).

        >>> Masker(b"k").mask_bytes(b"no digits here") == b"no digits here"
        True
        """
        if _RUN_MIN not in raw.translate(_RUN_CLASS):
            return raw  # fast path: no run of 13+ digits/separators at all
        masked = _RUN.sub(lambda run: _CANDIDATE.sub(self._replace, run.group()), raw)
        return raw if masked == raw else masked

    def mask_text(self, text: str) -> str:
        """``text`` with card-number-like runs replaced (for log and error strings).

        >>> Masker(b"k").mask_text("card 4111111111111111 declined").startswith("card card:")
        True
        """
        raw = text.encode("utf-8", "surrogateescape")
        masked = self.mask_bytes(raw)
        return text if masked is raw else masked.decode("utf-8", "surrogateescape")

    def account(self, value: str) -> str:
        """``acct:<16 letter-hex>`` for an account identifier; tokens are returned unchanged."""
        if value.startswith(ACCOUNT_PREFIX) and len(value) == len(ACCOUNT_PREFIX) + 16:
            return value
        token = self._accounts.get(value)
        if token is None:
            token = ACCOUNT_PREFIX + self._digest(b"acct\x00" + value.encode(), ACCOUNT_TOKEN_HEX)
            if len(self._accounts) >= self.CACHE_MAX:
                self._accounts.clear()
            self._accounts[value] = token
        return token

    def mask_accounts(self, event: Any) -> Any:
        """Tokenize the account identifier fields of a freshly validated event, in place.

        >>> from tests.factories import transaction, encode
        >>> from finpulse.models.events import Transaction
        >>> t = Transaction.model_validate_json(encode(transaction(account_id="a-1")))
        >>> Masker(b"k").mask_accounts(t).account_id.startswith("acct:")
        True
        """
        d = event.__dict__
        for name in ACCOUNT_FIELDS:
            value = d.get(name)
            if value is not None:
                # In place: ``event`` was just validated by the caller and is not shared yet
                # (model_copy per event was costly in the profile, docs/benchmarks.md).
                d[name] = self.account(value)
        return event


# Fields that hold account identifiers (of the customer or the counterparty).
ACCOUNT_FIELDS = ("account_id", "counterparty_id")
