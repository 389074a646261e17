"""Per-customer transaction features: one pure function for live agents and offline replay.

``features, new_state = extract(txn, state, config)`` turns one :class:`Transaction`
and the customer's previous state record into a flat features dict (the names of
:data:`FEATURES`, which policy rules reference) and the customer's next state.

The state is a small JSON-able dict (lists, str keys, numbers; ~0.5-1.5 KB as JSON):
live it lives in a changelog-backed Faust table, offline in a dict, and a JSON
round trip between two calls gives exactly the same numbers. Windows run on
**event time** (the transaction's ``ts``), in compact buckets:

* 1 h window: 5-minute buckets (the window covers the last 55-60 minutes);
* 24 h window: 1-hour buckets (the last 23-24 hours);
* card testing: exact timestamps of the last tiny card payments (10 minutes, ≤ 32);
* credit counterparties: the last 16 credits (24 h) with their counterparty;
* first-seen sets: the last 8 devices / countries / counterparties / accounts.

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

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from models.events import Transaction

STATE_VERSION = 1

# Fixed reference rates (CNY per unit), PBoC central parity order of magnitude, late 2025.
# Deliberately static: features must be reproducible in replay; a live FX feed is out of scope.
FX_TO_CNY: Mapping[str, float] = MappingProxyType(
    {
        "CNY": 1.0,
        "USD": 7.1,
        "EUR": 7.7,
        "GBP": 9.0,
        "HKD": 0.91,
        "JPY": 0.048,
        "SGD": 5.3,
        "KRW": 0.0052,
        "AUD": 4.7,
        "CAD": 5.2,
        "CHF": 8.1,
        "AED": 1.93,
        "THB": 0.2,
        "MYR": 1.5,
        "VND": 0.00028,
        "PHP": 0.125,
        "RUB": 0.08,
    }
)

# name -> one-line meaning. Rules (config/policy.yaml) reference these names.
FEATURES: Mapping[str, str] = MappingProxyType(
    {
        "amount_cny": "transaction amount in CNY (fixed FX table for other currencies)",
        "is_cash": "cash deposit or withdrawal",
        "is_transfer": "transfer",
        "is_card": "card payment",
        "is_credit": "money in (direction credit)",
        "customer_type": "individual | institution",
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
    }
)
FEATURE_NAMES: tuple[str, ...] = tuple(FEATURES)

_SLOT_1H_S = 300  # 5-minute buckets
_SLOTS_1H = 12
_SLOT_24H_S = 3600
_SLOTS_24H = 24
_TINY_KEEP = 32
_CREDITS_KEEP = 16
_HISTORY_CAP = 1_000_000


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
    unknown_fx_rate: float = 1.0
    fx_to_cny: Mapping[str, float] = field(default_factory=lambda: FX_TO_CNY)

    def transfer_threshold(self, customer_type: str) -> float:
        if customer_type == "institution":
            return self.institution_transfer_threshold_cny
        return self.individual_transfer_threshold_cny


def new_state() -> dict[str, Any]:
    """The state of a customer never seen before."""
    return {
        "v": STATE_VERSION,
        "n": 0,
        "last": None,
        "h": [],  # [slot, n, sum, credit_sum, debit_sum] 5-min buckets
        "d": [],  # [hour, n, sum, near_cash, near_transfer, credit_sum, debit_sum]
        "day": [None, 0.0, 0.0],  # [local day index, cash sum, transfer sum]
        "tiny": [],  # ts of tiny card payments
        "cr": [],  # [ts, counterparty] of recent credits
        "dev": [],
        "cty": [],
        "cp": [],
        "acct": [],
        "amt": {},  # txn_type -> [n, mean, var] of log amount
    }


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


def _ratio(a: float, b: float) -> float:
    hi = a if a > b else b
    return (a if a < b else b) / hi if hi > 0 else 0.0


def extract(
    txn: Transaction, state: dict[str, Any] | None, config: FeatureConfig
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Features of ``txn`` given the customer's ``state`` (``None`` = new); returns the new state.

    The input ``state`` is not modified (the result is a fresh record), so a caller
    can keep the old one on error. :func:`extract_into` is the in-place variant.
    """
    st = copy_state(state) if state else new_state()
    return extract_into(txn, st, config), st


def extract_into(txn: Transaction, st: dict[str, Any], config: FeatureConfig) -> dict[str, Any]:
    """Like :func:`extract`, but updates the state record ``st`` in place (faster)."""
    if st.get("v") != STATE_VERSION:
        st.clear()
        st.update(new_state())
    ts = txn.ts.timestamp()
    txn_type = txn.txn_type.value
    ctype = txn.customer_type.value
    credit = txn.direction.value == "credit"
    rate = config.fx_to_cny.get(txn.currency, config.unknown_fx_rate)
    amount = round(float(txn.amount) * rate, 2)
    is_cash = txn_type in ("cash_deposit", "cash_withdrawal")
    is_transfer = txn_type == "transfer"
    is_card = txn_type == "card_payment"

    history = st["n"]
    has_history = history > 0
    last = st["last"]
    gap = config.max_gap_s if last is None else min(max(ts - last, 0.0), config.max_gap_s)
    st["n"] = min(history + 1, _HISTORY_CAP)
    st["last"] = ts if last is None or ts > last else last

    # --- thresholds --------------------------------------------------------------------------
    near = config.near_fraction
    cash_thr = config.cash_threshold_cny
    near_cash = is_cash and near * cash_thr <= amount < cash_thr
    tr_thr = config.transfer_threshold(ctype)
    near_transfer = is_transfer and near * tr_thr <= amount < tr_thr

    # --- 1 h window, 5-minute buckets ---------------------------------------------------------
    slot = int(ts // _SLOT_1H_S)
    hb = [b for b in st["h"] if b[0] > slot - _SLOTS_1H]
    cur = next((b for b in hb if b[0] == slot), None)
    if cur is None:
        cur = [slot, 0, 0.0, 0.0, 0.0]
        hb.append(cur)
    cur[1] += 1
    cur[2] = round(cur[2] + amount, 2)
    cur[3 if credit else 4] = round(cur[3 if credit else 4] + amount, 2)
    st["h"] = hb
    count_1h = sum_1h = credit_1h = debit_1h = 0.0
    for b in hb:
        if b[0] <= slot:
            count_1h += b[1]
            sum_1h += b[2]
            credit_1h += b[3]
            debit_1h += b[4]

    # --- 24 h window, 1-hour buckets ----------------------------------------------------------
    hour = int(ts // _SLOT_24H_S)
    db = [b for b in st["d"] if b[0] > hour - _SLOTS_24H]
    cur = next((b for b in db if b[0] == hour), None)
    if cur is None:
        cur = [hour, 0, 0.0, 0, 0, 0.0, 0.0]
        db.append(cur)
    cur[1] += 1
    cur[2] = round(cur[2] + amount, 2)
    cur[3] += near_cash
    cur[4] += near_transfer
    cur[5 if credit else 6] = round(cur[5 if credit else 6] + amount, 2)
    st["d"] = db
    count_24h = sum_24h = near_cash_24h = near_tr_24h = credit_24h = debit_24h = 0.0
    for b in db:
        if b[0] <= hour:
            count_24h += b[1]
            sum_24h += b[2]
            near_cash_24h += b[3]
            near_tr_24h += b[4]
            credit_24h += b[5]
            debit_24h += b[6]

    # --- same local day cash / transfer totals ----------------------------------------------
    local_s = ts + config.utc_offset_hours * 3600.0
    day_idx = int(local_s // 86400)
    day: list[Any] | None = st["day"]
    if day is not None and day[0] != day_idx:
        # a new day resets the totals; a late event from an earlier day counts alone
        day = [day_idx, 0.0, 0.0] if day[0] is None or day_idx > day[0] else None
    if day is not None:
        if is_cash:
            day[1] = round(day[1] + amount, 2)
        elif is_transfer:
            day[2] = round(day[2] + amount, 2)
        st["day"] = day
        cash_day, transfer_day = day[1], day[2]
    else:
        cash_day = amount if is_cash else 0.0
        transfer_day = amount if is_transfer else 0.0

    # --- card testing: tiny card payments in the last 10 minutes ----------------------------
    tiny = [t for t in st["tiny"] if t > ts - config.tiny_window_s]
    if is_card and amount <= config.tiny_card_amount_cny:
        tiny.append(ts)
        del tiny[:-_TINY_KEEP]
    st["tiny"] = tiny
    tiny_10m = sum(1 for t in tiny if t <= ts)

    # --- credits and their counterparties ----------------------------------------------------
    credits = [c for c in st["cr"] if c[0] > ts - 86400.0]
    if credit:
        credits.append([ts, txn.counterparty_id or ""])
        del credits[:-_CREDITS_KEEP]
    st["cr"] = credits
    cps_1h = {c[1] for c in credits if ts - 3600.0 < c[0] <= ts and c[1]}
    cps_24h = {c[1] for c in credits if c[0] <= ts and c[1]}

    # --- first-seen flags ---------------------------------------------------------------------
    size = config.recent_set_size
    country = txn.ip_country or txn.counterparty_country
    new_device = _seen(st["dev"], txn.device_id, has_history, size)
    new_country = _seen(st["cty"], country, has_history, size)
    new_cp = _seen(st["cp"], txn.counterparty_id, has_history, size)
    new_account = _seen(st["acct"], txn.account_id, has_history, size)

    # --- amount vs own history (EW mean / variance of log amount, per txn type) -------------
    la = math.log1p(amount)
    stats = st["amt"].get(txn_type)
    if stats is None:
        z = 0.0
        st["amt"][txn_type] = [1, round(la, 5), 0.0]
    else:
        n, mean, var = stats
        k = config.zscore_prior_weight
        var_eff = (n * var + k * config.zscore_prior_var) / (n + k)
        z = (la - mean) / math.sqrt(var_eff)
        z = max(-config.zscore_clip, min(config.zscore_clip, z))
        alpha = max(1.0 / (n + 1), config.zscore_min_alpha)
        diff = la - mean
        mean += alpha * diff
        var = (1 - alpha) * (var + alpha * diff * diff)
        st["amt"][txn_type] = [min(n + 1, _HISTORY_CAP), round(mean, 5), round(var, 5)]

    cross = txn.cross_border
    if cross is None:
        cc = txn.counterparty_country
        cross = cc is not None and cc != config.home_country
    local_hour = int(local_s // 3600) % 24
    ns, ne = config.night_start_hour, config.night_end_hour
    night = ns <= local_hour < ne if ns <= ne else (local_hour >= ns or local_hour < ne)
    hourly_avg = count_24h / 24.0

    features: dict[str, Any] = {
        "amount_cny": amount,
        "is_cash": is_cash,
        "is_transfer": is_transfer,
        "is_card": is_card,
        "is_credit": credit,
        "customer_type": ctype,
        "segment": txn.segment.value,
        "txn_type": txn_type,
        "channel": txn.channel.value,
        "cash_same_day_cny": cash_day,
        "transfer_same_day_cny": transfer_day,
        "txn_count_1h": int(count_1h),
        "txn_sum_1h_cny": round(sum_1h, 2),
        "txn_count_24h": int(count_24h),
        "txn_sum_24h_cny": round(sum_24h, 2),
        "velocity_ratio_1h": round(count_1h / hourly_avg, 4) if hourly_avg else 0.0,
        "seconds_since_last": round(gap, 3),
        "history_count": history,
        "new_device": new_device,
        "new_country": new_country,
        "new_counterparty": new_cp,
        "new_account": new_account,
        "amount_zscore": round(z, 4),
        "cross_border": cross,
        "foreign_ip": txn.ip_country is not None and txn.ip_country != config.home_country,
        "local_night": night,
        "local_hour": local_hour,
        "tiny_card_count_10m": tiny_10m,
        "near_cash_threshold": near_cash,
        "near_transfer_threshold": near_transfer,
        "near_cash_threshold_count_24h": int(near_cash_24h),
        "near_transfer_threshold_count_24h": int(near_tr_24h),
        "credit_sum_1h_cny": round(credit_1h, 2),
        "debit_sum_1h_cny": round(debit_1h, 2),
        "in_out_ratio_1h": round(_ratio(credit_1h, debit_1h), 4),
        "credit_counterparties_1h": len(cps_1h),
        "credit_sum_24h_cny": round(credit_24h, 2),
        "debit_sum_24h_cny": round(debit_24h, 2),
        "in_out_ratio_24h": round(_ratio(credit_24h, debit_24h), 4),
        "credit_counterparties_24h": len(cps_24h),
    }
    return features


def copy_state(state: dict[str, Any]) -> dict[str, Any]:
    """A copy deep enough that ``extract_into`` never mutates the caller's record."""
    if not state or state.get("v") != STATE_VERSION:
        return new_state()
    return {
        "v": STATE_VERSION,
        "n": state["n"],
        "last": state["last"],
        "h": [list(b) for b in state["h"]],
        "d": [list(b) for b in state["d"]],
        "day": list(state["day"]),
        "tiny": list(state["tiny"]),
        "cr": [list(c) for c in state["cr"]],
        "dev": list(state["dev"]),
        "cty": list(state["cty"]),
        "cp": list(state["cp"]),
        "acct": list(state["acct"]),
        "amt": {k: list(v) for k, v in state["amt"].items()},
    }
