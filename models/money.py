"""Amounts in CNY, the currency of the regulatory thresholds.

Rates are a fixed reference table (``FINPULSE``-independent, documented in the
README); a production deployment should feed daily reference rates. An unknown
currency gives ``None``: threshold rules then do not fire on it, and the event is
still stored and scored.

>>> to_cny(Decimal("100"), "USD")
710.0
>>> to_cny(Decimal("5"), "XYZ") is None
True
"""

from __future__ import annotations

from decimal import Decimal

# CNY per unit of currency (reference rates, late 2026 order of magnitude).
FX_TO_CNY: dict[str, float] = {
    "CNY": 1.0,
    "USD": 7.1,
    "EUR": 7.7,
    "GBP": 9.0,
    "HKD": 0.91,
    "JPY": 0.047,
    "SGD": 5.3,
    "AUD": 4.7,
    "CAD": 5.2,
    "CHF": 8.1,
    "KRW": 0.0052,
    "MOP": 0.88,
}


def to_cny(amount: Decimal | float, currency: str) -> float | None:
    rate = FX_TO_CNY.get(currency)
    return None if rate is None else round(float(amount) * rate, 6)
