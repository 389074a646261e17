"""Stable small-integer codes for the strings kept in keyed state.

State records (Faust changelog values) store enum values and model input names as
one-byte codes instead of strings. The tables are written out here, never derived from
enum or dict order, so a code means the same thing in every worker version: append new
names with new codes, never renumber or reuse one. ``tests/unit/models/test_codes.py`` checks
that every enum value and model input has a code.

>>> encode(TXN_TYPE, "cash_deposit"), decode(TXN_TYPE_NAMES, 3)
(3, 'cash_deposit')
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType


def _table(codes: dict[str, int]) -> Mapping[str, int]:
    if len(set(codes.values())) != len(codes) or not all(0 < c < 256 for c in codes.values()):
        raise ValueError("codes must be unique and in 1..255")
    return MappingProxyType(codes)


def _names(table: Mapping[str, int]) -> Mapping[int, str]:
    return MappingProxyType({c: n for n, c in table.items()})


SEGMENT = _table(
    {"retail": 1, "private": 2, "sme": 3, "corporate": 4, "government": 5, "nonprofit": 6}
)
CUSTOMER_TYPE = _table({"individual": 1, "institution": 2})
TXN_TYPE = _table(
    {
        "transfer": 1,
        "cash_withdrawal": 2,
        "cash_deposit": 3,
        "card_payment": 4,
        "bill_payment": 5,
        "securities_trade": 6,
        "fx": 7,
    }
)
TXN_CHANNEL = _table(
    {"app": 1, "web": 2, "branch": 3, "atm": 4, "pos": 5, "call_center": 6, "api": 7}
)
SERVICE_CHANNEL = _table({"app": 1, "web": 2, "branch": 3, "call_center": 4, "chat": 5, "email": 6})

# Risk reason codes: the model input names of finpulse.models.risk.INPUT_NAMES (+ "anomaly").
RISK_INPUT = _table(
    {
        "amount_cny": 1,
        "amount_zscore": 2,
        "txn_count_1h": 3,
        "txn_count_24h": 4,
        "txn_sum_1h_cny": 5,
        "velocity_ratio_1h": 6,
        "seconds_since_last": 7,
        "history_count": 8,
        "new_device": 9,
        "new_country": 10,
        "new_counterparty": 11,
        "new_account": 12,
        "cross_border": 13,
        "foreign_ip": 14,
        "local_night": 15,
        "tiny_card_count_10m": 16,
        "near_cash_threshold": 17,
        "near_transfer_threshold": 18,
        "near_cash_threshold_count_24h": 19,
        "near_transfer_threshold_count_24h": 20,
        "cash_same_day_cny": 21,
        "transfer_same_day_cny": 22,
        "credit_sum_1h_cny": 23,
        "debit_sum_1h_cny": 24,
        "in_out_ratio_1h": 25,
        "credit_counterparties_1h": 26,
        "in_out_ratio_24h": 27,
        "credit_counterparties_24h": 28,
        "is_cash": 29,
        "is_transfer": 30,
        "is_card": 31,
        "is_credit": 32,
        "institution": 33,
        "new_device&new_country": 34,
        "new_device&amount_zscore": 35,
        "anomaly": 36,
    }
)

# Inputs of the satisfaction model (finpulse.models.satisfaction.interaction_features).
SATISFACTION_INPUT = _table(
    {
        "wait_log": 1,
        "handle_log": 2,
        "resolved": 3,
        "fcr": 4,
        "transfers": 5,
        "sentiment": 6,
        "sentiment_missing": 7,
        "complaint": 8,
        "contacts_24h": 9,
        "recent_wait_log": 10,
        "open_complaints": 11,
        "risk_friction": 12,
        "past_csat": 13,
        "ch_app": 20,
        "ch_web": 21,
        "ch_branch": 22,
        "ch_call_center": 23,
        "ch_chat": 24,
        "ch_email": 25,
        "ch_it_inquiry": 40,
        "ch_it_complaint": 41,
        "ch_it_transaction_support": 42,
        "ch_it_account_service": 43,
        "ch_it_advisory": 44,
    }
)

SEGMENT_NAMES = _names(SEGMENT)
CUSTOMER_TYPE_NAMES = _names(CUSTOMER_TYPE)
TXN_TYPE_NAMES = _names(TXN_TYPE)
TXN_CHANNEL_NAMES = _names(TXN_CHANNEL)
SERVICE_CHANNEL_NAMES = _names(SERVICE_CHANNEL)
RISK_INPUT_NAMES = _names(RISK_INPUT)
SATISFACTION_INPUT_NAMES = _names(SATISFACTION_INPUT)


def encode(table: Mapping[str, int], name: str) -> int:
    """The code of ``name`` (KeyError names the missing entry: add it to the table)."""
    try:
        return table[name]
    except KeyError:
        raise KeyError(f"no state code for {name!r}: add one to models/codes.py") from None


def decode(names: Mapping[int, str], code: int) -> str:
    """The name of ``code``."""
    return names[code]
