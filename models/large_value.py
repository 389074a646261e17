"""Large-value criteria of PBoC Order 2016 No. 3, Art. 5, and each customer's day ledger.

Four criteria, each with an RMB threshold and a USD threshold for foreign currency:

============================================  ========  =============  ============
criterion                                     article   RMB            USD
============================================  ========  =============  ============
``cash`` (any customer)                       5(1)      50,000         10,000
``transfer_institution`` (non-individual)     5(2)      2,000,000      200,000
``transfer_individual_domestic``              5(3)      500,000        100,000
``transfer_individual_cross_border``          5(4)      200,000        10,000
============================================  ========  =============  ============

A transaction counts towards every criterion it meets (Art. 6): a transfer settled in
cash (``cash: true``, a cash remittance) meets ``cash`` and a transfer criterion.
Amounts are summed per customer, **CST calendar day**, criterion, **direction** (money
in and money out apart) and **currency class** (``rmb`` for CNY; ``fx`` for any other
currency, converted to USD with the fixed table of :mod:`finpulse.models.money`; a
currency missing from it is not counted). Sums are exact whole cents (each amount
floored to the cent). The ledger also counts, over a rolling 24 h, the transactions
just under a threshold (``near_fraction`` x threshold <= amount < threshold) of the same
criterion, direction and currency class: the structuring rules read that count.

The ledger is a small JSON record of its own, next to the feature state::

    {"d": CST day index, "t": {key: [cents, count, [transaction ids], [accounts]]},
     "nr": [[ts, key], ...]}   # near-threshold transactions of the last 24 h

with ``key`` = criterion code, direction code, currency class code (``"1cr"``: cash,
credit, RMB). Only today's sums are kept; a late transaction of an earlier day counts
alone. At most :data:`IDS_KEEP` ids per key are kept (the count stays exact).

>>> import json
>>> cfg = LargeValueConfig.from_parameters(DEFAULT_PARAMETERS)
>>> def txn(ts, amount, **kw):
...     base = {"event_id": f"t-{amount}", "ts": ts, "customer_id": "c-1",
...         "customer_type": "individual", "segment": "retail", "account_id": "a-1",
...         "amount": amount, "currency": "CNY", "direction": "debit",
...         "txn_type": "transfer", "channel": "web"}
...     return Transaction.model_validate_json(json.dumps({**base, **kw}))
>>> ledger = new_ledger()
>>> f = day_features(txn("2026-03-02T09:00:00+08:00", 300000), ledger, cfg)
>>> f["lv_transfer_individual_domestic_day_rmb"]
300000.0
>>> f = day_features(txn("2026-03-02T15:00:00+08:00", 250000), ledger, cfg)
>>> f["lv_transfer_individual_domestic_day_rmb"], f["lv_transfer_individual_domestic_ids"]
(550000.0, 't-300000 t-250000')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from types import MappingProxyType
from typing import Any, Literal

from finpulse.models.events import Transaction
from finpulse.models.money import FX_TO_CNY

CST_OFFSET_S = 8 * 3600  # China Standard Time, the day of the regulation
IDS_KEEP = 64  # transaction ids kept per (criterion, direction, currency class) and day
NEAR_KEEP = 32  # near-threshold transactions kept for the structuring counts
NEAR_WINDOW_S = 86400

Criterion = Literal[
    "cash",
    "transfer_institution",
    "transfer_individual_domestic",
    "transfer_individual_cross_border",
]
CurrencyClass = Literal["rmb", "fx"]

# criterion -> article of PBoC Order 2016 No. 3
CRITERIA: Mapping[str, str] = MappingProxyType(
    {
        "cash": "Art. 5(1)",
        "transfer_institution": "Art. 5(2)",
        "transfer_individual_domestic": "Art. 5(3)",
        "transfer_individual_cross_border": "Art. 5(4)",
    }
)
_CODE = {name: str(i) for i, name in enumerate(CRITERIA, 1)}
_NAME = {code: name for name, code in _CODE.items()}

# The regulation's thresholds (the policy file's parameters hold the values in force).
DEFAULT_PARAMETERS: Mapping[str, float] = MappingProxyType(
    {
        "lv_cash_rmb": 50_000,
        "lv_cash_usd": 10_000,
        "lv_transfer_institution_rmb": 2_000_000,
        "lv_transfer_institution_usd": 200_000,
        "lv_transfer_individual_domestic_rmb": 500_000,
        "lv_transfer_individual_domestic_usd": 100_000,
        "lv_transfer_individual_cross_border_rmb": 200_000,
        "lv_transfer_individual_cross_border_usd": 10_000,
    }
)


def threshold_parameter(criterion: str, currency_class: str) -> str:
    """The policy parameter holding a criterion's threshold.

    >>> threshold_parameter("cash", "fx")
    'lv_cash_usd'
    """
    return f"lv_{criterion}_{'rmb' if currency_class == 'rmb' else 'usd'}"


@dataclass(frozen=True)
class LargeValueConfig:
    """Thresholds per (criterion, currency class) in whole cents, and the near fraction."""

    thresholds_cents: Mapping[tuple[str, str], int]
    near_fraction: float = 0.85

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> LargeValueConfig:
        """Read every criterion's two thresholds; a missing one is an error.

        >>> LargeValueConfig.from_parameters({"lv_cash_rmb": 50000})
        Traceback (most recent call last):
        ...
        ValueError: large-value criterion 'cash' (Art. 5(1)) has no threshold: parameter lv_cash_usd
        """
        cents: dict[tuple[str, str], int] = {}
        for criterion, article in CRITERIA.items():
            for cls_ in ("rmb", "fx"):
                name = threshold_parameter(criterion, cls_)
                value = parameters.get(name)
                if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                    raise ValueError(
                        f"large-value criterion '{criterion}' ({article}) has no threshold: "
                        f"parameter {name}" + ("" if value is None else " must be a number > 0")
                    )
                cents[(criterion, cls_)] = round(value * 100)
        near = float(parameters.get("near_threshold_ratio", 0.85))
        return cls(MappingProxyType(cents), near)


def criteria_of(txn: Transaction, cross_border: bool) -> tuple[str, ...]:
    """The Art. 5 criteria ``txn`` counts towards (none, one, or two for a cash transfer).

    >>> import json
    >>> t = Transaction.model_validate_json(json.dumps({"event_id": "t", "ts":
    ...     "2026-03-02T09:00:00+08:00", "customer_id": "c", "customer_type": "individual",
    ...     "segment": "retail", "account_id": "a", "amount": 1, "currency": "CNY",
    ...     "direction": "debit", "txn_type": "transfer", "channel": "branch", "cash": True}))
    >>> criteria_of(t, cross_border=True)
    ('cash', 'transfer_individual_cross_border')
    """
    txn_type = txn.txn_type.value
    out: list[str] = []
    if txn_type in ("cash_deposit", "cash_withdrawal") or txn.cash:
        out.append("cash")
    if txn_type == "transfer":
        if txn.customer_type.value == "institution":
            out.append("transfer_institution")
        elif cross_border:
            out.append("transfer_individual_cross_border")
        else:
            out.append("transfer_individual_domestic")
    return tuple(out)


def class_amount_cents(amount: Decimal, currency: str) -> tuple[CurrencyClass, int | None]:
    """The currency class and the amount in its unit (RMB or USD), floored to the cent;
    ``None`` for a currency missing from the FX table.

    >>> class_amount_cents(Decimal("49999.999"), "CNY"), class_amount_cents(Decimal("1"), "EUR")
    (('rmb', 4999999), ('fx', 108))
    """
    if currency == "CNY":
        return "rmb", int((amount * 100).to_integral_value(ROUND_FLOOR))
    rate = FX_TO_CNY.get(currency)
    if rate is None:
        return "fx", None
    usd = amount * Decimal(str(rate)) / Decimal(str(FX_TO_CNY["USD"]))
    return "fx", int((usd * 100).to_integral_value(ROUND_FLOOR))


def cst_day_index(ts_s: float) -> int:
    """Days since 1970-01-01 in China Standard Time.

    >>> cst_day_index(1_790_000_000 - 1), cst_day_index(1_790_006_400)  # 2026-09-21 23:59:59/+1s
    (20717, 20718)
    """
    return int((ts_s + CST_OFFSET_S) // 86400)


def new_ledger() -> dict[str, Any]:
    """The ledger of a customer without large-value-relevant transactions."""
    return {"d": None, "t": {}, "nr": []}


def _day_entry(ledger: dict[str, Any], day: int, key: str) -> list[Any] | None:
    """Today's entry for ``key`` (a later day resets the ledger); None for an earlier day."""
    if ledger["d"] != day:
        if ledger["d"] is not None and day < ledger["d"]:
            return None
        ledger["d"], ledger["t"] = day, {}
    return ledger["t"].setdefault(key, [0, 0, [], []])


def _near_count(ledger: dict[str, Any], ts: int, key: str, near: bool) -> int:
    """Near-threshold transactions of ``key`` in the 24 h up to ``ts`` (this one included)."""
    recent = [e for e in ledger["nr"] if e[0] > ts - NEAR_WINDOW_S]
    if near:
        recent.append([ts, key])
        del recent[:-NEAR_KEEP]
    ledger["nr"] = recent
    return sum(1 for e in recent if e[1] == key and e[0] <= ts)


def day_features(
    txn: Transaction, ledger: dict[str, Any], config: LargeValueConfig, cross_border: bool = False
) -> dict[str, Any]:
    """Add ``txn`` to the customer's ``ledger`` (in place) and return its large-value
    features, for each criterion it meets (see :data:`LARGE_VALUE_FEATURES`)."""
    criteria = criteria_of(txn, cross_border)
    if not criteria:
        return {}
    currency_class, cents = class_amount_cents(txn.amount, txn.currency)
    if cents is None:
        return {"lv_currency_class": currency_class}
    ts = txn.ts.timestamp()
    day = cst_day_index(ts)
    direction = txn.direction.value
    unit = "rmb" if currency_class == "rmb" else "usd"
    out: dict[str, Any] = {"lv_currency_class": currency_class, "lv_day": day}
    for criterion in criteria:
        key = f"{_CODE[criterion]}{direction[0]}{currency_class[0]}"
        threshold = config.thresholds_cents[(criterion, currency_class)]
        near = config.near_fraction * threshold <= cents < threshold
        entry = _day_entry(ledger, day, key)
        if entry is None:  # a late transaction of an earlier day counts alone
            entry = [0, 0, [], []]
        entry[0] += cents
        entry[1] += 1
        if len(entry[2]) < IDS_KEEP:
            entry[2].append(txn.event_id)
        if txn.account_id not in entry[3]:
            entry[3].append(txn.account_id)
        out[f"lv_{criterion}_day_{unit}"] = entry[0] / 100
        out[f"lv_{criterion}_count"] = entry[1]
        out[f"lv_{criterion}_ids"] = " ".join(entry[2])
        out[f"lv_{criterion}_accounts"] = " ".join(entry[3])
        out[f"lv_{criterion}_near_24h"] = _near_count(ledger, int(ts), key, near)
    return out


def criterion_of_key(key: str) -> str:
    """The criterion of a ledger key (``"1cr"`` -> ``"cash"``)."""
    return _NAME[key[0]]


LARGE_VALUE_FEATURES: Mapping[str, str] = MappingProxyType(
    {
        "lv_currency_class": "rmb (CNY) or fx (any other currency, counted in USD)",
        "lv_day": "CST day index (days since 1970-01-01) the transaction counts on",
        "lv_<criterion>_day_rmb": "same-day one-sided total of the criterion in RMB, incl. this",
        "lv_<criterion>_day_usd": "the same for foreign currency, in USD",
        "lv_<criterion>_count": "transactions in that total",
        "lv_<criterion>_ids": f"their ids, space-separated (the first {IDS_KEEP})",
        "lv_<criterion>_accounts": "the (tokenized) accounts they were booked on",
        "lv_<criterion>_near_24h": "transactions just under the criterion's threshold in the "
        "last 24 h, same direction and currency class, incl. this",
    }
)
