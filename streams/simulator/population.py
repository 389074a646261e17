"""The synthetic customer population: segments, home countries, devices, habits.

>>> import random
>>> pop = build_population(random.Random(7), seed=7, n_customers=300)
>>> len(pop.customers), sorted({c.segment for c in pop.customers}) == sorted(SEGMENT_NAMES)
(300, True)
>>> pop.customers[0].customer_id
'c7-000000'
"""

from __future__ import annotations

import itertools
import math
import random
from collections import deque
from dataclasses import dataclass

from finpulse.streams.simulator.timeline import (
    INDIVIDUAL_HOURLY,
    INDIVIDUAL_WEEKEND,
    INSTITUTION_HOURLY,
    INSTITUTION_WEEKEND,
)

# segment, customer_type, population share, activity factor
SEGMENTS: tuple[tuple[str, str, float, float], ...] = (
    ("retail", "individual", 0.78, 1.0),
    ("private", "individual", 0.05, 1.6),
    ("sme", "institution", 0.10, 2.2),
    ("corporate", "institution", 0.04, 4.0),
    ("government", "institution", 0.01, 3.0),
    ("nonprofit", "institution", 0.02, 1.2),
)
SEGMENT_NAMES = tuple(s[0] for s in SEGMENTS)

TXN_TYPES = (
    "transfer",
    "cash_withdrawal",
    "cash_deposit",
    "card_payment",
    "bill_payment",
    "securities_trade",
    "fx",
)
# weights aligned with TXN_TYPES
TXN_MIX: dict[str, tuple[float, ...]] = {
    "retail": (0.18, 0.08, 0.04, 0.48, 0.15, 0.05, 0.02),
    "private": (0.25, 0.07, 0.07, 0.25, 0.08, 0.20, 0.08),
    "sme": (0.45, 0.08, 0.12, 0.12, 0.15, 0.03, 0.05),
    "corporate": (0.60, 0.01, 0.02, 0.05, 0.12, 0.08, 0.12),
    "government": (0.65, 0.01, 0.02, 0.05, 0.25, 0.01, 0.01),
    "nonprofit": (0.45, 0.05, 0.12, 0.15, 0.20, 0.01, 0.02),
}
# (median, lognormal sigma) per segment and txn type; CNY, except fx which is in USD
AMOUNTS: dict[str, dict[str, tuple[float, float]]] = {
    "retail": {
        "transfer": (1500, 1.1),
        "cash_withdrawal": (800, 0.7),
        "cash_deposit": (2000, 0.9),
        "card_payment": (120, 0.9),
        "bill_payment": (300, 0.8),
        "securities_trade": (8000, 1.0),
        "fx": (500, 0.8),
    },
    "private": {
        "transfer": (30000, 1.2),
        "cash_withdrawal": (3000, 0.7),
        "cash_deposit": (8000, 0.8),
        "card_payment": (800, 1.0),
        "bill_payment": (1500, 0.8),
        "securities_trade": (100000, 1.0),
        "fx": (10000, 0.9),
    },
    "sme": {
        "transfer": (20000, 1.2),
        "cash_withdrawal": (5000, 0.7),
        "cash_deposit": (8000, 0.7),
        "card_payment": (600, 0.9),
        "bill_payment": (3000, 0.9),
        "securities_trade": (50000, 1.0),
        "fx": (8000, 1.0),
    },
    "corporate": {
        "transfer": (150000, 1.3),
        "cash_withdrawal": (10000, 0.6),
        "cash_deposit": (12000, 0.6),
        "card_payment": (2000, 0.9),
        "bill_payment": (20000, 1.0),
        "securities_trade": (500000, 1.0),
        "fx": (50000, 1.0),
    },
    "government": {
        "transfer": (200000, 1.2),
        "cash_withdrawal": (8000, 0.6),
        "cash_deposit": (8000, 0.6),
        "card_payment": (1500, 0.8),
        "bill_payment": (30000, 1.0),
        "securities_trade": (300000, 0.9),
        "fx": (20000, 1.0),
    },
    "nonprofit": {
        "transfer": (5000, 1.2),
        "cash_withdrawal": (2000, 0.7),
        "cash_deposit": (3000, 0.8),
        "card_payment": (400, 0.9),
        "bill_payment": (2000, 0.9),
        "securities_trade": (20000, 1.0),
        "fx": (2000, 1.0),
    },
}
DIGITAL = frozenset({"app", "web", "api"})
# txn type -> channel weights; institutions use their own table
TXN_CHANNELS_IND: dict[str, dict[str, float]] = {
    "transfer": {"app": 0.55, "web": 0.22, "api": 0.03, "branch": 0.12, "call_center": 0.08},
    "cash_withdrawal": {"atm": 0.8, "branch": 0.2},
    "cash_deposit": {"atm": 0.6, "branch": 0.4},
    "card_payment": {"pos": 0.55, "app": 0.30, "web": 0.15},
    "bill_payment": {"app": 0.6, "web": 0.25, "branch": 0.05, "call_center": 0.05, "api": 0.05},
    "securities_trade": {"app": 0.65, "web": 0.3, "call_center": 0.05},
    "fx": {"app": 0.45, "web": 0.25, "branch": 0.3},
}
TXN_CHANNELS_INST: dict[str, dict[str, float]] = {
    "transfer": {"api": 0.4, "web": 0.35, "branch": 0.15, "app": 0.1},
    "cash_withdrawal": {"branch": 0.8, "atm": 0.2},
    "cash_deposit": {"branch": 0.85, "atm": 0.15},
    "card_payment": {"pos": 0.5, "web": 0.4, "app": 0.1},
    "bill_payment": {"api": 0.35, "web": 0.45, "branch": 0.1, "app": 0.1},
    "securities_trade": {"api": 0.5, "web": 0.4, "branch": 0.1},
    "fx": {"web": 0.45, "api": 0.3, "branch": 0.25},
}
SERVICE_CHANNEL_MIX: dict[str, dict[str, float]] = {
    "retail": {"app": 0.25, "call_center": 0.30, "chat": 0.25, "web": 0.08, "branch": 0.08,
               "email": 0.04},
    "private": {"call_center": 0.30, "branch": 0.25, "app": 0.15, "chat": 0.10, "email": 0.12,
                "web": 0.08},
    "sme": {"call_center": 0.30, "email": 0.15, "branch": 0.15, "chat": 0.15, "web": 0.15,
            "app": 0.10},
    "corporate": {"email": 0.30, "call_center": 0.30, "branch": 0.20, "web": 0.15, "chat": 0.05},
    "government": {"email": 0.35, "call_center": 0.25, "branch": 0.30, "web": 0.10},
    "nonprofit": {"call_center": 0.30, "email": 0.25, "web": 0.15, "chat": 0.15, "branch": 0.10,
                  "app": 0.05},
}  # fmt: skip
INTERACTION_TYPES = ("inquiry", "complaint", "transaction_support", "account_service", "advisory")
INTERACTION_MIX: dict[str, tuple[float, ...]] = {
    "retail": (0.38, 0.09, 0.27, 0.20, 0.06),
    "private": (0.25, 0.07, 0.18, 0.20, 0.30),
    "sme": (0.30, 0.08, 0.27, 0.27, 0.08),
    "corporate": (0.25, 0.06, 0.30, 0.30, 0.09),
    "government": (0.30, 0.05, 0.25, 0.35, 0.05),
    "nonprofit": (0.35, 0.07, 0.25, 0.28, 0.05),
}

HOME_IND = (("CN", 0.93), ("HK", 0.02), ("US", 0.01), ("SG", 0.01), ("JP", 0.008),
            ("KR", 0.007), ("GB", 0.005), ("DE", 0.005), ("AU", 0.005))  # fmt: skip
HOME_INST = (("CN", 0.90), ("HK", 0.04), ("SG", 0.03), ("US", 0.02), ("DE", 0.01))
FOREIGN = ("US", "HK", "SG", "JP", "KR", "GB", "DE", "AU", "TH", "MY", "VN", "AE", "FR", "CA")
# countries often seen in fraud / mule cash-out flows (for the injected patterns)
RISKY = ("KH", "MM", "PH", "NG", "RU", "AE", "VN", "TH", "MY", "LA")

# (mcc, weight) ordinary card spending; testing categories are rare for normal customers
NORMAL_MCC = (("5411", 18), ("5812", 14), ("5814", 10), ("5541", 6), ("5311", 6),
              ("4111", 8), ("4121", 5), ("5999", 6), ("5732", 3), ("4814", 4),
              ("7011", 2), ("5977", 3), ("5691", 5), ("5912", 4), ("5942", 2),
              ("5399", 4))  # fmt: skip
TESTING_MCC = ("5816", "5967", "4829", "7995", "5818", "7994")
BILL_MCC = ("4900", "4814", "6300", "8211", "4899")
USD_CNY = 7.1


class Customer:
    """One customer and the habits that background traffic follows."""

    __slots__ = (
        "accounts",
        "activity",
        "amount_scale",
        "counterparties",
        "customer_id",
        "customer_type",
        "devices",
        "home",
        "index",
        "international",
        "key",
        "merchants",
        "mood",
        "recent_txns",
        "segment",
        "service_cw",
        "txn_channel_cw",
        "txn_type_cw",
    )

    def __init__(self, index: int, customer_id: str, segment: str, customer_type: str) -> None:
        self.index = index
        self.customer_id = customer_id
        self.key = customer_id.encode()
        self.segment = segment
        self.customer_type = customer_type
        self.home = "CN"
        self.activity = 1.0
        self.amount_scale = 1.0
        self.mood = 0.0
        self.international = False
        self.accounts: list[str] = []
        self.devices: list[str] = []
        self.counterparties: list[tuple[str, str]] = []
        self.merchants: list[int] = []
        self.txn_type_cw: list[float] = []
        self.txn_channel_cw: dict[str, tuple[tuple[str, ...], list[float]]] = {}
        self.service_cw: tuple[tuple[str, ...], list[float]] = ((), [])
        self.recent_txns: deque[str] = deque(maxlen=6)

    @property
    def individual(self) -> bool:
        return self.customer_type == "individual"

    def typical_amount(self, txn_type: str) -> float:
        """Median amount of this customer's ``txn_type`` transactions (CNY, fx in USD)."""
        return AMOUNTS[self.segment][txn_type][0] * self.amount_scale

    def __repr__(self) -> str:
        return f"Customer({self.customer_id}, {self.segment})"


@dataclass(frozen=True)
class Merchant:
    merchant_id: str
    mcc: str
    country: str


@dataclass
class Population:
    """Customers plus per-hour-of-week cumulative selection weights."""

    customers: list[Customer]
    merchants: list[Merchant]
    # hour_of_week -> cumulative customer weights (activity x diurnal factor)
    cum_weights: list[list[float]]
    hourly_total: list[float]

    def weight_at_hour(self, how: int) -> float:
        return self.hourly_total[how]


def _pick(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([t[0] for t in table], weights=[t[1] for t in table])[0]


def _cum(weights: list[float]) -> list[float]:
    return list(itertools.accumulate(weights))


def build_population(rng: random.Random, seed: int, n_customers: int) -> Population:
    """Build ``n_customers`` customers over all six segments (at least one of each).

    Merchant and counterparty pools are shared; every per-customer attribute comes from ``rng``.
    """
    if n_customers < 1:
        raise ValueError("n_customers must be >= 1")
    merchants = [
        Merchant(
            f"m-{k:04d}",
            rng.choices([m for m, _ in NORMAL_MCC], weights=[w for _, w in NORMAL_MCC])[0],
            "CN" if rng.random() < 0.92 else rng.choice(FOREIGN),
        )
        for k in range(600)
    ]
    cp_pool = max(500, n_customers * 3)
    seg_names = [s[0] for s in SEGMENTS]
    seg_weights = [s[2] for s in SEGMENTS]
    seg_info = {s[0]: s for s in SEGMENTS}
    customers: list[Customer] = []
    for i in range(n_customers):
        # the first six customers cover every segment, the rest follow the shares
        seg = seg_names[i] if i < len(seg_names) and n_customers >= 50 else None
        if seg is None:
            seg = rng.choices(seg_names, weights=seg_weights)[0]
        _, ctype, _, act = seg_info[seg]
        c = Customer(i, f"c{seed}-{i:06d}", seg, ctype)
        ind = ctype == "individual"
        c.home = _pick(rng, HOME_IND if ind else HOME_INST)
        c.activity = act * math.exp(rng.gauss(0.0, 0.9))
        c.amount_scale = math.exp(rng.gauss(0.0, 0.5))
        c.mood = rng.gauss(0.0, 0.4)
        c.international = c.home != "CN" or rng.random() < (0.06 if ind else 0.25)
        c.accounts = [f"{c.customer_id}-a{k}" for k in range(rng.randint(1, 2 if ind else 3))]
        c.devices = [f"{c.customer_id}-d{k}" for k in range(rng.choices((1, 2, 3), (6, 3, 1))[0])]
        n_cp = rng.randint(2, 8) if ind else rng.randint(5, 25)
        cps = []
        for _ in range(n_cp):
            if c.international and rng.random() < 0.3:
                country = rng.choice(FOREIGN)
            else:
                country = c.home if rng.random() < 0.97 else rng.choice(FOREIGN)
            cps.append((f"cp-{rng.randrange(cp_pool):06d}", country))
        c.counterparties = cps
        c.merchants = [rng.randrange(len(merchants)) for _ in range(rng.randint(4, 15))]
        c.txn_type_cw = _cum(list(TXN_MIX[seg]))
        digital = rng.random()  # digital affinity
        table = TXN_CHANNELS_IND if ind else TXN_CHANNELS_INST
        for ttype, chans in table.items():
            names = tuple(chans)
            w = [
                chans[ch] * ((0.4 + 1.2 * digital) if ch in DIGITAL else (1.4 - 0.8 * digital))
                for ch in names
            ]
            c.txn_channel_cw[ttype] = (names, _cum(w))
        smix = SERVICE_CHANNEL_MIX[seg]
        snames = tuple(smix)
        sw = [
            smix[ch] * ((0.5 + digital) if ch in ("app", "web", "chat") else (1.5 - digital))
            for ch in snames
        ]
        c.service_cw = (snames, _cum(sw))
        customers.append(c)

    cum_weights: list[list[float]] = []
    hourly_total: list[float] = []
    for how in range(48):
        hour, weekend = how % 24, how >= 24
        fi = INDIVIDUAL_HOURLY[hour] * (INDIVIDUAL_WEEKEND if weekend else 1.0)
        fo = INSTITUTION_HOURLY[hour] * (INSTITUTION_WEEKEND if weekend else 1.0)
        cw = _cum([c.activity * (fi if c.customer_type == "individual" else fo) for c in customers])
        cum_weights.append(cw)
        hourly_total.append(cw[-1])
    return Population(customers, merchants, cum_weights, hourly_total)
