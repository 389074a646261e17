"""The fraud rules of the policy on the features of real transaction sequences: account
takeover without amount history, a money mule's fan-in then fan-out over a day and its
fan-in within an hour, the early warning of a split just under a reporting threshold, and a
single transaction just under it that does not fit the customer's own history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from finpulse.config.policy import load_policy
from finpulse.models.events import Transaction
from finpulse.models.features import FeatureConfig, extract
from finpulse.models.large_value import LargeValueConfig, day_features, new_ledger
from finpulse.streams.stages.rules import RuleEngine
from tests.factories import encode, transaction

ENGINE = RuleEngine(load_policy())
CFG = FeatureConfig.from_parameters(ENGINE.policy.parameters)
LARGE_VALUE = LargeValueConfig.from_parameters(ENGINE.policy.parameters)
T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


def replay(events: list[dict[str, Any]]) -> list[set[str]]:
    """The ids of the rules each event matches, in order, for one customer (risk features
    and large-value day features, as the risk stage computes them)."""
    state, ledger, fired = None, new_ledger(), []
    for i, ev in enumerate(events):
        ev = {"customer_id": "c-1", "ts": (T0 + timedelta(minutes=10 * i)).isoformat(), **ev}
        txn = Transaction.model_validate_json(encode(transaction(**ev)))
        f, state = extract(txn, state, CFG)
        f.update(day_features(txn, ledger, LARGE_VALUE, f["cross_border"]))
        fired.append({r.id for r in ENGINE.matching("transaction", f)})
    return fired


HISTORY = [
    {"amount": 80 + i, "counterparty_id": f"shop-{i % 3}", "counterparty_country": "CN"}
    for i in range(6)
]


def ato(**over: Any) -> dict[str, Any]:
    return {
        "txn_type": "transfer", "channel": "app", "amount": 20000, "device_id": "d-new",
        "ip_country": "TH", "counterparty_id": "payee-new", "counterparty_country": "CN",
        **over,
    }  # fmt: skip


def test_a_first_transfer_from_a_new_device_abroad_to_a_new_payee_is_an_account_takeover():
    assert "account_takeover.new_device_payee" in replay([*HISTORY, ato()])[-1]


def test_the_same_transfer_from_a_known_device_or_under_the_amount_is_not():
    assert "account_takeover.new_device_payee" not in replay([*HISTORY, ato(device_id="d-1")])[-1]
    assert "account_takeover.new_device_payee" not in replay([*HISTORY, ato(amount=900)])[-1]


TRANSFERS = [
    {"txn_type": "transfer", "amount": 800 + 50 * i, "counterparty_id": f"friend-{i % 2}"}
    for i in range(6)
]


def test_a_large_transfer_to_a_new_payee_from_a_new_device_in_a_known_country_is_a_takeover():
    known = [*HISTORY, *TRANSFERS]
    fired = replay([*known, ato(ip_country="CN")])[-1]
    assert "account_takeover" in fired and "account_takeover.new_device_payee" not in fired
    assert "account_takeover" not in replay([*known, ato(ip_country="CN", device_id="d-1")])[-1]
    assert "account_takeover" not in replay([*known, ato(ip_country="CN", amount=5000)])[-1]
    institution = [{**e, "customer_type": "institution", "segment": "sme"} for e in known]
    sme = ato(ip_country="CN", customer_type="institution", segment="sme")
    assert "account_takeover" not in replay([*institution, sme])[-1]


def credits(payers: list[str]) -> list[dict[str, Any]]:
    return [
        {"direction": "credit", "txn_type": "transfer", "channel": "api", "amount": 9000,
         "counterparty_id": p, "counterparty_country": "CN"}
        for p in payers
    ]  # fmt: skip


PASS_ON = {"txn_type": "transfer", "amount": 25000, "counterparty_id": "out-1"}


def test_credits_from_new_payers_passed_on_to_a_new_payee_are_a_mule():
    fired = replay([*HISTORY, *credits(["m1", "m2", "m3"]), PASS_ON])
    assert "mule.fan_in_out" in fired[-1]
    assert not any("mule.fan_in_out" in f for f in fired[:-1])


def test_credits_from_known_payers_or_a_private_customer_are_not():
    known = [{**h, "counterparty_id": "shop-0"} for h in HISTORY]
    assert "mule.fan_in_out" not in replay([*known, *credits(["shop-0"] * 3), PASS_ON])[-1]
    private = [{**e, "segment": "private"} for e in [*HISTORY, *credits(["m1", "m2", "m3"])]]
    assert "mule.fan_in_out" not in replay([*private, {**PASS_ON, "segment": "private"}])[-1]


def test_two_new_payers_within_an_hour_warn_of_a_mule_before_the_pass_through():
    fired = replay([*HISTORY, *credits(["m1", "m2"])])
    assert "mule.new_payers_burst" in fired[-1]
    assert not any("mule.new_payers_burst" in f for f in fired[:-1])


def test_usual_payers_paying_after_a_day_of_card_payments_are_no_mule_burst():
    usual = [{**t, "direction": "credit", "amount": 6000} for t in TRANSFERS[:2]]
    shopping = [{"amount": 60 + i, "counterparty_id": f"shop-{i}"} for i in range(12)]
    known = [*HISTORY, *TRANSFERS, *shopping]  # friend-0 and friend-1 were paid before
    assert not any("mule.new_payers_burst" in f for f in replay([*known, *usual]))
    assert "mule.new_payers_burst" in replay([*known, *credits(["m1", "m2"])])[-1]


def test_one_payer_twice_small_sums_or_credits_that_are_not_transfers_are_no_mule_burst():
    def burst(events: list[dict[str, Any]]) -> bool:
        return any("mule.new_payers_burst" in f for f in replay([*HISTORY, *events]))

    assert not burst(credits(["m1", "m1"]))
    assert not burst([{**c, "amount": 3000} for c in credits(["m1", "m2"])])
    small_and_large = credits(["m1", "m2"])
    small_and_large[0]["amount"], small_and_large[1]["amount"] = 1500, 30000
    assert not burst(small_and_large)  # one payment under mule_min_payment_cny: one payer
    assert not burst([{**c, "txn_type": "securities_trade"} for c in credits(["m1", "m2"])])
    assert not burst([{**c, "segment": "private"} for c in credits(["m1", "m2"])])


def cash_deposits(*amounts: float) -> list[dict[str, Any]]:
    return [
        {"direction": "credit", "txn_type": "cash_deposit", "channel": "branch", "amount": a}
        for a in amounts
    ]


def test_a_second_deposit_just_under_the_cash_threshold_is_an_early_warning_the_third_structuring():
    fired = replay([*HISTORY, *cash_deposits(46000, 47500, 45200)])
    assert ["structuring.early_warning" in f for f in fired[-3:]] == [False, True, True]
    assert ["structuring.cash" in f for f in fired[-3:]] == [False, False, True]


def test_deposits_well_under_the_threshold_or_alone_raise_no_early_warning():
    assert not any("structuring.early_warning" in f for f in replay(cash_deposits(30000, 31000)))
    assert not any("structuring.early_warning" in f for f in replay(cash_deposits(46000)))


OFF_PROFILE = "structuring.off_profile"
DEPOSITS = cash_deposits(2000, 2600, 1800, 2300)  # a retail customer's usual cash


def test_a_deposit_just_under_the_threshold_far_above_the_customers_own_is_off_profile():
    assert OFF_PROFILE in replay([*HISTORY, *DEPOSITS, *cash_deposits(46000)])[-1]
    assert OFF_PROFILE in replay([*HISTORY, *TRANSFERS, *cash_deposits(46000)])[-1]  # first cash


def test_near_threshold_amounts_that_fit_the_customers_habits_are_not_off_profile():
    def off(events: list[dict[str, Any]]) -> bool:
        return OFF_PROFILE in replay(events)[-1]

    takings = cash_deposits(38000, 44000, 41000, 47000, 39000)  # a shop banking its takings
    assert not off([*HISTORY, *takings, *cash_deposits(46000)])
    assert not off([*HISTORY, *DEPOSITS, *cash_deposits(30000)])  # under the near band
    assert not off([*HISTORY, *cash_deposits(46000)])  # too little known of the customer yet
    corporate = [{**e, "customer_type": "institution", "segment": "corporate"}
                 for e in [*HISTORY, *DEPOSITS, *cash_deposits(46000)]]  # fmt: skip
    assert not off(corporate)  # a company's routine treasury flows: the counts judge those
    incoming = {"direction": "credit", "txn_type": "transfer", "amount": 460000,
                "counterparty_id": "payer-1", "counterparty_country": "CN"}  # fmt: skip
    assert not off([*HISTORY, *TRANSFERS, incoming])  # a payer sets an incoming amount
    assert off([*HISTORY, *TRANSFERS, {**incoming, "direction": "debit"}])
