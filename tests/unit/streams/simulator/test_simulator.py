"""Unit tests of the event simulator (no broker): determinism, contract, ground truth, realism."""

from __future__ import annotations

import json
import random
import statistics
from collections import Counter
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from finpulse.models.events import Feedback, Interaction, Transaction
from finpulse.models.large_value import (
    CRITERIA,
    DEFAULT_PARAMETERS,
    LargeValueConfig,
    day_features,
    new_ledger,
)
from finpulse.streams.core.topics import FEEDBACK, INTERACTIONS, TRANSACTIONS
from finpulse.streams.simulator import SimEvent, Simulator
from finpulse.streams.simulator.malformed import MALFORMED_KINDS, corrupt
from finpulse.streams.simulator.patterns import PATTERNS
from finpulse.streams.simulator.transactions import (
    CASH_THRESHOLD,
    TRANSFER_THRESHOLD_INDIVIDUAL,
    TRANSFER_THRESHOLD_INSTITUTION,
)

START = datetime(2026, 1, 5, tzinfo=UTC)
MODELS = {TRANSACTIONS: Transaction, INTERACTIONS: Interaction, FEEDBACK: Feedback}
KIND_OF = {TRANSACTIONS: "transaction", INTERACTIONS: "interaction", FEEDBACK: "feedback"}
CHANNEL_NORM_WAIT = {
    "call_center": 10,
    "chat": 8,
    "app": 3,
    "web": 5,
    "email": 10800,
    "branch": 360,
}


def _sim(seed: int = 1, n: int = 20_000, **kw: object) -> Simulator:
    args: dict[str, object] = {
        "seed": seed,
        "start": START,
        "n_events": n,
        "sim_span_s": 86400 * 2,
        "n_customers": 2000,
        "malformed_share": 0.005,
    }
    args.update(kw)
    return Simulator(**args)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def run() -> tuple[Simulator, list[SimEvent]]:
    sim = _sim()
    return sim, list(sim.events())


@pytest.fixture(scope="module")
def parsed(run: tuple[Simulator, list[SimEvent]]) -> dict[str, list[dict]]:
    _, evs = run
    out: dict[str, list[dict]] = {TRANSACTIONS: [], INTERACTIONS: [], FEEDBACK: []}
    for ev in evs:
        if not ev.malformed:
            out[ev.topic].append(json.loads(ev.value))
    return out


def test_count_and_stats(run: tuple[Simulator, list[SimEvent]]) -> None:
    sim, evs = run
    stats = sim.stats()
    assert len(evs) == stats["produced"] == 20_000
    assert stats["valid"] + stats["malformed"] == 20_000
    assert sum(stats["by_topic"].values()) == 20_000
    assert stats["malformed"] == sum(ev.malformed for ev in evs) == 100
    assert Counter(ev.topic for ev in evs) == stats["by_topic"]
    assert set(stats["patterns"]) == set(PATTERNS)


def test_deterministic_same_seed_byte_identical() -> None:
    a = [(e.topic, e.key, e.value, e.ts) for e in _sim(seed=7, n=3000).events()]
    b = [(e.topic, e.key, e.value, e.ts) for e in _sim(seed=7, n=3000).events()]
    assert a == b
    sim = _sim(seed=7, n=3000)
    first = [e.value for e in sim.events()]
    again = [e.value for e in sim.events()]  # events() restarts from scratch
    assert first == again
    assert _sim(seed=7, n=3000).ground_truth() == []  # nothing before a run


def test_different_seed_differs() -> None:
    a = [e.value for e in _sim(seed=1, n=500).events()]
    b = [e.value for e in _sim(seed=2, n=500).events()]
    assert a != b
    assert len({v for v in a} & {v for v in b}) == 0


def test_every_valid_event_validates_and_every_malformed_fails(
    run: tuple[Simulator, list[SimEvent]],
) -> None:
    _, evs = run
    for ev in evs:
        model = MODELS[ev.topic]
        if ev.malformed:
            with pytest.raises(ValidationError):
                model.model_validate_json(ev.value)
        else:
            obj = model.model_validate_json(ev.value)
            assert obj.event_id == ev.event_id
            assert ev.key == obj.customer_id.encode()
            assert obj.ts == ev.ts


def test_every_malformed_kind_fails_for_every_topic(
    parsed: dict[str, list[dict]],
) -> None:
    rng = random.Random(3)
    for topic, model in MODELS.items():
        for d in parsed[topic][:40]:
            model.model_validate(d, strict=False)  # the source is valid
            for kind in MALFORMED_KINDS:
                for _ in range(3):
                    payload, got, _ = corrupt(rng, KIND_OF[topic], d, kind=kind)
                    assert got == kind
                    with pytest.raises(ValidationError):
                        model.model_validate_json(payload)


def test_malformed_mix(run: tuple[Simulator, list[SimEvent]]) -> None:
    sim, evs = run
    kinds = sim.stats()["malformed_by_kind"]
    assert len(kinds) >= 6
    assert any(ev.malformed and ev.key is None for ev in evs)
    assert any(ev.malformed and ev.topic == INTERACTIONS for ev in evs)


def test_ids_unique_and_deterministic_format(parsed: dict[str, list[dict]]) -> None:
    ids = [d["event_id"] for ds in parsed.values() for d in ds]
    assert len(ids) == len(set(ids))
    assert all(i.split("-")[1] == "1" for i in ids)
    assert {i[0] for i in ids} == {"t", "i", "f"}


def test_ordered_by_simulated_time_within_span(run: tuple[Simulator, list[SimEvent]]) -> None:
    _, evs = run
    ts = [ev.ts for ev in evs]
    assert ts == sorted(ts)
    assert ts[0] >= START
    span_end = datetime.fromtimestamp(START.timestamp() + 86400 * 2, UTC)
    assert ts[-1] < span_end
    assert (ts[-1] - ts[0]).total_seconds() > 86400 * 1.9  # the whole span is used


def test_feedback_references_earlier_events(parsed: dict[str, list[dict]]) -> None:
    seen: dict[str, tuple[str, str]] = {}
    for d in parsed[TRANSACTIONS]:
        seen[d["event_id"]] = ("t", d["ts"])
    for d in parsed[INTERACTIONS]:
        seen[d["event_id"]] = ("i", d["ts"])
    fbs = parsed[FEEDBACK]
    assert fbs
    for f in fbs:
        kind, ts = seen[f["ref_event_id"]]
        assert ts < f["ts"]
        if f["kind"] in ("fraud_confirmed", "fraud_cleared"):
            assert kind == "t"
        else:
            assert kind == "i"
        assert (f["kind"] == "csat_survey") == ("value" in f)
    for d in parsed[INTERACTIONS]:
        if "ref_event_id" in d:
            kind, ts = seen[d["ref_event_id"]]
            assert kind == "t" and ts <= d["ts"]


def test_ground_truth_references_emitted_events(
    run: tuple[Simulator, list[SimEvent]], parsed: dict[str, list[dict]]
) -> None:
    sim, _ = run
    txns = {d["event_id"]: d for d in parsed[TRANSACTIONS]}
    ints = {d["event_id"]: d for d in parsed[INTERACTIONS]}
    gt = sim.ground_truth()
    assert Counter(r["pattern"] for r in gt).keys() == set(PATTERNS)
    for r in gt:
        assert r["event_ids"] or r["pattern"] == "channel_outage"
        assert r["start_ts"] <= r["end_ts"]
        for eid in r["related_event_ids"]:
            assert eid in ints
        if r["pattern"] == "channel_outage":
            assert r["channel"] and 5 <= r["wait_factor"] <= 20
            for eid in r["event_ids"]:
                d = ints[eid]
                assert d["channel"] == r["channel"]
                start = r.get("first_event_ts", r["start_ts"])
            assert start <= d["ts"] <= r["end_ts"]
            continue
        for eid in r["event_ids"]:
            d = txns[eid]
            assert d["customer_id"] == r["customer_id"]
            assert r["start_ts"] <= d["ts"] <= r["end_ts"]


def test_fraud_labels_follow_ground_truth(
    run: tuple[Simulator, list[SimEvent]], parsed: dict[str, list[dict]]
) -> None:
    sim, _ = run
    fraud = {e for r in sim.ground_truth() if r["fraud"] for e in r["event_ids"]}
    confirmed = [f for f in parsed[FEEDBACK] if f["kind"] == "fraud_confirmed"]
    cleared = [f for f in parsed[FEEDBACK] if f["kind"] == "fraud_cleared"]
    assert all(f["ref_event_id"] in fraud for f in confirmed)
    assert not any(f["ref_event_id"] in fraud for f in cleared)
    assert len(confirmed) >= 0.6 * len(fraud)
    assert cleared


def test_every_pattern_at_5000_events() -> None:
    sim = _sim(seed=11, n=5000, sim_span_s=86400)
    evs = list(sim.events())
    assert len(evs) == 5000
    assert set(sim.stats()["patterns"]) == set(PATTERNS)


def test_small_run_has_outage_and_no_crash() -> None:
    sim = _sim(seed=5, n=50, sim_span_s=600, n_customers=10)
    evs = list(sim.events())
    assert len(evs) == 50
    assert [r["pattern"] for r in sim.ground_truth()] == ["channel_outage"]
    assert list(_sim(n=0).events()) == []


def _ts(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def _amount_cny(d: dict) -> float:
    return d["amount"] * (7.1 if d["currency"] == "USD" else 1.0)


def test_pattern_shapes(
    run: tuple[Simulator, list[SimEvent]], parsed: dict[str, list[dict]]
) -> None:
    sim, _ = run
    txns = {d["event_id"]: d for d in parsed[TRANSACTIONS]}
    for r in sim.ground_truth():
        evs = [txns[e] for e in r["event_ids"]] if r["pattern"] != "channel_outage" else []
        if r["pattern"] == "card_testing":
            tests = [d for d in evs if d["amount"] <= 5]
            assert 10 <= len(tests) <= 30
            assert all(d["txn_type"] == "card_payment" for d in evs)
        elif r["pattern"] == "structuring":
            thr = r["threshold"]
            assert 3 <= len(evs) <= 6
            assert all(0.85 * thr <= _amount_cny(d) < thr for d in evs)
        elif r["pattern"] == "large_value":
            thr = r["threshold"]
            assert sum(_amount_cny(d) for d in evs) >= thr
            if r["variant"] != "cash_cumulative":
                assert _amount_cny(evs[0]) >= thr
            else:
                assert len({d["ts"][:10] for d in evs}) >= 1
            # the obligation starts where the running total reaches the threshold
            by_time = sorted(evs, key=lambda d: d["ts"])
            reach = next(
                i for i in range(len(by_time))
                if sum(_amount_cny(d) for d in by_time[: i + 1]) >= thr
            )  # fmt: skip
            assert _ts(r["start_ts"]) == _ts(r["observable_ts"]) == _ts(by_time[reach]["ts"])
            assert _ts(r["first_event_ts"]) == _ts(by_time[0]["ts"])
        elif r["pattern"] == "account_takeover":
            assert all(d["device_id"] == r["new_device_id"] for d in evs)
            assert all(d["txn_type"] == "transfer" and d["direction"] == "debit" for d in evs)
        elif r["pattern"] == "mule":
            credits = [d for d in evs if d["direction"] == "credit"]
            debits = [d for d in evs if d["direction"] == "debit"]
            assert len(credits) >= 3 and debits
            out = sum(d["amount"] for d in debits)
            assert 0.89 * sum(d["amount"] for d in credits) <= out


def _background_shares(sim: Simulator, parsed: dict[str, list[dict]]) -> list[float]:
    """Each background cash or transfer amount as a share of its large-value threshold."""
    in_pattern = {e for r in sim.ground_truth() for e in r["event_ids"]}
    shares = []
    for d in parsed[TRANSACTIONS]:
        if d["event_id"] in in_pattern:
            continue
        if d["txn_type"] in ("cash_deposit", "cash_withdrawal"):
            shares.append(_amount_cny(d) / CASH_THRESHOLD)
        elif d["txn_type"] == "transfer":
            thr = (
                TRANSFER_THRESHOLD_INDIVIDUAL
                if d["customer_type"] == "individual"
                else TRANSFER_THRESHOLD_INSTITUTION
            )
            shares.append(_amount_cny(d) / thr)
    return shares


def test_background_stays_below_reporting_thresholds(
    run: tuple[Simulator, list[SimEvent]], parsed: dict[str, list[dict]]
) -> None:
    assert max(_background_shares(run[0], parsed)) < 1.0


def test_some_clean_customers_transact_just_under_a_threshold(
    run: tuple[Simulator, list[SimEvent]], parsed: dict[str, list[dict]]
) -> None:
    """Customers whose habits reach that high (a shop's takings, a company's payments) make
    ordinary transactions just under a threshold: a lone one is no sign of structuring."""
    near = [x for x in _background_shares(run[0], parsed) if x >= 0.85]
    assert near
    assert len(near) < 0.01 * len(_background_shares(run[0], parsed))


def test_reportable_days_are_exactly_the_ground_truths(
    run: tuple[Simulator, list[SimEvent]], parsed: dict[str, list[dict]]
) -> None:
    """The ground truth follows Art. 5 as finpulse reads it: every customer whose same-day
    one-sided total of a criterion reaches its threshold is a large-value or structuring
    case, and every large-value case reaches one."""
    sim, _ = run
    truth = sim.ground_truth()
    flagged = {r["customer_id"] for r in truth if r["pattern"] in ("structuring", "large_value")}
    config = LargeValueConfig.from_parameters(DEFAULT_PARAMETERS)
    ledgers: dict[str, dict] = {}
    reached: set[str] = set()
    for d in sorted(parsed[TRANSACTIONS], key=lambda d: d["ts"]):
        txn = Transaction.model_validate(d, strict=False)
        ledger = ledgers.setdefault(d["customer_id"], new_ledger())
        features = day_features(txn, ledger, config, bool(d.get("cross_border")))
        for criterion in CRITERIA:
            for cls in ("rmb", "usd"):
                total = features.get(f"lv_{criterion}_day_{cls}")
                if total is not None and total >= DEFAULT_PARAMETERS[f"lv_{criterion}_{cls}"]:
                    reached.add(d["customer_id"])
    large_value = {r["customer_id"] for r in truth if r["pattern"] == "large_value"}
    assert reached and reached <= flagged
    assert large_value <= reached


def test_proportions_sane(parsed: dict[str, list[dict]]) -> None:
    tx, it, fb = parsed[TRANSACTIONS], parsed[INTERACTIONS], parsed[FEEDBACK]
    assert 5 <= len(tx) / len(it) <= 10
    assert len(fb) < len(it)
    segs = Counter(d["segment"] for d in tx)
    assert len(segs) == 6 and segs.most_common(1)[0][0] == "retail"
    assert {d["txn_type"] for d in tx} == {
        "transfer", "cash_withdrawal", "cash_deposit", "card_payment", "bill_payment",
        "securities_trade", "fx",
    }  # fmt: skip
    assert {d["channel"] for d in tx} == {
        "app",
        "web",
        "branch",
        "atm",
        "pos",
        "call_center",
        "api",
    }
    assert {d["channel"] for d in it} == set(CHANNEL_NORM_WAIT)
    assert Counter(d["currency"] for d in tx).most_common(1)[0][0] == "CNY"
    cards = [
        d["amount"] for d in tx if d["txn_type"] == "card_payment" and d["segment"] == "retail"
    ]
    assert 30 < statistics.median(cards) < 500
    corp = [d["amount"] for d in tx if d["txn_type"] == "transfer" and d["segment"] == "corporate"]
    assert 1e4 < statistics.median(corp) < 1e6
    waits = {
        ch: statistics.median(d["wait_seconds"] for d in it if d["channel"] == ch)
        for ch in CHANNEL_NORM_WAIT
    }
    assert waits["chat"] < waits["call_center"] < waits["branch"] < waits["email"]
    assert waits["email"] > 3600
    csat = [f for f in fb if f["kind"] == "csat_survey"]
    assert 0.2 < len(csat) / len(it) < 0.4
    assert all(f["value"] in (1, 2, 3, 4, 5) for f in csat)
    complaints = [d for d in it if d["interaction_type"] == "complaint"]
    assert complaints and all("complaint_id" in d for d in complaints)
    assert 0.1 < sum("ref_event_id" in d for d in it) / len(it) < 0.5


def test_diurnal_volume_low_at_night(parsed: dict[str, list[dict]]) -> None:
    hours = Counter((int(d["ts"][11:13]) + 8) % 24 for d in parsed[TRANSACTIONS])
    night = sum(hours[h] for h in (1, 2, 3, 4))
    day = sum(hours[h] for h in (10, 11, 14, 15))
    assert night * 5 < day


def test_csat_correlates_with_wait_and_resolution(parsed: dict[str, list[dict]]) -> None:
    ints = {d["event_id"]: d for d in parsed[INTERACTIONS]}
    rows = [
        (ints[f["ref_event_id"]], f["value"])
        for f in parsed[FEEDBACK]
        if f["kind"] == "csat_survey"
    ]
    fast = [v for d, v in rows if d["wait_seconds"] < CHANNEL_NORM_WAIT[d["channel"]]]
    slow = [v for d, v in rows if d["wait_seconds"] > 4 * CHANNEL_NORM_WAIT[d["channel"]]]
    assert statistics.mean(fast) > statistics.mean(slow) + 0.5
    solved = [v for d, v in rows if d["resolved"]]
    unsolved = [v for d, v in rows if not d["resolved"]]
    assert statistics.mean(solved) > statistics.mean(unsolved) + 0.5
    values = [v for _, v in rows]
    assert statistics.pstdev(values) > 0.8  # not constant: there is something to learn


def test_outage_degrades_service(
    run: tuple[Simulator, list[SimEvent]], parsed: dict[str, list[dict]]
) -> None:
    sim, _ = run
    ints = {d["event_id"]: d for d in parsed[INTERACTIONS]}
    for r in sim.ground_truth():
        if r["pattern"] != "channel_outage" or len(r["event_ids"]) < 10:
            continue
        inside = [ints[e] for e in r["event_ids"]]
        outside = [
            d
            for d in parsed[INTERACTIONS]
            if d["channel"] == r["channel"] and d["event_id"] not in set(r["event_ids"])
        ]
        w_in = statistics.median(d["wait_seconds"] for d in inside)
        w_out = statistics.median(d["wait_seconds"] for d in outside)
        assert w_in > 3 * w_out
        res_in = sum(d["resolved"] for d in inside) / len(inside)
        res_out = sum(d["resolved"] for d in outside) / len(outside)
        assert res_in < res_out


def _digest(seed: int, n: int) -> str:
    import hashlib

    h = hashlib.sha256()
    for ev in _sim(seed=seed, n=n).events():
        h.update(ev.topic.encode() + (ev.key or b"-") + ev.value)
    return h.hexdigest()


def test_deterministic_across_processes_and_hash_seeds() -> None:
    import os
    import subprocess
    import sys

    code = (
        "from tests.unit.streams.simulator.test_simulator import _digest; print(_digest(4, 2000))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == _digest(4, 2000)


class _FakeFuture:
    def add_errback(self, fn: object) -> None:
        pass


class _FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []
        self.flushed = self.closed = False

    def send(self, topic: str, key: bytes | None = None, value: bytes = b"") -> _FakeFuture:
        self.sent.append((topic, key, value))
        return _FakeFuture()

    def flush(self) -> None:
        self.flushed = True

    def close(self) -> None:
        self.closed = True


def test_run_simulation_paces_and_writes_truth(tmp_path: object) -> None:
    import time
    from pathlib import Path

    from finpulse.config.settings import Settings
    from finpulse.streams.simulator import run_simulation

    truth = Path(str(tmp_path)) / "truth.jsonl"
    fake = _FakeProducer()
    progress: list[dict] = []
    t0 = time.monotonic()
    stats = run_simulation(
        Settings(), seed=2, rate=1000, duration_s=1.5, truth_path=truth,
        on_progress=progress.append, producer=fake,
    )  # fmt: skip
    elapsed = time.monotonic() - t0
    assert stats["produced"] == len(fake.sent) == 1500
    assert stats["valid"] + stats["malformed"] == 1500
    assert sum(stats["by_topic"].values()) == 1500
    assert fake.flushed and not fake.closed  # a caller's producer is not closed
    assert 1.4 < elapsed < 3.0
    assert progress and progress[-1]["produced"] == 1500
    last = json.loads(fake.sent[-1][2]) if not stats["malformed"] else None
    del last
    lines = truth.read_text().splitlines()
    assert all(json.loads(line)["pattern"] for line in lines)
    ts = [datetime.fromisoformat(json.loads(v)["ts"]) for t, _, v in fake.sent[-50:] if _ok(t, v)]
    assert ts and abs((datetime.now(UTC) - ts[-1]).total_seconds()) < 120  # span ends ~now


def _ok(topic: str, value: bytes) -> bool:
    try:
        MODELS[topic].model_validate_json(value)
    except ValidationError:
        return False
    return True


def test_an_account_takeover_victim_has_used_their_own_device_before(
    run: tuple[Simulator, list[SimEvent]], parsed: dict[str, list[dict]]
) -> None:
    sim, _ = run
    cases = [r for r in sim.ground_truth() if r["pattern"] == "account_takeover"]
    assert cases
    for r in cases:
        own = [
            d
            for d in parsed[TRANSACTIONS]
            if d["customer_id"] == r["customer_id"]
            and d["ts"] < r["start_ts"]
            and d.get("device_id")
            and d["device_id"] != r["new_device_id"]
        ]
        assert own, r["instance_id"]  # a new device is only new to a known customer


def test_observable_moment_is_the_event_that_first_shows_the_pattern(
    run: tuple[Simulator, list[SimEvent]], parsed: dict[str, list[dict]]
) -> None:
    """Mule: its second credit; structuring: its second transaction; large value: the
    transaction whose running total reaches the threshold."""
    sim, _ = run
    by_id = {d["event_id"]: d for d in parsed[TRANSACTIONS]}
    seen = set()
    for rec in sim.ground_truth():
        if rec["pattern"] not in ("mule", "structuring", "large_value"):
            assert "observable_ts" not in rec
            continue
        seen.add(rec["pattern"])
        events = sorted((by_id[e] for e in rec["event_ids"]), key=lambda d: d["ts"])
        at = datetime.fromisoformat(rec["observable_ts"])
        before = [d for d in events if datetime.fromisoformat(d["ts"]) < at]
        assert any(datetime.fromisoformat(d["ts"]) == at for d in events)
        if rec["pattern"] == "mule":
            assert [d["direction"] for d in before] == ["credit"]
        elif rec["pattern"] == "structuring":
            assert len(before) == 1
        else:
            upto = sum(_amount_cny(d) for d in events if datetime.fromisoformat(d["ts"]) <= at)
            assert sum(_amount_cny(d) for d in before) < rec["threshold"] <= upto + 0.01
    assert seen == {"mule", "structuring", "large_value"}
