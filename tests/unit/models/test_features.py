"""Per-customer features on explicit event times (the clock is the transactions' ts)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from finpulse.models.events import Transaction
from finpulse.models.features import (
    FEATURE_NAMES,
    FeatureConfig,
    FeatureState,
    extract,
    extract_into,
    short_token,
)
from finpulse.models.risk import model_inputs
from finpulse.streams.core.state_codec import StateCodec
from finpulse.streams.core.state_codec import encode as encode_state
from tests.factories import encode, transaction

CODEC = StateCodec("risk_features", FeatureState)

T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)  # 10:00 local (UTC+8), a Monday
CFG = FeatureConfig()


def txn(at: datetime | float, **over: Any) -> Transaction:
    """A transaction of customer c-1 at ``at`` (datetime or seconds after T0)."""
    ts = at if isinstance(at, datetime) else T0 + timedelta(seconds=at)
    fields = {"customer_id": "c-1", "account_id": "a-1", "ts": ts.isoformat(), **over}
    return Transaction.model_validate_json(encode(transaction(**fields)))


def run(*txns: Transaction, config: FeatureConfig = CFG) -> list[dict[str, Any]]:
    state = None
    out = []
    for t in txns:
        f, state = extract(t, state, config)
        out.append(f)
    return out


def test_every_documented_feature_is_produced_and_nothing_else():
    (f,) = run(txn(0))
    assert set(f) == set(FEATURE_NAMES)
    required = {
        "amount_cny", "is_cash", "is_transfer", "customer_type", "cash_same_day_cny",
        "transfer_same_day_cny", "txn_count_1h", "txn_sum_1h_cny", "txn_count_24h",
        "txn_sum_24h_cny", "seconds_since_last", "new_device", "new_country",
        "new_counterparty", "amount_zscore", "cross_border", "local_night",
        "tiny_card_count_10m", "near_cash_threshold_count_24h",
        "near_transfer_threshold_count_24h", "credit_sum_1h_cny", "debit_sum_1h_cny",
        "in_out_ratio_1h", "credit_counterparties_1h",
    }  # fmt: skip
    assert required <= set(FEATURE_NAMES)


def test_1h_and_24h_windows_count_by_event_time():
    fs = run(
        txn(0, amount=100),
        txn(600, amount=200),
        txn(3000, amount=300),  # 50 min: all three in the hour
        txn(3600 + 900, amount=400),  # 75 min: the first two (5-minute buckets) dropped
        txn(86400 + 1200, amount=500),  # next day, +20 min: only the 4th is within 24 h
    )
    assert [f["txn_count_1h"] for f in fs] == [1, 2, 3, 2, 1]
    assert fs[2]["txn_sum_1h_cny"] == 600.0
    assert fs[3]["txn_sum_1h_cny"] == 700.0
    assert [f["txn_count_24h"] for f in fs] == [1, 2, 3, 4, 2]
    assert fs[4]["txn_sum_24h_cny"] == 900.0
    assert [f["seconds_since_last"] for f in fs][1:] == [600.0, 2400.0, 1500.0, 83100.0]
    assert fs[0]["seconds_since_last"] == CFG.max_gap_s  # no previous transaction


def test_first_seen_flags_are_bounded_and_false_without_history():
    fs = run(
        txn(0, device_id="d-1", ip_country="CN", counterparty_id="p-1"),
        txn(60, device_id="d-1", ip_country="CN", counterparty_id="p-1"),
        txn(120, device_id="d-2", ip_country="KH", counterparty_id="p-2"),
        *[txn(180 + i, device_id=f"d-x{i}") for i in range(8)],  # pushes d-1 out of the last 8
        txn(400, device_id="d-1"),
    )
    assert (fs[0]["new_device"], fs[0]["new_country"], fs[0]["new_counterparty"]) == (
        False,
        False,
        False,
    )
    assert (fs[1]["new_device"], fs[1]["new_country"], fs[1]["new_counterparty"]) == (
        False,
        False,
        False,
    )
    assert (fs[2]["new_device"], fs[2]["new_country"], fs[2]["new_counterparty"]) == (
        True,
        True,
        True,
    )
    assert fs[2]["foreign_ip"] is True
    assert fs[-1]["new_device"] is True  # forgotten after 8 other devices


def test_same_day_totals_reset_at_local_midnight():
    # 15:59 and 16:00 UTC are 23:59 and 00:00 in UTC+8
    before = datetime(2026, 1, 5, 15, 59, tzinfo=UTC)
    fs = run(
        txn(before - timedelta(hours=3), amount=30000, txn_type="cash_deposit", direction="credit"),
        txn(before, amount=15000, txn_type="cash_withdrawal"),
        txn(before, amount=100000, txn_type="transfer"),
        txn(before + timedelta(minutes=1), amount=10000, txn_type="cash_deposit"),
        txn(before + timedelta(minutes=2), amount=2000, txn_type="card_payment"),
    )
    assert [f["cash_same_day_cny"] for f in fs] == [30000.0, 45000.0, 45000.0, 10000.0, 10000.0]
    assert [f["transfer_same_day_cny"] for f in fs] == [0.0, 0.0, 100000.0, 0.0, 0.0]
    assert fs[1]["local_hour"] == 23 and fs[3]["local_hour"] == 0
    assert fs[3]["local_night"] is True and fs[1]["local_night"] is False


def test_same_day_cash_crosses_the_threshold_on_the_crossing_transaction():
    fs = run(
        txn(0, amount=30000, txn_type="cash_deposit"),
        txn(60, amount=19999.99, txn_type="cash_deposit"),
        txn(120, amount=0.01, txn_type="cash_withdrawal"),
    )
    assert [f["cash_same_day_cny"] >= 50000 for f in fs] == [False, False, True]


def test_amount_zscore_against_own_history_per_txn_type():
    history = [txn(60 * i, amount=100 + (i % 5), txn_type="card_payment") for i in range(40)]
    fs = run(
        *history,
        txn(3000, amount=104, txn_type="card_payment"),
        txn(3060, amount=20000, txn_type="card_payment"),
        txn(3120, amount=20000, txn_type="transfer"),  # first transfer: no history, z = 0
    )
    assert fs[0]["amount_zscore"] == 0.0
    assert abs(fs[-3]["amount_zscore"]) < 1.0
    assert fs[-2]["amount_zscore"] >= 5.0
    assert fs[-1]["amount_zscore"] == 0.0
    assert [f["type_history_count"] for f in fs[-3:]] == [40, 41, 0]  # seen before, per type


def test_near_threshold_counts_use_the_configured_thresholds():
    fs = run(
        txn(0, amount=42500, txn_type="cash_deposit"),  # 85 %: counts
        txn(60, amount=42499, txn_type="cash_deposit"),  # just under 85 %: no
        txn(120, amount=49999, txn_type="cash_deposit"),  # counts
        txn(180, amount=50000, txn_type="cash_deposit"),  # at the threshold: not "near"
        txn(240, amount=480000, txn_type="transfer"),  # individual: near 500k
        txn(300, amount=480000, txn_type="transfer", customer_type="institution"),  # not 2M
    )
    assert [f["near_cash_threshold"] for f in fs[:4]] == [True, False, True, False]
    assert fs[3]["near_cash_threshold_count_24h"] == 2
    assert fs[4]["near_transfer_threshold_count_24h"] == 1
    assert fs[5]["near_transfer_threshold"] is False
    lower = FeatureConfig.from_parameters({"lv_cash_rmb": 45000, "near_threshold_ratio": 0.9})
    (f,) = run(txn(0, amount=42500, txn_type="cash_deposit"), config=lower)
    assert f["near_cash_threshold"] is True


def test_tiny_card_payments_in_the_last_10_minutes():
    burst = [txn(30 * i, amount=1.5, txn_type="card_payment") for i in range(6)]
    fs = run(*burst, txn(30 * 5 + 590, amount=2.0, txn_type="card_payment"))  # 150 still in
    assert [f["tiny_card_count_10m"] for f in fs] == [1, 2, 3, 4, 5, 6, 2]


def test_mule_in_and_out_features():
    credits = [
        txn(60 * i, amount=10000, direction="credit", txn_type="transfer", counterparty_id=f"p{i}")
        for i in range(4)
    ]
    out = txn(600, amount=38000, direction="debit", txn_type="transfer", counterparty_id="x")
    f = run(*credits, out)[-1]
    assert f["credit_sum_1h_cny"] == 40000.0 and f["debit_sum_1h_cny"] == 38000.0
    assert f["in_out_ratio_1h"] == pytest.approx(0.95)
    assert f["credit_counterparties_1h"] == 4 and f["credit_counterparties_24h"] == 4


def test_new_payers_of_the_last_hour_count_only_first_pay_ins_inside_the_hour():
    def credit(at: float, payer: str, amount: float = 6000) -> Transaction:
        return txn(at, amount=amount, direction="credit", txn_type="transfer",
                   counterparty_id=payer)  # fmt: skip

    known = [txn(-7200, amount=90, txn_type="card_payment", counterparty_id="shop")]
    fs = run(*known, credit(0, "p1"), credit(600, "p2"), credit(900, "p2", 4000),
             credit(1200, "shop"), credit(4100, "p3", 9000))  # fmt: skip
    assert [f["new_payers_1h"] for f in fs] == [0, 1, 2, 2, 2, 2]
    assert [f["new_payer_credit_1h_cny"] for f in fs] == [0.0, 6000.0, 12000.0, 12000.0,
                                                         12000.0, 15000.0]  # fmt: skip
    assert fs[-1]["new_payers_24h"] == 3
    small = run(*known, credit(0, "p1", 1500), credit(60, "p2", 30000))[-1]  # under the floor
    assert (small["new_payers_1h"], small["new_payer_credit_1h_cny"]) == (1, 30000.0)
    assert small["new_payers_24h"] == 2


def test_a_payer_stays_known_while_card_merchants_and_billers_fill_the_last_counterparties():
    def transfer(at: float, party: str, direction: str = "credit") -> Transaction:
        return txn(at, amount=6000, direction=direction, txn_type="transfer",
                   counterparty_id=party)  # fmt: skip

    shops = [txn(60 * i, amount=90, txn_type="card_payment", counterparty_id=f"m{i}")
             for i in range(1, 13)]  # fmt: skip
    first = [transfer(-7200, "friend", "debit"), transfer(-7000, "employer")]
    again = [transfer(900, "friend"), transfer(960, "employer"), transfer(1020, "stranger")]
    fs = run(*first, *shops, *again)
    assert [f["new_counterparty"] for f in fs[-3:]] == [True, True, True]  # the last 8 forgot
    assert [f["new_payers_1h"] for f in fs[-3:]] == [0, 0, 1]
    assert fs[-1]["new_payers_24h"] == 2  # "employer", a first pay-in, and "stranger"


def test_a_state_written_before_the_transfer_counterparties_starts_them_from_the_last_8():
    (_, state) = extract(txn(0, amount=90, txn_type="card_payment", counterparty_id="p1"),
                         None, CFG)  # fmt: skip
    state.transfer_parties = []  # as decoded from a record without the field
    f, _ = extract(txn(60, amount=6000, direction="credit", txn_type="transfer",
                       counterparty_id="p1"), state, CFG)  # fmt: skip
    assert f["new_payers_1h"] == 0


def test_fx_conversion_uses_the_fixed_table_and_unknown_currencies_have_no_cny_amount():
    usd, xyz = run(txn(0, amount=100, currency="USD"), txn(60, amount=60000, currency="XYZ"))
    assert usd["amount_cny"] == 710.0
    assert xyz["amount_cny"] is None and xyz["txn_count_1h"] == 2 and xyz["txn_sum_1h_cny"] == 710.0
    assert model_inputs(xyz)["amount_cny"] == 0.0


def test_json_round_trip_of_state_gives_identical_features_and_state_stays_small():
    txns = [
        txn(
            97 * i,
            amount=10 + (i * 37) % 5000,
            direction="credit" if i % 3 else "debit",
            txn_type=("transfer", "card_payment", "cash_deposit")[i % 3],
            device_id=f"d{i % 4}",
            counterparty_id=f"p{i % 11}",
        )
        for i in range(400)
    ]
    plain, state = [], None
    for t in txns:
        f, state = extract(t, state, CFG)
        plain.append(f)
    tripped, state2 = [], None
    for t in txns:
        f, state2 = extract(t, CODEC.decode(encode_state(state2)) if state2 else None, CFG)
        tripped.append(f)
    assert tripped == plain
    assert len(encode_state(state)) <= 2048  # the record as the changelog holds it


def test_extract_does_not_modify_its_input_and_extract_into_does():
    _, state = extract(txn(0), None, CFG)
    frozen = encode_state(state)
    extract(txn(60), state, CFG)
    assert encode_state(state) == frozen
    extract_into(txn(60), state, CFG)
    assert encode_state(state) != frozen
    assert FeatureState().count == 0


def test_a_state_of_the_previous_release_is_migrated_and_older_ones_start_fresh():
    slot, hour = int(T0.timestamp() // 300), int(T0.timestamp() // 3600)
    v3 = {
        "v": 3, "n": 2, "last": T0.timestamp(),
        "h": [[slot, 2, 0, 25050]], "ht": [2, 0, 25050],
        "d": [[hour, 2, 0, 0, 0, 25050]], "dt": [2, 0, 0, 0, 25050],
        "day": [None, 0, 0], "tiny": [], "cr": [],
        "dev": [short_token("d-1")], "cty": ["CN"], "cp": [], "acct": [short_token("a-1")],
        "amt": {"4": [2, 4.8, 0.01]},
    }  # fmt: skip
    st = CODEC.decode(json.dumps(v3).encode())  # as the changelog of the previous release has it
    f, _ = extract(txn(60, amount=100), st, CFG)
    assert (f["txn_count_1h"], f["txn_sum_1h_cny"], f["history_count"]) == (3, 350.5, 2)
    assert not f["new_device"] and not f["new_account"]
    assert CODEC.decode(json.dumps({**v3, "v": 2}).encode()) == FeatureState()
