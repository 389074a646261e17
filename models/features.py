"""Per-customer transaction features: one pure function for live agents and offline replay.

``features, new_state = extract(txn, state, config)`` turns one :class:`Transaction`
and the customer's previous state record into a flat features dict (the names of
:data:`FEATURES`, which policy rules reference) and the customer's next state.

The state is a typed record, :class:`FeatureState` (a ``msgspec.Struct`` written as an
array; sizes in docs/benchmarks.md): live it lives in a changelog-backed Faust table,
offline in a dict, and a codec round trip between two calls gives exactly the same numbers.
To keep it small, window and same-day sums are whole cents (each amount floored to the
cent, so a sum never reaches a threshold before the exact one would), the running amount
statistics have 5 decimals, transaction types are codes (:mod:`finpulse.models.codes`), and
counterparties, accounts and devices are 8-letter hashes (:func:`short_token`; only
compared for equality). The JSON dict of the previous release is migrated by
:meth:`FeatureState.from_legacy`. Windows run on **event time** (the transaction's ``ts``),
in compact buckets:

* 1 h window: 5-minute buckets (the window covers the last 55-60 minutes);
* 24 h window: 1-hour buckets (the last 23-24 hours);
* card testing: exact timestamps of the last tiny card payments (10 minutes, ≤ 32);
* credit counterparties: the last 16 credits (24 h) with their counterparty;
* new payers: the last 16 transfers in (24 h) from counterparties new to the customer;
* first-seen sets: the last 8 devices / countries / counterparties / accounts, and the last
  16 transfer counterparties (the customer's payers and payees: card merchants and billers
  do not push them out, so a usual payer stays known between its payments).

Every window count and sum **includes the current transaction** ("as of after this
event"), as do the same-day totals, so a rule ``cash_same_day_cny >= 50000`` fires on
the transaction that crosses the threshold. Amounts are converted to CNY with the fixed
reference table :data:`FX_TO_CNY` (documented rates, not live quotes).

>>> import json
>>> def txn(ts, amount, txn_type):
...     return Transaction.model_validate_json(json.dumps({"event_id": ts, "ts": ts,
...         "customer_id": "c-9", "customer_type": "individual", "segment": "retail",
...         "account_id": "a-1", "amount": amount, "currency": "CNY", "direction": "debit",
...         "txn_type": txn_type, "channel": "branch"}))
>>> cfg = FeatureConfig()
>>> f1, s = extract(txn("2026-01-05T10:00:00+00:00", 48000, "cash_deposit"), None, cfg)
>>> f1["cash_same_day_cny"], f1["near_cash_threshold_count_24h"], f1["txn_count_1h"]
(48000.0, 1, 1)
>>> f2, s = extract(txn("2026-01-05T10:30:00+00:00", 3000, "cash_withdrawal"), s, cfg)
>>> f2["cash_same_day_cny"], f2["txn_count_1h"], f2["seconds_since_last"]
(51000.0, 2, 1800.0)
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import msgspec

from finpulse.models.codes import TXN_TYPE
from finpulse.models.events import Direction, Transaction
from finpulse.models.ids import letter_hex
from finpulse.models.money import FX_TO_CNY as MONEY_FX

# The one fixed FX table of finpulse (models/money.py): reproducible in replay.
FX_TO_CNY: Mapping[str, float] = MappingProxyType(MONEY_FX)

# name -> one-line meaning. Rules (config/policy.yaml) reference these names.
FEATURES: Mapping[str, str] = MappingProxyType(
    {
        "amount_cny": "amount in CNY (fixed FX table, models/money.py); None if currency unknown",
        "is_cash": "cash deposit or withdrawal",
        "is_transfer": "transfer",
        "is_card": "card payment",
        "is_credit": "money in (direction credit)",
        "direction": "debit | credit",
        "currency": "ISO 4217 currency of the amount",
        "customer_type": "individual | institution",
        "is_institution": "customer_type is institution",
        "segment": "customer segment (retail, private, sme, corporate, government, nonprofit)",
        "txn_type": "transaction type",
        "channel": "transaction channel",
        "cash_same_day_cny": "cash deposits + withdrawals of this local day, incl. this one (CNY)",
        "transfer_same_day_cny": "transfers (both directions) of this local day, incl. this one",
        "txn_count_1h": "transactions in the last hour, incl. this one",
        "txn_sum_1h_cny": "their total amount (CNY)",
        "txn_count_24h": "transactions in the last 24 hours, incl. this one",
        "txn_sum_24h_cny": "their total amount (CNY)",
        "velocity_ratio_1h": "txn_count_1h / hourly average of the last 24 h (burst factor)",
        "seconds_since_last": "event-time gap to the customer's previous transaction (capped)",
        "history_count": "transactions seen for this customer before this one (capped)",
        "new_device": "device not among the customer's last 8 (false without history)",
        "new_country": "IP (else counterparty) country not among the last 8 seen",
        "new_counterparty": "counterparty not among the customer's last 8",
        "new_account": "account not among the customer's last 8 accounts",
        "amount_zscore": "z-score of log amount vs the customer's EW history for this txn type",
        "type_history_count": "transactions of this type seen for this customer before (capped)",
        "cross_border": "cross-border flag, or counterparty country differs from home",
        "foreign_ip": "IP country present and not the home country",
        "local_night": "local time (UTC+8 default) in the night hours (00:00-06:00 default)",
        "local_hour": "local hour of day 0..23",
        "tiny_card_count_10m": "tiny card payments in the last 10 minutes, incl. this one",
        "near_cash_threshold": "this is cash at >= 85 % and < 100 % of the cash threshold",
        "near_transfer_threshold": "this is a transfer at >= 85 % and < 100 % of its threshold",
        "near_cash_threshold_count_24h": "near-threshold cash transactions in the last 24 h",
        "near_transfer_threshold_count_24h": "near-threshold transfers in the last 24 h",
        "credit_sum_1h_cny": "money in during the last hour (CNY)",
        "debit_sum_1h_cny": "money out during the last hour (CNY)",
        "in_out_ratio_1h": "min(in, out) / max(in, out) over the last hour; 1 = all in went out",
        "credit_counterparties_1h": "distinct counterparties that paid in during the last hour",
        "credit_sum_24h_cny": "money in during the last 24 h (CNY)",
        "debit_sum_24h_cny": "money out during the last 24 h (CNY)",
        "in_out_ratio_24h": "min(in, out) / max(in, out) over the last 24 h",
        "credit_counterparties_24h": "distinct paying counterparties among the last 16 credits",
        "new_payers_24h": "transfers in of the last 24 h from counterparties new to the "
        "customer (none of its last 16 transfer counterparties)",
        "new_payer_credit_24h_cny": "their total amount (CNY)",
        "payout_of_new_credits": "debits of the last 24 h / new_payer_credit_24h_cny (0 if none)",
        "new_payers_1h": "transfers in of the last hour, each >= mule_min_payment_cny (2,000), "
        "from counterparties new to the customer",
        "new_payer_credit_1h_cny": "their total amount (CNY)",
    }
)
FEATURE_NAMES: tuple[str, ...] = tuple(FEATURES)

_SLOT_1H_S = 300  # 5-minute buckets
_SLOTS_1H = 12
_SLOT_24H_S = 3600
_SLOTS_24H = 24
_TINY_KEEP = 32
_CREDITS_KEEP = 16
_PARTIES_KEEP = 16
_HISTORY_CAP = 1_000_000
_CREDIT = Direction.CREDIT


@dataclass(frozen=True)
class FeatureConfig:
    """Thresholds and constants of the features (the policy holds the regulatory ones).

    >>> FeatureConfig().cash_threshold_cny, FeatureConfig(near_fraction=0.9).near_fraction
    (50000.0, 0.9)
    """

    cash_threshold_cny: float = 50_000.0
    individual_transfer_threshold_cny: float = 500_000.0
    institution_transfer_threshold_cny: float = 2_000_000.0
    near_fraction: float = 0.85
    tiny_card_amount_cny: float = 20.0
    tiny_window_s: float = 600.0
    payer_floor_cny: float = 2000.0  # a new payer's transfer counts in new_payers_1h from here
    utc_offset_hours: float = 8.0
    night_start_hour: int = 0
    night_end_hour: int = 6
    home_country: str = "CN"
    recent_set_size: int = 8
    max_gap_s: float = 30 * 86400.0
    zscore_prior_var: float = 1.0
    zscore_prior_weight: float = 2.0
    zscore_min_alpha: float = 0.05
    zscore_clip: float = 10.0
    fx_to_cny: Mapping[str, float] = field(default_factory=lambda: FX_TO_CNY)

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> FeatureConfig:
        """The thresholds held by the policy (``parameters:`` of config/policy.yaml).

        >>> FeatureConfig.from_parameters({"lv_cash_rmb": 40000}).cash_threshold_cny
        40000.0
        """
        names = {
            "lv_cash_rmb": "cash_threshold_cny",
            "lv_transfer_individual_domestic_rmb": "individual_transfer_threshold_cny",
            "lv_transfer_institution_rmb": "institution_transfer_threshold_cny",
            "near_threshold_ratio": "near_fraction",
            "tiny_card_amount_cny": "tiny_card_amount_cny",
            "mule_min_payment_cny": "payer_floor_cny",
        }
        values: dict[str, Any] = {
            o: float(parameters[p]) for p, o in names.items() if p in parameters
        }
        return cls(**values)

    def transfer_threshold(self, customer_type: str) -> float:
        if customer_type == "institution":
            return self.institution_transfer_threshold_cny
        return self.individual_transfer_threshold_cny


class FeatureState(msgspec.Struct, array_like=True):
    """A customer's feature state (amounts in cents). New fields go at the end, with a
    default, so records written before them still decode.

    >>> FeatureState().count, FeatureState.from_legacy({"v": 3, "n": 2, "last": 5.0,
    ...     "h": [], "ht": [0, 0, 0], "d": [], "dt": [0, 0, 0, 0, 0], "day": [None, 0, 0],
    ...     "tiny": [], "cr": [[4.0, "abcdefgh"]], "dev": [], "cty": [], "cp": [],
    ...     "acct": [], "amt": {"7": [2, 1.5, 0.25]}}).amount_stats
    (0, {7: [2, 1.5, 0.25]})
    """

    count: int = 0  # transactions seen (capped)
    last_ts: float | None = None  # newest event time seen
    buckets_1h: list[list[int]] = msgspec.field(default_factory=list)
    # ^ [5-minute slot, n, credit_sum, debit_sum]
    totals_1h: list[int] = msgspec.field(default_factory=lambda: [0, 0, 0])
    buckets_24h: list[list[int]] = msgspec.field(default_factory=list)
    # ^ [hour, n, near_cash, near_transfer, credit_sum, debit_sum]
    totals_24h: list[int] = msgspec.field(default_factory=lambda: [0, 0, 0, 0, 0])
    same_day: list[Any] = msgspec.field(default_factory=lambda: [None, 0, 0])
    # ^ [local day index, cash sum, transfer sum]
    tiny_card_ts: list[float] = msgspec.field(default_factory=list)
    credits: list[tuple[float, str]] = msgspec.field(default_factory=list)
    # ^ (ts, counterparty token) of recent credits
    devices: list[str] = msgspec.field(default_factory=list)
    countries: list[str] = msgspec.field(default_factory=list)
    counterparties: list[str] = msgspec.field(default_factory=list)
    accounts: list[str] = msgspec.field(default_factory=list)
    amount_stats: dict[int, list[int | float]] = msgspec.field(default_factory=dict)
    # ^ txn type code -> [n, mean, var] of log amount
    new_payer_credits: list[tuple[float, int]] = msgspec.field(default_factory=list)
    # ^ (ts, cents) of the last 24 h's transfers in from counterparties new to the customer
    transfer_parties: list[str] = msgspec.field(default_factory=list)
    # ^ the last 16 counterparties of transfers in or out (known payers and payees)

    @classmethod
    def from_legacy(cls, old: Mapping[str, Any]) -> FeatureState:
        """The state from the JSON dict of the previous release (version 3); any other
        version starts fresh."""
        if old.get("v") != 3:
            return cls()
        return cls(
            count=old["n"],
            last_ts=old["last"],
            buckets_1h=old["h"],
            totals_1h=old["ht"],
            buckets_24h=old["d"],
            totals_24h=old["dt"],
            same_day=old["day"],
            tiny_card_ts=old["tiny"],
            credits=[(ts, cp) for ts, cp in old["cr"]],
            devices=old["dev"],
            countries=old["cty"],
            counterparties=old["cp"],
            accounts=old["acct"],
            amount_stats={int(k): v for k, v in old["amt"].items()},
        )


_SHORT: dict[str, str] = {}  # id -> short_token(id), bounded
_SHORT_MAX = 100_000


def short_token(value: str) -> str:
    """An 8-letter hash of an id (32 bits; blake2b, hex written with letters so it can
    never look like a card number). A new id is taken for one of the customer's last 8
    with probability 8 / 2**32 (~2e-9): one missed ``new_counterparty`` in ~500 million
    transactions.

    >>> short_token("acct:iopoiacmmjegmlib"), len(short_token("x"))
    ('kjllghlh', 8)
    """
    token = _SHORT.get(value)
    if token is None:
        if len(_SHORT) >= _SHORT_MAX:
            _SHORT.clear()
        digest = hashlib.blake2b(value.encode(), digest_size=4).hexdigest()
        token = _SHORT[value] = letter_hex(digest)
    return token


def _short_or_none(value: str | None) -> str | None:
    return None if value is None else short_token(value)


def _seen(recent: list[str], value: str | None, has_history: bool, size: int) -> bool:
    """Whether ``value`` is new; moves it to the front of the bounded recent list."""
    if value is None:
        return False
    if value in recent:
        if recent[0] != value:
            recent.remove(value)
            recent.insert(0, value)
        return False
    recent.insert(0, value)
    del recent[size:]
    return has_history


def _new_transfer_party(st: FeatureState, counterparty_id: str, has_history: bool) -> bool:
    """Whether a transfer's counterparty is new among the customer's transfer counterparties
    (its first transaction counts as new: nothing is known of the customer). A record written
    before the set existed starts it from the customer's last counterparties.

    >>> st = FeatureState(count=3, counterparties=["kjllghlh"])
    >>> _new_transfer_party(st, "acct:iopoiacmmjegmlib", True)
    False
    >>> _new_transfer_party(st, "acct:other", True), _new_transfer_party(st, "acct:other", True)
    (True, False)
    """
    parties = st.transfer_parties
    if not parties and has_history:
        parties = st.transfer_parties = list(st.counterparties)
    return _seen(parties, short_token(counterparty_id), True, _PARTIES_KEEP) or not has_history


def _ratio(a: float, b: float) -> float:
    hi = a if a > b else b
    return (a if a < b else b) / hi if hi > 0 else 0.0


def extract(
    txn: Transaction, state: FeatureState | None, config: FeatureConfig
) -> tuple[dict[str, Any], FeatureState]:
    """Features of ``txn`` given the customer's ``state`` (``None`` = new); returns the new state.

    The input ``state`` is not modified (the result is a fresh record), so a caller
    can keep the old one on error. :func:`extract_into` is the in-place variant.
    """
    st = copy_state(state) if state else FeatureState()
    return extract_into(txn, st, config), st


def _bucket(buckets: list[list[Any]], idx: int, width: int, zero: list[Any]) -> list[Any] | None:
    """The bucket ``idx`` of a sorted bucket list (created if missing); ``None`` if ``idx``
    is older than the window of the newest bucket (a late event that no longer counts)."""
    if buckets:
        last = buckets[-1][0]
        if last == idx:
            return buckets[-1]
        if last < idx:
            cur = [idx, *zero]
            buckets.append(cur)
            return cur
        if idx <= last - width:
            return None
        pos = next(i for i, bk in enumerate(buckets) if bk[0] >= idx)
        if buckets[pos][0] == idx:
            return buckets[pos]
        cur = [idx, *zero]
        buckets.insert(pos, cur)
        return cur
    cur = [idx, *zero]
    buckets.append(cur)
    return cur


# Amounts in whole cents (ints: exact sums, short JSON); a window's total amount is its
# credit sum + its debit sum.
_ZERO_1H = [0, 0, 0]
_ZERO_24H = [0, 0, 0, 0, 0]


def _window_1h(st: FeatureState, idx: int, amount: int, credit: bool) -> list[Any]:
    """Add one transaction (``amount`` in cents) to the 1 h window (5-minute buckets
    ``[slot, n, credit_sum, debit_sum]``); returns the totals ``[n, credit_sum,
    debit_sum]`` (cents) of the window ending at the newest bucket."""
    b, t = st.buckets_1h, st.totals_1h
    cut = idx - _SLOTS_1H
    while b and b[0][0] <= cut:
        o = b.pop(0)
        t[0] -= o[1]
        t[1] -= o[2]
        t[2] -= o[3]
    if not b:
        t[:] = _ZERO_1H
    cur = _bucket(b, idx, _SLOTS_1H, _ZERO_1H)
    if cur is not None:
        cur[1] += 1
        t[0] += 1
        if credit:
            cur[2] += amount
            t[1] += amount
        else:
            cur[3] += amount
            t[2] += amount
    return t


def _window_24h(
    st: FeatureState, idx: int, amount: int, credit: bool, near_cash: bool, near_tr: bool
) -> list[Any]:
    """Add one transaction (``amount`` in cents) to the 24 h window (1-hour buckets
    ``[hour, n, near_cash, near_transfer, credit_sum, debit_sum]``); returns the totals
    ``[n, near_cash, near_transfer, credit_sum, debit_sum]``."""
    b, t = st.buckets_24h, st.totals_24h
    cut = idx - _SLOTS_24H
    while b and b[0][0] <= cut:
        o = b.pop(0)
        t[0] -= o[1]
        t[1] -= o[2]
        t[2] -= o[3]
        t[3] -= o[4]
        t[4] -= o[5]
    if not b:
        t[:] = _ZERO_24H
    cur = _bucket(b, idx, _SLOTS_24H, _ZERO_24H)
    if cur is not None:
        cur[1] += 1
        t[0] += 1
        if near_cash:
            cur[2] += 1
            t[1] += 1
        if near_tr:
            cur[3] += 1
            t[2] += 1
        if credit:
            cur[4] += amount
            t[3] += amount
        else:
            cur[5] += amount
            t[4] += amount
    return t


_TYPE_CODE: Mapping[str, int] = TXN_TYPE
_VALUE: dict[Any, str] = {}  # enum member -> its string value (faster than .value)


def _val(member: Any) -> str:
    v = _VALUE.get(member)
    if v is None:
        v = _VALUE[member] = member.value
    return v


def extract_into(txn: Transaction, st: FeatureState, config: FeatureConfig) -> dict[str, Any]:
    """Like :func:`extract`, but updates the state record ``st`` in place (faster)."""
    ts = txn.ts.timestamp()
    txn_type = _val(txn.txn_type)
    ctype = _val(txn.customer_type)
    credit = txn.direction is _CREDIT
    rate = config.fx_to_cny.get(txn.currency)
    if rate is None:  # unknown currency: no CNY amount (threshold rules cannot fire on it)
        amount = 0.0
    else:
        amount = float(txn.amount) if rate == 1.0 else round(float(txn.amount) * rate, 2)
    cents = round(amount * 100)  # floored to the cent: sums never cross a threshold early
    if cents / 100 > amount:
        cents -= 1
    is_cash = txn_type == "cash_deposit" or txn_type == "cash_withdrawal"
    is_transfer = txn_type == "transfer"
    is_card = txn_type == "card_payment"

    history = st.count
    has_history = history > 0
    last = st.last_ts
    gap = config.max_gap_s if last is None else min(max(ts - last, 0.0), config.max_gap_s)
    st.count = history + 1 if history < _HISTORY_CAP else history
    if last is None or ts > last:
        st.last_ts = ts

    # --- thresholds --------------------------------------------------------------------------
    near = config.near_fraction
    cash_thr = config.cash_threshold_cny
    near_cash = is_cash and near * cash_thr <= amount < cash_thr
    tr_thr = config.transfer_threshold(ctype)
    near_transfer = is_transfer and near * tr_thr <= amount < tr_thr

    # --- sliding windows: 1 h in 5-minute buckets, 24 h in 1-hour buckets --------------------
    count_1h, credit_1h, debit_1h = _window_1h(st, int(ts // _SLOT_1H_S), cents, credit)
    count_24h, near_cash_24h, near_tr_24h, credit_24h, debit_24h = _window_24h(
        st, int(ts // _SLOT_24H_S), cents, credit, near_cash, near_transfer
    )
    sum_1h, sum_24h = (credit_1h + debit_1h) / 100, (credit_24h + debit_24h) / 100
    credit_1h, debit_1h, credit_24h, debit_24h = (
        credit_1h / 100, debit_1h / 100, credit_24h / 100, debit_24h / 100
    )  # fmt: skip

    # --- same local day cash / transfer totals ----------------------------------------------
    local_s = ts + config.utc_offset_hours * 3600.0
    day_idx = int(local_s // 86400)
    day: list[Any] | None = st.same_day
    if day is not None and day[0] != day_idx:
        # a new day resets the totals; a late event from an earlier day counts alone
        day = [day_idx, 0, 0] if day[0] is None or day_idx > day[0] else None
    if day is not None:
        if is_cash:
            day[1] += cents
        elif is_transfer:
            day[2] += cents
        st.same_day = day
        cash_day, transfer_day = day[1] / 100, day[2] / 100
    else:
        cash_day = amount if is_cash else 0.0
        transfer_day = amount if is_transfer else 0.0

    # --- card testing: tiny card payments in the last 10 minutes ----------------------------
    tiny = st.tiny_card_ts
    if tiny and tiny[0] <= ts - config.tiny_window_s:
        tiny = st.tiny_card_ts = [t for t in tiny if t > ts - config.tiny_window_s]
    if is_card and amount <= config.tiny_card_amount_cny:
        tiny.append(ts)
        if len(tiny) > _TINY_KEEP:
            del tiny[:-_TINY_KEEP]
    tiny_10m = len(tiny)

    # --- credits and their counterparties ----------------------------------------------------
    credits = st.credits
    if credits and credits[0][0] <= ts - 86400.0:
        credits = st.credits = [c for c in credits if c[0] > ts - 86400.0]
    if credit:
        cp_id = txn.counterparty_id
        credits.append((ts, short_token(cp_id) if cp_id else ""))
        if len(credits) > _CREDITS_KEEP:
            del credits[:-_CREDITS_KEEP]
    if credits:
        hour_ago = ts - 3600.0
        cps_1h = len({c[1] for c in credits if c[0] > hour_ago and c[1]})
        cps_24h = len({c[1] for c in credits if c[1]})
    else:
        cps_1h = cps_24h = 0

    # --- first-seen flags (the transfer counterparties before the last 8 take this one) -------
    if is_transfer and txn.counterparty_id:
        new_party = _new_transfer_party(st, txn.counterparty_id, has_history)
    else:
        new_party = False
    size = config.recent_set_size
    country = txn.ip_country or txn.counterparty_country
    new_device = _seen(st.devices, _short_or_none(txn.device_id), has_history, size)
    new_country = _seen(st.countries, country, has_history, size)
    new_cp = _seen(st.counterparties, _short_or_none(txn.counterparty_id), has_history, size)
    new_account = _seen(st.accounts, _short_or_none(txn.account_id), has_history, size)

    # --- fan-in from new payers (mule): transfers in, last 24 h, from new counterparties ----
    payers = st.new_payer_credits
    if payers and payers[0][0] <= ts - 86400.0:
        payers = st.new_payer_credits = [p for p in payers if p[0] > ts - 86400.0]
    if credit and new_party:
        payers.append((ts, cents))  # a first pay-in by transfer from this counterparty
        if len(payers) > _CREDITS_KEEP:
            del payers[:-_CREDITS_KEEP]
    new_payer_credit = sum(p[1] for p in payers) / 100 if payers else 0.0
    floor = config.payer_floor_cny * 100
    payers_1h = [p[1] for p in payers if p[0] > ts - 3600.0 and p[1] >= floor]

    # --- amount vs own history (EW mean / variance of log amount, per txn type) -------------
    la = math.log1p(amount)
    type_code = _TYPE_CODE[txn_type]
    stats = st.amount_stats.get(type_code)
    if stats is None:
        z, type_seen = 0.0, 0
        st.amount_stats[type_code] = [1, round(la, 5), 0.0]
    else:
        n, mean, var = stats
        type_seen = int(n)
        k = config.zscore_prior_weight
        var_eff = (n * var + k * config.zscore_prior_var) / (n + k)
        z = (la - mean) / math.sqrt(var_eff)
        clip = config.zscore_clip
        z = -clip if z < -clip else clip if z > clip else z
        alpha = 1.0 / (n + 1)
        if alpha < config.zscore_min_alpha:
            alpha = config.zscore_min_alpha
        diff = la - mean
        stats[0] = n + 1 if n < _HISTORY_CAP else n
        stats[1] = round(mean + alpha * diff, 5)
        stats[2] = round((1 - alpha) * (var + alpha * diff * diff), 5)

    cross = txn.cross_border
    if cross is None:
        cc = txn.counterparty_country
        cross = cc is not None and cc != config.home_country
    local_hour = int(local_s // 3600) % 24
    ns, ne = config.night_start_hour, config.night_end_hour
    night = ns <= local_hour < ne if ns <= ne else (local_hour >= ns or local_hour < ne)
    ip = txn.ip_country

    return {
        "amount_cny": amount if rate is not None else None,
        "is_cash": is_cash,
        "is_transfer": is_transfer,
        "is_card": is_card,
        "is_credit": credit,
        "direction": "credit" if credit else "debit",
        "currency": txn.currency,
        "customer_type": ctype,
        "is_institution": ctype == "institution",
        "segment": _val(txn.segment),
        "txn_type": txn_type,
        "channel": _val(txn.channel),
        "cash_same_day_cny": cash_day,
        "transfer_same_day_cny": transfer_day,
        "txn_count_1h": count_1h,
        "txn_sum_1h_cny": sum_1h,
        "txn_count_24h": count_24h,
        "txn_sum_24h_cny": sum_24h,
        "velocity_ratio_1h": 24.0 * count_1h / count_24h if count_24h else 0.0,
        "seconds_since_last": gap,
        "history_count": history,
        "new_device": new_device,
        "new_country": new_country,
        "new_counterparty": new_cp,
        "new_account": new_account,
        "amount_zscore": z,
        "type_history_count": type_seen,
        "cross_border": cross,
        "foreign_ip": ip is not None and ip != config.home_country,
        "local_night": night,
        "local_hour": local_hour,
        "tiny_card_count_10m": tiny_10m,
        "near_cash_threshold": near_cash,
        "near_transfer_threshold": near_transfer,
        "near_cash_threshold_count_24h": near_cash_24h,
        "near_transfer_threshold_count_24h": near_tr_24h,
        "credit_sum_1h_cny": credit_1h,
        "debit_sum_1h_cny": debit_1h,
        "in_out_ratio_1h": _ratio(credit_1h, debit_1h),
        "credit_counterparties_1h": cps_1h,
        "credit_sum_24h_cny": credit_24h,
        "debit_sum_24h_cny": debit_24h,
        "in_out_ratio_24h": _ratio(credit_24h, debit_24h),
        "credit_counterparties_24h": cps_24h,
        "new_payers_24h": len(payers),
        "new_payer_credit_24h_cny": new_payer_credit,
        "payout_of_new_credits": debit_24h / new_payer_credit if new_payer_credit else 0.0,
        "new_payers_1h": len(payers_1h),
        "new_payer_credit_1h_cny": sum(payers_1h) / 100,
    }


def copy_state(state: FeatureState) -> FeatureState:
    """A copy deep enough that ``extract_into`` never mutates the caller's record."""
    return FeatureState(
        count=state.count,
        last_ts=state.last_ts,
        buckets_1h=[list(b) for b in state.buckets_1h],
        totals_1h=list(state.totals_1h),
        buckets_24h=[list(b) for b in state.buckets_24h],
        totals_24h=list(state.totals_24h),
        same_day=list(state.same_day),
        tiny_card_ts=list(state.tiny_card_ts),
        credits=list(state.credits),
        devices=list(state.devices),
        countries=list(state.countries),
        counterparties=list(state.counterparties),
        accounts=list(state.accounts),
        amount_stats={k: list(v) for k, v in state.amount_stats.items()},
        new_payer_credits=list(state.new_payer_credits),
        transfer_parties=list(state.transfer_parties),
    )
