"""The deterministic event stream: background traffic, patterns, feedback and malformed input.

>>> from datetime import UTC, datetime
>>> sim = Simulator(seed=1, start=datetime(2026, 1, 5, tzinfo=UTC), n_events=500,
...                 sim_span_s=3600, n_customers=200)
>>> evs = list(sim.events())
>>> len(evs), sim.stats()["produced"]
(500, 500)
>>> evs[0].topic.startswith("finpulse."), all(a.ts <= b.ts for a, b in zip(evs, evs[1:]))
(True, True)
"""

from __future__ import annotations

import bisect
import heapq
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from finpulse.streams.core.topics import FEEDBACK, INTERACTIONS, TRANSACTIONS
from finpulse.streams.simulator.feedback import (
    CLEAR_RATE_ORDINARY,
    CLEAR_RATE_UNUSUAL,
    COMPLAINT_CLOSE_RATE,
    CSAT_RESPONSE_RATE,
    FRAUD_CONFIRM_RATE,
    FeedbackFactory,
)
from finpulse.streams.simulator.interactions import InteractionFactory, Outages
from finpulse.streams.simulator.malformed import corrupt
from finpulse.streams.simulator.patterns import PatternInstance, PatternPlanner, pattern_counts
from finpulse.streams.simulator.population import Customer, build_population
from finpulse.streams.simulator.timeline import ArrivalClock, hour_of_week, iso, to_datetime, to_ms
from finpulse.streams.simulator.transactions import TxnFactory

INTERACTION_SHARE = 0.13  # of background slots: ~1 interaction per 6-7 transactions
OUTAGE_EXTRA_SHARE = 0.06  # extra contacts in the failing channel while an outage lasts
_KIND_OF = {TRANSACTIONS: "transaction", INTERACTIONS: "interaction", FEEDBACK: "feedback"}
_NO_META = (None, False, -1, "", 0, False)
_encode = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


@dataclass(frozen=True, slots=True)
class SimEvent:
    """One record to produce: topic, key, value bytes, simulated time."""

    topic: str
    key: bytes | None
    value: bytes
    ts: datetime
    malformed: bool
    event_id: str | None


class Simulator:
    """Deterministic generator of a realistic finpulse input stream.

    Same arguments give a byte-identical sequence; :meth:`events` can be called again and
    restarts from scratch. :meth:`ground_truth` and :meth:`stats` describe the last run (live
    while it is being consumed).
    """

    def __init__(
        self,
        seed: int = 0,
        start: datetime | None = None,
        n_events: int = 10_000,
        sim_span_s: float = 86_400.0,
        n_customers: int = 2000,
        malformed_share: float = 0.005,
    ) -> None:
        if n_events < 0:
            raise ValueError("n_events must be >= 0")
        if not 0.0 <= malformed_share <= 1.0:
            raise ValueError("malformed_share must be within 0..1")
        if sim_span_s <= 0:
            raise ValueError("sim_span_s must be > 0")
        self.seed = int(seed)
        self.start = start or datetime(2026, 1, 5, tzinfo=UTC)
        self.start_ms = to_ms(self.start)
        self.n_events = int(n_events)
        self.span_ms = max(int(sim_span_s * 1000), 1)
        self.n_customers = int(n_customers)
        self.malformed_share = float(malformed_share)
        self._run: _Run | None = None

    def events(self) -> Iterator[SimEvent]:
        """Yield ``n_events`` events in simulated-time order."""
        self._run = _Run(self)
        return self._run.iterate()

    def ground_truth(self) -> list[dict[str, object]]:
        """One record per injected pattern instance that has been (at least partly) emitted."""
        return self._run.ground_truth() if self._run else []

    def stats(self) -> dict[str, object]:
        """Counts so far: produced, valid, malformed, by_topic, by kind, pattern instances."""
        if self._run is None:
            return {"produced": 0, "valid": 0, "malformed": 0, "by_topic": {}}
        return self._run.stats()


def _rng(seed: int, name: str) -> random.Random:
    return random.Random(f"finpulse-sim:{seed}:{name}")


class _Run:
    """State of one pass over the stream."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        seed = sim.seed
        self.rng = _rng(seed, "traffic")
        self.pop = build_population(_rng(seed, "population"), seed, sim.n_customers)
        plan_rng = _rng(seed, "patterns")
        # each kind of event draws from its own stream: a change in how transactions are
        # made leaves the service stream (and its outages' contacts) as it was
        self.tf = TxnFactory(_rng(seed, "transactions"), seed, self.pop)
        self.fb = FeedbackFactory(_rng(seed, "feedback"), seed)
        planner = PatternPlanner(plan_rng, seed, sim.start_ms, sim.span_ms, self.pop, self.tf)
        counts = pattern_counts(sim.n_events, sim.span_ms)
        outage_list = planner.outages(counts["channel_outage"])
        self.outages = Outages(outage_list)
        self.itf = InteractionFactory(_rng(seed, "interactions"), seed, self.outages)
        planner.itf = self.itf
        self.instances: list[PatternInstance] = planner.plan(counts)
        for o in self.outages.items:
            inst = PatternInstance("channel_outage", f"channel_outage-{seed}-{len(self.instances)}",
                                   False, window=(o.start_ms, o.end_ms))  # fmt: skip
            inst.details = {"channel": o.channel, "wait_factor": o.wait_factor}
            o.instance = len(self.instances)
            self.instances.append(inst)
        self.heap: list[tuple[int, int, str, dict[str, object], tuple]] = []
        self._seq = 0
        for idx, inst in enumerate(self.instances):
            for p in inst.planned:
                fraud = inst.fraud and p.role == "event"
                self._push(
                    p.ms, p.topic, p.payload, (p.customer, fraud, idx, p.role, p.csat, False)
                )
        m = round(sim.n_events * sim.malformed_share)
        self.malformed_slots = set(_rng(seed, "malformed").sample(range(sim.n_events), m))
        self.mal_rng = _rng(seed, "malformed-kind")
        self.clock = ArrivalClock(
            _rng(seed, "clock"),
            sim.start_ms,
            sim.span_ms,
            sim.n_events,
            lambda ms: self.pop.hourly_total[hour_of_week(ms)],
        )
        self.by_topic = {TRANSACTIONS: 0, INTERACTIONS: 0, FEEDBACK: 0}
        self.valid = 0
        self.malformed = 0
        self.malformed_kinds: dict[str, int] = {}
        self.feedback_kinds: dict[str, int] = {}
        self.fraud_events = 0
        self.last_ms = sim.start_ms

    def _push(self, ms: int, topic: str, d: dict[str, object], meta: tuple) -> None:
        heapq.heappush(self.heap, (ms, self._seq, topic, d, meta))
        self._seq += 1

    def _label(self, scheduled: tuple[int, dict[str, object]]) -> None:
        self._push(scheduled[0], FEEDBACK, scheduled[1], _NO_META)

    def _customer(self, ms: int) -> Customer:
        how = hour_of_week(ms)
        cw = self.pop.cum_weights[how]
        return self.pop.customers[bisect.bisect_left(cw, self.rng.random() * cw[-1])]

    # ----------------------------------------------------------------------------- the loop
    def iterate(self) -> Iterator[SimEvent]:
        heap = self.heap
        clock = self.clock
        slots = self.malformed_slots
        pending = 0
        for k in range(self.sim.n_events):
            t = clock.next()
            if k in slots:
                pending += 1
            if heap and heap[0][0] <= t:
                ms, _, topic, d, meta = heapq.heappop(heap)
                yield self._emit(ms, topic, d, meta)
            elif pending:
                pending -= 1
                yield self._malformed(t)
            else:
                yield self._background(t)

    def _background(self, t: int) -> SimEvent:
        rng = self.rng
        u = rng.random()
        outage = self.outages.active(t)
        if outage is not None and u < OUTAGE_EXTRA_SHARE:
            c = self._customer(t)
            d, csat = self.itf.build(c, t, channel=outage.channel)
            return self._emit(t, INTERACTIONS, d, (c, False, -1, "", csat, False))
        c = self._customer(t)
        if u < INTERACTION_SHARE + (OUTAGE_EXTRA_SHARE if outage is not None else 0.0):
            d, csat = self.itf.build(c, t)
            return self._emit(t, INTERACTIONS, d, (c, False, -1, "", csat, False))
        d, unusual = self.tf.background(c, t)
        return self._emit(t, TRANSACTIONS, d, (c, False, -1, "", 0, unusual))

    def _emit(self, ms: int, topic: str, d: dict[str, object], meta: tuple) -> SimEvent:
        c, fraud, inst_idx, role, csat, unusual = meta
        eid = str(d["event_id"])
        cid = str(d["customer_id"])
        self.by_topic[topic] += 1
        self.valid += 1
        self.last_ms = ms
        if inst_idx >= 0:
            inst = self.instances[inst_idx]
            if role == "event":
                inst.emitted.append(eid)
                inst.emitted_ms.append(ms)
            elif role == "related":
                inst.related.append(eid)
        fb = self.fb
        frng = fb.rng
        if topic == TRANSACTIONS:
            if c is not None:
                c.recent_txns.append(eid)
            if fraud:
                self.fraud_events += 1
                if frng.random() < FRAUD_CONFIRM_RATE:
                    self._label(fb.fraud_confirmed(ms, eid, cid))
            elif frng.random() < (CLEAR_RATE_UNUSUAL if unusual else CLEAR_RATE_ORDINARY):
                self._label(fb.fraud_cleared(ms, eid, cid))
        elif topic == INTERACTIONS:
            outage = self.outages.active(ms)
            if outage is not None and outage.channel == d["channel"]:
                self.instances[outage.instance].emitted.append(eid)
            if frng.random() < CSAT_RESPONSE_RATE:
                self._label(fb.csat(ms, eid, cid, csat))
            if "complaint_id" in d and frng.random() < COMPLAINT_CLOSE_RATE:
                self._label(fb.complaint_closed(ms, eid, cid))
        else:
            kind = str(d["kind"])
            self.feedback_kinds[kind] = self.feedback_kinds.get(kind, 0) + 1
        key = c.key if c is not None else cid.encode()
        return SimEvent(topic, key, _encode(d).encode(), to_datetime(ms), False, eid)

    def _malformed(self, t: int) -> SimEvent:
        mr = self.mal_rng
        r = mr.random()
        c = self._customer(t)
        if r < 0.7:
            topic = TRANSACTIONS
            d, _ = self.tf.background(c, t)
        elif r < 0.9:
            topic = INTERACTIONS
            d, _ = self.itf.build(c, t)
        else:
            topic = FEEDBACK
            ref = c.recent_txns[-1] if c.recent_txns else f"t-{self.sim.seed}-0"
            _, d = self.fb.fraud_cleared(t, ref, c.customer_id)
            d["ts"] = iso(t)
        payload, kind, eid = corrupt(mr, _KIND_OF[topic], d)
        self.by_topic[topic] += 1
        self.malformed += 1
        self.last_ms = t
        self.malformed_kinds[kind] = self.malformed_kinds.get(kind, 0) + 1
        key = None if mr.random() < 0.25 else c.key
        return SimEvent(topic, key, payload, to_datetime(t), True, eid)

    # ----------------------------------------------------------------------------- reports
    def ground_truth(self) -> list[dict[str, object]]:
        out = []
        for inst in self.instances:
            if inst.window is not None:
                if inst.window[0] <= self.last_ms:
                    out.append(inst.to_record())
            elif inst.emitted:
                out.append(inst.to_record())
        return out

    def stats(self) -> dict[str, object]:
        patterns: dict[str, int] = {}
        for rec in self.ground_truth():
            p = str(rec["pattern"])
            patterns[p] = patterns.get(p, 0) + 1
        return {
            "produced": self.valid + self.malformed,
            "valid": self.valid,
            "malformed": self.malformed,
            "by_topic": dict(self.by_topic),
            "malformed_by_kind": dict(sorted(self.malformed_kinds.items())),
            "feedback_by_kind": dict(sorted(self.feedback_kinds.items())),
            "patterns": patterns,
            "fraud_events": self.fraud_events,
            "last_ts": to_datetime(self.last_ms).isoformat(),
        }
