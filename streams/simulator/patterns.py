"""Injected risk and service patterns, each with a ground-truth record.

Patterns: ``account_takeover``, ``card_testing``, ``mule`` (fraud); ``structuring`` (just under
a reporting threshold); ``large_value`` (at or above a threshold, must be reported);
``channel_outage`` (one service channel degraded for 20-60 simulated minutes).

A record's ``start_ts`` is its first event, except for a large-value case: a reporting
obligation, not a fraud, it starts with the transaction whose same-day total reaches the
threshold (the earlier deposits of a cumulative case are in the report, ``event_ids``, but
owe nothing alone; ``first_event_ts`` keeps the first). Its ``observable_ts`` (mule,
structuring, large value) is when the case first shows what defines it: a mule's second
payment from a new payer, a structuring case's second transaction just under the threshold,
a large-value case's start. Before it, the case's events look like one ordinary payment or
deposit.

>>> counts = pattern_counts(20_000, 2 * 86_400_000)
>>> counts["channel_outage"], all(v >= 1 for v in counts.values())
(2, True)
>>> pattern_counts(1000, 3_600_000)["channel_outage"]
1
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from finpulse.streams.core.topics import INTERACTIONS, TRANSACTIONS
from finpulse.streams.simulator.interactions import OUTAGE_CHANNELS, InteractionFactory, Outage
from finpulse.streams.simulator.population import (
    FOREIGN,
    NORMAL_MCC,
    RISKY,
    TESTING_MCC,
    Customer,
    Population,
)
from finpulse.streams.simulator.timeline import (
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    iso,
    local_day,
    local_hour,
)
from finpulse.streams.simulator.transactions import (
    CASH_THRESHOLD,
    TRANSFER_THRESHOLD_CROSS_BORDER,
    TRANSFER_THRESHOLD_INDIVIDUAL,
    TRANSFER_THRESHOLD_INSTITUTION,
    TxnFactory,
)

FRAUD_PATTERNS = ("account_takeover", "card_testing", "mule")
PATTERNS = (*FRAUD_PATTERNS, "structuring", "large_value", "channel_outage")
GUARANTEE_ALL_AT = 5000  # n_events from which every pattern appears at least once


@dataclass
class Planned:
    """A pre-planned event of a pattern instance: role 'event' (the pattern itself),
    'related' (e.g. a contact about it) or 'history' (the customer's ordinary use before)."""

    ms: int
    topic: str
    payload: dict[str, object]
    customer: Customer
    role: str
    csat: int = 0


@dataclass
class PatternInstance:
    """One injected instance; ``to_record()`` gives its ground truth."""

    pattern: str
    instance_id: str
    fraud: bool
    customer: Customer | None = None
    account_id: str | None = None
    details: dict[str, object] = field(default_factory=dict)
    planned: list[Planned] = field(default_factory=list)
    emitted: list[str] = field(default_factory=list)
    emitted_ms: list[int] = field(default_factory=list)
    related: list[str] = field(default_factory=list)
    window: tuple[int, int] | None = None
    starts_ms: int | None = None  # the case's start when it is not its first event

    def to_record(self) -> dict[str, object]:
        if self.window is not None:
            start_ms, end_ms = self.window
        else:
            start_ms, end_ms = min(self.emitted_ms), max(self.emitted_ms)
            if self.starts_ms in self.emitted_ms:
                start_ms = self.starts_ms
        c = self.customer
        rec: dict[str, object] = {
            "instance_id": self.instance_id,
            "pattern": self.pattern,
            "fraud": self.fraud,
            "customer_id": c.customer_id if c else None,
            "customer_type": c.customer_type if c else None,
            "segment": c.segment if c else None,
            "account_id": self.account_id,
            "event_ids": list(self.emitted),
            "related_event_ids": list(self.related),
            "start_ts": iso(start_ms),
            "end_ts": iso(end_ms),
        }
        rec.update(self.details)
        return rec


def pattern_counts(n_events: int, span_ms: int) -> dict[str, int]:
    """How many instances of each pattern a stream of ``n_events`` over ``span_ms`` gets."""
    g = 1 if n_events >= GUARANTEE_ALL_AT else 0
    fraud = round(n_events / 1500)
    counts = {p: 0 for p in PATTERNS}
    for i in range(fraud):
        counts[FRAUD_PATTERNS[i % 3]] += 1
    for p in FRAUD_PATTERNS:
        counts[p] = max(counts[p], g)
    counts["structuring"] = max(g, round(n_events / 6000))
    counts["large_value"] = max(g, round(n_events / 5000))
    counts["channel_outage"] = max(1, round(span_ms / DAY_MS))
    return counts


class PatternPlanner:
    """Plans every pattern instance up front (deterministically from ``rng``)."""

    def __init__(
        self,
        rng: random.Random,
        seed: int,
        start_ms: int,
        span_ms: int,
        population: Population,
        txns: TxnFactory,
        interactions: InteractionFactory | None = None,
    ) -> None:
        self.rng = rng
        self.seed = seed
        self.start = start_ms
        self.span = span_ms
        self.pop = population
        self.tf = txns
        self.itf = interactions
        self._used: set[int] = set()
        self._k = 0

    # ---------------------------------------------------------------- helpers
    def _instance(self, pattern: str, fraud: bool, c: Customer | None) -> PatternInstance:
        inst = PatternInstance(pattern, f"{pattern}-{self.seed}-{self._k}", fraud, c)
        self._k += 1
        if c is not None:
            inst.account_id = c.accounts[0]
        return inst

    def place(self, duration_ms: int) -> int:
        """A start time so that the instance fits in [5 %, 92 %] of the span."""
        lo = self.start + int(0.05 * self.span)
        hi = self.start + int(0.92 * self.span) - duration_ms
        return lo if hi <= lo else self.rng.randint(lo, hi)

    def customer(self, segments: tuple[str, ...]) -> Customer:
        pool = [c for c in self.pop.customers if c.segment in segments] or self.pop.customers
        weights = [c.activity for c in pool]
        c = pool[0]
        for _ in range(20):
            c = self.rng.choices(pool, weights=weights)[0]
            if c.index not in self._used:
                break
        self._used.add(c.index)
        return c

    def _txn(self, inst: PatternInstance, ms: int, c: Customer, *args, **kwargs) -> None:
        d = self.tf.make(c, ms, *args, **kwargs)
        inst.planned.append(Planned(ms, TRANSACTIONS, d, c, "event"))

    def _own_use(self, inst: PatternInstance, before_ms: int, c: Customer, n: int = 3) -> None:
        """``n`` ordinary card payments of ``c`` on their own device at home, from three days
        (at most since the start) to two hours before ``before_ms``: the customer is known
        to the bank before the pattern (a monitor cannot tell a new device from a customer
        it has never seen)."""
        lo, hi = max(self.start, before_ms - 72 * HOUR_MS), before_ms - 2 * HOUR_MS
        for _ in range(n if hi > lo else 0):
            ms = self.rng.randint(lo, hi)
            m = self.pop.merchants[self.rng.choice(c.merchants)]
            d = self.tf.make(
                c, ms, "card_payment", "app", round(c.typical_amount("card_payment"), 2),
                "debit", counterparty=m.merchant_id, merchant_category=m.mcc,
                device=c.devices[0], ip_country=c.home,
            )  # fmt: skip
            inst.planned.append(Planned(ms, TRANSACTIONS, d, c, "history"))

    def _contact(self, inst: PatternInstance, ms: int, c: Customer, **kwargs) -> None:
        if ms < self.start:
            return
        if self.itf is None:
            raise RuntimeError("set PatternPlanner.itf before planning contacts")
        d, csat = self.itf.build(c, ms, **kwargs)
        inst.planned.append(Planned(ms, INTERACTIONS, d, c, "related", csat))

    # ---------------------------------------------------------------- patterns
    def outages(self, count: int) -> list[Outage]:
        """One outage per simulated day slice, preferably in local business hours."""
        out = []
        seg = self.span / max(count, 1)
        for i in range(count):
            dur = min(self.rng.randint(20, 60) * MINUTE_MS, max(int(seg * 0.5), 1))
            lo = self.start + int(i * seg + 0.1 * seg)
            hi = max(lo, self.start + int((i + 1) * seg - 0.1 * seg) - dur)
            t0 = self.rng.randint(lo, hi)
            for _ in range(30):
                if 9 <= local_hour(t0) <= 20:
                    break
                t0 = self.rng.randint(lo, hi)
            channels = [ch for ch, _ in OUTAGE_CHANNELS]
            weights = [w for _, w in OUTAGE_CHANNELS]
            ch = self.rng.choices(channels, weights=weights)[0]
            out.append(Outage(ch, t0, t0 + dur, round(self.rng.uniform(5.0, 20.0), 2)))
        return out

    def account_takeover(self) -> PatternInstance:
        rng = self.rng
        c = self.customer(("retail", "retail", "private"))
        inst = self._instance("account_takeover", True, c)
        t = self.place(3 * HOUR_MS)
        self._own_use(inst, t, c)
        device = f"ato-dev-{self.seed}-{self._k}"
        ip = rng.choice([x for x in (*RISKY, *FOREIGN) if x != c.home])
        if rng.random() < 0.5:  # the fraudster resets the password through the contact centre
            self._contact(
                inst,
                t - rng.randint(10, 60) * MINUTE_MS,
                c,
                channel="call_center",
                interaction_type="account_service",
            )
        thr = TRANSFER_THRESHOLD_INDIVIDUAL if c.individual else TRANSFER_THRESHOLD_INSTITUTION
        n = rng.randint(1, 3)
        typical = c.typical_amount("transfer")
        amounts = [max(20_000.0, typical * rng.uniform(8, 40)) for _ in range(n)]
        total = sum(amounts)
        if total > 0.75 * thr:
            amounts = [a * 0.75 * thr / total for a in amounts]
        cp = self.tf.new_counterparty("cpx")
        cp_country = "CN" if rng.random() < 0.5 else rng.choice(RISKY)
        channel = "app" if rng.random() < 0.7 else "web"
        first = None
        for a in amounts:
            t += rng.randint(1, 15) * MINUTE_MS
            self._txn(
                inst, t, c, "transfer", channel, a, "debit",
                counterparty=cp, counterparty_country=cp_country, device=device, ip_country=ip,
            )  # fmt: skip
            first = first or inst.planned[-1].payload["event_id"]
        if rng.random() < 0.5:  # the victim notices and complains
            self._contact(
                inst,
                t + rng.randint(60, 24 * 60) * MINUTE_MS,
                c,
                channel="call_center",
                interaction_type="complaint",
                ref_event_id=str(first),
            )
        inst.details = {
            "new_device_id": device,
            "ip_country": ip,
            "counterparty_id": cp,
            "total_amount": round(sum(amounts), 2),
            "currency": "CNY",
        }
        return inst

    def card_testing(self) -> PatternInstance:
        rng = self.rng
        c = self.customer(("retail", "retail", "private"))
        inst = self._instance("card_testing", True, c)
        t = self.place(2 * HOUR_MS)
        n = rng.randint(10, 30)
        window = rng.randint(2, 10) * MINUTE_MS
        device = f"ct-dev-{self.seed}-{self._k}"
        ip = rng.choice(RISKY) if rng.random() < 0.5 else c.home
        channel = "web" if rng.random() < 0.75 else "app"
        times = sorted(t + rng.randint(0, window) for _ in range(n))
        mccs = [m for m, _ in NORMAL_MCC]
        for ms in times:
            mcc = rng.choice(TESTING_MCC) if rng.random() < 0.7 else rng.choice(mccs)
            merchant = f"mx-{self.seed}-{rng.randrange(10**6):06d}"
            self._txn(
                inst, ms, c, "card_payment", channel, round(rng.uniform(0.5, 5.0), 2), "debit",
                counterparty=merchant, merchant_category=mcc, device=device, ip_country=ip,
            )  # fmt: skip
        cash_out = rng.random() < 0.5
        if cash_out:
            ms = times[-1] + rng.randint(1, 30) * MINUTE_MS
            self._txn(
                inst, ms, c, "card_payment", channel, rng.uniform(500, 5000), "debit",
                counterparty=f"mx-{self.seed}-{rng.randrange(10**6):06d}",
                merchant_category=rng.choice(("5732", "5944", "5816")),
                device=device, ip_country=ip,
            )  # fmt: skip
        inst.details = {"n_tests": n, "cash_out": cash_out, "device_id": device, "ip_country": ip}
        return inst

    def mule(self) -> PatternInstance:
        rng = self.rng
        c = self.customer(("retail",))
        inst = self._instance("mule", True, c)
        t = self.place(5 * HOUR_MS)
        n_in = rng.randint(3, 8)
        span_in = rng.randint(30, 180) * MINUTE_MS
        amounts = [rng.uniform(3000, 30000) for _ in range(n_in)]
        amounts = [round(a, -2) if rng.random() < 0.6 else a for a in amounts]
        total = sum(amounts)
        if total > 150_000:
            amounts = [a * 150_000 / total for a in amounts]
            total = sum(amounts)
        times = sorted(t + rng.randint(0, span_in) for _ in range(n_in))
        for ms, a in zip(times, amounts, strict=True):
            self._txn(
                inst, ms, c, "transfer", "api", a, "credit",
                counterparty=self.tf.new_counterparty("cpm"), counterparty_country="CN",
            )  # fmt: skip
        out_cp = self.tf.new_counterparty("cpo")
        cross = rng.random() < 0.6
        out_country = rng.choice(RISKY) if cross else "CN"
        out_total = total * rng.uniform(0.9, 1.0)
        n_out = rng.randint(1, 2)
        ms = times[-1]
        channel = "app" if rng.random() < 0.7 else "web"
        for _ in range(n_out):
            ms += rng.randint(5, 30) * MINUTE_MS
            self._txn(
                inst, ms, c, "transfer", channel, out_total / n_out, "debit",
                counterparty=out_cp, counterparty_country=out_country,
                device=c.devices[0], ip_country=c.home,
            )  # fmt: skip
        inst.details = {
            "observable_ts": iso(times[1]),  # a second new payer: the first sign of fan-in
            "n_credits": n_in,
            "credit_total": round(total, 2),
            "debit_total": round(out_total, 2),
            "out_counterparty_id": out_cp,
            "cross_border": cross,
            "currency": "CNY",
        }
        return inst

    def structuring(self, variant: str) -> PatternInstance:
        rng = self.rng
        if variant == "cash":
            c = self.customer(("retail", "private", "sme"))
            thr = CASH_THRESHOLD
        elif variant == "transfer_individual":
            c = self.customer(("private", "retail"))
            thr = TRANSFER_THRESHOLD_INDIVIDUAL
        else:
            c = self.customer(("sme", "corporate"))
            thr = TRANSFER_THRESHOLD_INSTITUTION
        inst = self._instance("structuring", False, c)
        width = int(min(22 * HOUR_MS, 0.45 * self.span))
        t = self.place(width)
        n = rng.randint(3, 6)
        times = sorted(t + rng.randint(0, width) for _ in range(n))
        amounts = []
        for ms in times:
            a = thr * rng.uniform(0.85, 0.999)
            r = round(a, -2)
            a = r if 0.85 * thr <= r <= 0.999 * thr else round(a, 2)
            amounts.append(a)
            if variant == "cash":
                ch = "branch" if rng.random() < 0.6 else "atm"
                self._txn(inst, ms, c, "cash_deposit", ch, a, "credit",
                          account=rng.choice(c.accounts))  # fmt: skip
            else:
                ch = rng.choice(("web", "app", "branch") if c.individual else ("api", "web"))
                domestic = [cp for cp in c.counterparties if cp[1] == c.home]
                cp, country = (  # an individual's cross-border transfer has its own threshold
                    rng.choice(domestic)
                    if rng.random() < 0.5 and domestic
                    else (self.tf.new_counterparty("cps"), c.home)
                )
                self._txn(inst, ms, c, "transfer", ch, a, "debit", counterparty=cp,
                          counterparty_country=country)  # fmt: skip
        by_day: dict[int, float] = {}
        for ms, a in zip(times, amounts, strict=True):
            by_day[local_day(ms)] = by_day.get(local_day(ms), 0.0) + a
        inst.details = {
            "observable_ts": iso(times[1]),  # the first repetition under the threshold
            "variant": variant,
            "threshold": thr,
            "currency": "CNY",
            "total_amount": round(sum(amounts), 2),
            "same_day_reportable": max(by_day.values()) >= thr,
        }
        return inst

    def large_value(self, variant: str) -> PatternInstance:
        rng = self.rng
        exact = rng.random() < 0.25
        if variant in ("cash_single", "cash_cumulative"):
            c = self.customer(("sme", "private", "retail", "nonprofit"))
            thr = CASH_THRESHOLD
        elif variant == "transfer_individual":
            c = self.customer(("private",))
            thr = TRANSFER_THRESHOLD_INDIVIDUAL
        elif variant == "transfer_individual_cross_border":
            c = self.customer(("private", "retail"))
            thr = TRANSFER_THRESHOLD_CROSS_BORDER
        else:
            c = self.customer(("corporate", "government"))
            thr = TRANSFER_THRESHOLD_INSTITUTION
        inst = self._instance("large_value", False, c)
        t = self.place(3 * HOUR_MS)
        amounts: list[float]
        if variant == "cash_cumulative":
            k = rng.randint(2, 4)
            target = thr * rng.uniform(1.0, 1.5)
            amounts = [target / k * rng.uniform(0.8, 1.2) for _ in range(k)]
            amounts = [min(round(a, -2), 0.8 * thr) for a in amounts]
            short = thr - sum(amounts)
            if short > 0:
                amounts[-1] += short
            times = sorted(t + rng.randint(0, 2 * HOUR_MS) for _ in range(k))
            if local_day(times[0]) != local_day(times[-1]):  # keep them on one local day
                midnight_last = times[-1] - (times[-1] + 8 * HOUR_MS) % DAY_MS
                shift = times[-1] - midnight_last + MINUTE_MS
                times = [ms - shift for ms in times]
        else:
            a = thr if exact else round(thr * rng.uniform(1.0, 4.0), -3)
            amounts, times = [max(a, thr)], [t]
        kind = "cash_deposit" if rng.random() < 0.7 else "cash_withdrawal"  # one-sided sums
        for ms, a in zip(times, amounts, strict=True):
            if variant.startswith("cash"):
                self._txn(inst, ms, c, kind, "branch", a,
                          "credit" if kind == "cash_deposit" else "debit")  # fmt: skip
            else:
                ch = rng.choice(
                    ("branch", "web", "app") if c.individual else ("api", "web", "branch")
                )
                if variant == "transfer_individual_cross_border":
                    country = rng.choice([x for x in FOREIGN if x != c.home])
                    cp = self.tf.new_counterparty("cpx")
                else:  # an individual's domestic transfer; any transfer of an institution
                    domestic = [cp for cp in c.counterparties if cp[1] == c.home]
                    cp, country = rng.choice(domestic) if domestic else ("cp-large", c.home)
                self._txn(inst, ms, c, "transfer", ch, a, "debit", counterparty=cp,
                          counterparty_country=country)  # fmt: skip
        running, crossed = 0.0, times[-1]  # the report is due from the crossing transaction
        for ms, a in sorted(zip(times, amounts, strict=True)):
            running += a
            if running >= thr:
                crossed = ms
                break
        inst.starts_ms = crossed
        inst.details = {
            "observable_ts": iso(crossed),
            "first_event_ts": iso(min(times)),
            "variant": variant,
            "threshold": thr,
            "currency": "CNY",
            "total_amount": round(sum(amounts), 2),
            "at_threshold": exact and variant != "cash_cumulative",
        }
        return inst

    def plan(self, counts: dict[str, int]) -> list[PatternInstance]:
        """Plan all non-outage instances (outages come from :meth:`outages`)."""
        out: list[PatternInstance] = []
        out += [self.account_takeover() for _ in range(counts["account_takeover"])]
        out += [self.card_testing() for _ in range(counts["card_testing"])]
        out += [self.mule() for _ in range(counts["mule"])]
        sv = ("cash", "transfer_individual", "transfer_institution")
        start = self.rng.randrange(3)
        out += [self.structuring(sv[(start + i) % 3]) for i in range(counts["structuring"])]
        lv = (
            "cash_single",
            "cash_cumulative",
            "transfer_individual",
            "transfer_individual_cross_border",
            "transfer_institution",
        )
        start = self.rng.randrange(len(lv))
        out += [self.large_value(lv[(start + i) % len(lv)]) for i in range(counts["large_value"])]
        return out
