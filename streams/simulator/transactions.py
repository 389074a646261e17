"""Transaction payloads: background traffic that follows each customer's habits.

Background amounts follow each customer's own habits (a lognormal per segment and type) up to
just under the regulatory reporting thresholds: a draw at or above a threshold is drawn again,
and a customer's same-day cumulative amount stays under it. So every reportable event is an
injected, ground-truthed pattern, while clean customers whose habits reach that high (a shop
banking its takings, a company paying a supplier, a private client buying a flat) sometimes
transact just under a threshold, as a bank's real customers do.

>>> import random
>>> from finpulse.streams.simulator.population import build_population
>>> rng = random.Random(3)
>>> pop = build_population(rng, seed=3, n_customers=100)
>>> tf = TxnFactory(rng, seed=3, population=pop)
>>> d, unusual = tf.background(pop.customers[0], 1_767_607_200_000)
>>> d["event_id"], d["customer_id"], d["amount"] > 0
('t-3-0', 'c3-000000', True)
"""

from __future__ import annotations

import bisect
import math
import random

from finpulse.streams.simulator.population import (
    AMOUNTS,
    BILL_MCC,
    DIGITAL,
    FOREIGN,
    TXN_TYPES,
    USD_CNY,
    Customer,
    Population,
)
from finpulse.streams.simulator.timeline import iso, local_day

# PBoC Order 2016 No. 3, Art. 5 (finpulse.models.large_value): RMB thresholds, and the
# tightest RMB equivalent of the USD threshold where it is tighter (cross-border: USD 10,000)
CASH_THRESHOLD = 50_000.0
TRANSFER_THRESHOLD_INDIVIDUAL = 500_000.0
TRANSFER_THRESHOLD_INSTITUTION = 2_000_000.0
TRANSFER_THRESHOLD_CROSS_BORDER = 200_000.0
CROSS_BORDER_USD_THRESHOLD = 10_000.0
INSTITUTION_USD_THRESHOLD = 200_000.0  # Art. 5(2): tighter than RMB 2,000,000 at the FX table
# background traffic keeps single amounts and same-day sums below this share of a threshold
BACKGROUND_SHARE = 0.999
BACKGROUND_REDRAWS = 8  # draws at or above the threshold are drawn again this many times


def transfer_threshold(c: Customer) -> float:
    """Large-value transfer threshold (CNY) for this customer type."""
    return TRANSFER_THRESHOLD_INDIVIDUAL if c.individual else TRANSFER_THRESHOLD_INSTITUTION


def limit_category(txn_type: str, cross_border_individual: bool = False) -> str | None:
    """Which reporting threshold a transaction type counts towards (``transfer_xb``: an
    individual's cross-border transfer, Art. 5(4))."""
    if txn_type in ("cash_deposit", "cash_withdrawal"):
        return "cash"
    if txn_type == "transfer":
        return "transfer_xb" if cross_border_individual else "transfer"
    return None


def limit_threshold_cny(c: Customer, cat: str) -> float:
    """The category's threshold in CNY, the tighter of the RMB and the USD one."""
    if cat == "cash":
        return CASH_THRESHOLD
    if cat == "transfer_xb":
        return min(TRANSFER_THRESHOLD_CROSS_BORDER, CROSS_BORDER_USD_THRESHOLD * USD_CNY)
    if cat == "transfer_usd":  # an institution's foreign-currency transfers, a class apart
        return INSTITUTION_USD_THRESHOLD * USD_CNY
    return transfer_threshold(c)


class DailyLimits:
    """Same-day (China local day) cumulative CNY amounts per customer and limit category."""

    def __init__(self) -> None:
        self._sums: dict[tuple[int, int, str], float] = {}

    def used(self, c: Customer, ms: int, cat: str) -> float:
        return self._sums.get((c.index, local_day(ms), cat), 0.0)

    def add(self, c: Customer, ms: int, cat: str, cny: float) -> None:
        key = (c.index, local_day(ms), cat)
        self._sums[key] = self._sums.get(key, 0.0) + cny


class TxnFactory:
    """Builds transaction dicts (the JSON contract) and assigns deterministic event ids."""

    def __init__(self, rng: random.Random, seed: int, population: Population) -> None:
        self.rng = rng
        self.seed = seed
        self.pop = population
        self.limits = DailyLimits()
        self._n = 0
        self._new_cp = 0

    def new_id(self) -> str:
        eid = f"t-{self.seed}-{self._n}"
        self._n += 1
        return eid

    def new_counterparty(self, prefix: str = "cpn") -> str:
        cp = f"{prefix}-{self.seed}-{self._new_cp}"
        self._new_cp += 1
        return cp

    def lognormal(self, median: float, sigma: float) -> float:
        return median * math.exp(self.rng.gauss(0.0, sigma))

    def make(
        self,
        c: Customer,
        ms: int,
        txn_type: str,
        channel: str,
        amount: float,
        direction: str,
        *,
        currency: str = "CNY",
        account: str | None = None,
        counterparty: str | None = None,
        counterparty_country: str | None = None,
        merchant_category: str | None = None,
        device: str | None = None,
        ip_country: str | None = None,
        count_limits: bool = True,
    ) -> dict[str, object]:
        """One transaction dict with exactly the contract's field names."""
        d: dict[str, object] = {
            "event_id": self.new_id(),
            "ts": iso(ms),
            "customer_id": c.customer_id,
            "customer_type": c.customer_type,
            "segment": c.segment,
            "account_id": account or c.accounts[0],
            "amount": round(max(amount, 0.01), 2),
            "currency": currency,
            "direction": direction,
            "txn_type": txn_type,
            "channel": channel,
        }
        if counterparty is not None:
            d["counterparty_id"] = counterparty
        if counterparty_country is not None:
            d["counterparty_country"] = counterparty_country
            d["cross_border"] = counterparty_country != c.home
        if merchant_category is not None:
            d["merchant_category"] = merchant_category
        if device is not None:
            d["device_id"] = device
        if ip_country is not None:
            d["ip_country"] = ip_country
        xb = c.individual and counterparty_country not in (None, c.home)
        cat = limit_category(txn_type, xb)
        if cat == "transfer" and currency != "CNY" and not c.individual:
            cat = "transfer_usd"
        if cat is not None and count_limits:
            cny = float(d["amount"]) * (USD_CNY if currency == "USD" else 1.0)  # type: ignore[arg-type]
            self.limits.add(c, ms, cat, cny)
        return d

    def _capped(
        self, c: Customer, ms: int, cat: str, cny: float, draw: tuple[float, float]
    ) -> float | None:
        """Keep background below reporting thresholds; None means 'no room today'.

        ``cny`` was drawn from the lognormal ``draw`` (median, sigma): a draw at or above the
        threshold is drawn again (the customer's own distribution, truncated under it)."""
        thr = limit_threshold_cny(c, cat)
        for _ in range(BACKGROUND_REDRAWS):
            if cny < BACKGROUND_SHARE * thr:
                break
            cny = self.lognormal(*draw)
        else:  # a customer whose habits lie above the threshold: a part of a usual amount
            cny = BACKGROUND_SHARE * thr * self.rng.uniform(0.3, 1.0)
        room = BACKGROUND_SHARE * thr - self.limits.used(c, ms, cat)
        if cny <= room:
            return cny
        if room < 0.02 * thr:
            return None
        return room * (0.3 + 0.6 * self.rng.random())

    def background(self, c: Customer, ms: int) -> tuple[dict[str, object], bool]:
        """An ordinary transaction for ``c`` at ``ms``; returns (dict, unusual-looking flag)."""
        rng = self.rng
        ttype = TXN_TYPES[bisect.bisect_left(c.txn_type_cw, rng.random() * c.txn_type_cw[-1])]
        median, sigma = AMOUNTS[c.segment][ttype]
        amount = self.lognormal(median * c.amount_scale, sigma)
        unusual = amount > 5 * median * c.amount_scale
        cat = limit_category(ttype)
        if cat is not None:
            capped = self._capped(c, ms, cat, amount, (median * c.amount_scale, sigma))
            if capped is None:
                ttype = "bill_payment"
                median, sigma = AMOUNTS[c.segment][ttype]
                amount = self.lognormal(median * c.amount_scale, sigma)
            else:
                amount = capped
        names, cw = c.txn_channel_cw[ttype]
        channel = names[bisect.bisect_left(cw, rng.random() * cw[-1])]
        currency = "CNY"
        counterparty: str | None = None
        cp_country: str | None = None
        mcc: str | None = None
        direction = "debit"
        if ttype == "card_payment":
            if rng.random() < 0.78:
                m = self.pop.merchants[c.merchants[int(rng.random() * len(c.merchants))]]
            else:
                m = self.pop.merchants[int(rng.random() * len(self.pop.merchants))]
            counterparty, mcc = m.merchant_id, m.mcc
            if m.country != "CN":
                cp_country = m.country
            elif rng.random() < 0.5:
                cp_country = "CN"
            amount = max(amount, 1.0)
            if rng.random() < 0.02:
                direction = "credit"  # refund
        elif ttype == "transfer":
            if c.segment == "nonprofit":
                direction = "credit" if rng.random() < 0.75 else "debit"
            elif c.segment == "government":
                direction = "debit" if rng.random() < 0.65 else "credit"
            else:
                direction = "debit" if rng.random() < 0.55 else "credit"
            if rng.random() < 0.86 and c.counterparties:
                counterparty, cp_country = c.counterparties[
                    int(rng.random() * len(c.counterparties))
                ]
            else:
                counterparty = self.new_counterparty()
                cp_country = c.home if rng.random() < 0.95 else rng.choice(FOREIGN)
                unusual = True
                if rng.random() < 0.3:
                    c.counterparties.append((counterparty, cp_country))
            if c.individual and cp_country != c.home:  # the tighter cross-border threshold
                capped = self._capped(
                    c, ms, "transfer_xb", amount, (median * c.amount_scale, sigma)
                )
                amount = capped if capped is not None else 100.0
            if cp_country != c.home and rng.random() < 0.5:
                currency = "USD"
                if not c.individual:  # the USD class has its own, tighter threshold
                    capped = self._capped(
                        c, ms, "transfer_usd", amount, (median * c.amount_scale, sigma)
                    )
                    amount = capped if capped is not None else 100.0
                amount /= USD_CNY
        elif ttype == "cash_deposit":
            direction = "credit"
        elif ttype == "cash_withdrawal":
            direction = "debit"
        elif ttype == "bill_payment":
            counterparty = f"biller-{int(rng.random() * 200):03d}"
            mcc = BILL_MCC[int(rng.random() * len(BILL_MCC))]
            cp_country = "CN" if rng.random() < 0.3 else None
        elif ttype == "securities_trade":
            direction = "debit" if rng.random() < 0.55 else "credit"
            r = rng.random()
            if r < 0.45:
                counterparty, cp_country = "xchg-SSE", "CN"
            elif r < 0.9 or not c.international:
                counterparty, cp_country = "xchg-SZSE", "CN"
            else:
                counterparty, cp_country = "xchg-HKEX", "HK"
        else:  # fx: amount is in a foreign currency
            direction = "debit" if rng.random() < 0.6 else "credit"
            r = rng.random()
            currency = "USD" if r < 0.8 else ("EUR" if r < 0.88 else ("HKD" if r < 0.95 else "JPY"))
            if currency == "HKD":
                amount *= 7.8
            elif currency == "JPY":
                amount *= 150.0
            counterparty = "fxdesk-" + currency
            if rng.random() < 0.2:
                cp_country = rng.choice(FOREIGN)
        device = ip_country = None
        if channel in DIGITAL:
            if channel == "api" or (channel == "web" and rng.random() < 0.3):
                device = None  # server-to-server or a browser without device binding
                ip_country = c.home
            else:
                r = rng.random()
                if r < 0.002:  # a genuinely new phone, kept afterwards
                    device = f"{c.customer_id}-d{len(c.devices)}"
                    c.devices.append(device)
                    unusual = True
                else:
                    device = c.devices[0 if r < 0.7 else int(rng.random() * len(c.devices))]
                ip_country = c.home
            if rng.random() < 0.012:  # travel or VPN
                ip_country = rng.choice(FOREIGN)
                unusual = True
        account = c.accounts[0] if rng.random() < 0.8 else rng.choice(c.accounts)
        d = self.make(
            c,
            ms,
            ttype,
            channel,
            amount,
            direction,
            currency=currency,
            account=account,
            counterparty=counterparty,
            counterparty_country=cp_country,
            merchant_category=mcc,
            device=device,
            ip_country=ip_country,
        )
        return d, unusual
