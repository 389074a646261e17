"""``finpulse bench``: end-to-end throughput, latency and memory on the real local stack.

Every phase runs on a fresh Tansu broker and a fresh ClickHouse database (one ClickHouse
server for the whole run), with real ``finpulse worker`` processes in between:

* ``fixed``: one worker, simulator traffic offered at a fixed rate (default 1,000 ev/s);
* ``saturation-N``: N workers (1, then 2), the same traffic produced as fast as the
  producer can (well above a worker's capacity).

**Latency probe.** The producer stamps each event's ``ts`` with the wall-clock time at
which it hands the event to the producer; every raw table has
``ingested_at DEFAULT now64(3)``, set by ClickHouse when the insert that makes the row
visible is executed. ``ingested_at - ts`` per row is therefore produce-to-visible latency,
measured on one host clock, without a schema change. (Malformed events, ~0.5 %, keep
their payloads and only count in the reconciliation.)

**Alert latency.** :class:`finpulse.streams.tools.alert_latency.AlertWatcher` consumes
``finpulse.alerts`` during each phase; an alert's arrival time minus the send time of its source
event is produce-to-alert latency as an on-call consumer of the topic sees it. ``alert_windows``
splits it by the send time into consecutive windows (10 s): a worker that keeps up shows
flat windows, one that falls behind a rising p50 (the fixed phase runs 60 s by default, as
the first 15 s looked better than the steady state).

**Throughput** of a saturation phase is the number of rows stored after the first
insert, divided by the time from the first to the last insert (``ingested_at``), so worker
start-up and group join are excluded. Every phase ends with a count reconciliation
(:mod:`finpulse.streams.tools.reconcile`): produced = rows + dead letters, exactly.

**Efficiency**: ``events_per_cpu_s`` divides the events of a phase by the CPU seconds its
worker processes used (``/proc``), which stays comparable when other processes load the
machine; wall-clock ``events_per_s`` does not.

``scoring_events_per_s`` is the scoring path alone (:mod:`finpulse.streams.tools.bench_scoring`, in
process); ``bytes_per_customer`` the encoded size of all keyed state per customer after an
offline replay (:func:`finpulse.streams.tools.bench_scoring.state_bytes_per_customer`).

>>> percentile_row({"p50_ms": 12.0, "p95_ms": 30.5, "p99_ms": 41.0})
'12.0 / 30.5 / 41.0'
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from finpulse.config.settings import LOCAL_GROUP_TIMEOUTS, Settings, local_stack_settings
from finpulse.sinks.clickhouse import make_client
from finpulse.sinks.migrate import migrate
from finpulse.sinks.tables import EVENT_TABLES
from finpulse.streams.core.quantiles import percentile
from finpulse.streams.core.topics import TRANSACTIONS, create_topics
from finpulse.streams.local.stack import LocalStack, free_port
from finpulse.streams.tools.alert_latency import AlertWatcher, creation_timeline, latency_timeline
from finpulse.streams.tools.reconcile import wait_reconciled
from finpulse.streams.worker.process import WorkerProcess

log = logging.getLogger(__name__)

WARMUP_TIMEOUT_S = 60.0
DRAIN_TIMEOUT_S = 180.0
ALERT_GRACE_S = 1.0
BURST_S = 0.005  # the fixed-rate producer sends what is due every ~5 ms
ALERT_WINDOW_S = 10.0
# The load producer's linger per broker. On Apache Kafka, Kafka's own default (5 ms). On
# Tansu 50 ms: its memory store lists every stored batch of a partition on each fetch, so
# with 5 ms, where nearly every event is its own batch, the broker's fetch cost and latency
# grow throughout a phase (docs/benchmarks.md). The linger is inside the measured latency:
# each event is stamped when handed to the producer.
PRODUCER_LINGER_MS: dict[str, float] = {"kafka": 5.0, "tansu": 50.0}


@dataclass
class PhaseResult:
    """The figures of one bench phase."""

    name: str
    workers: int
    offered_rate: float | None  # None = as fast as the producer can
    events: int
    produce_s: float
    events_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    # Worker CPU (all its processes) for the phase: a load-independent efficiency figure.
    worker_cpu_s: float = 0.0
    events_per_cpu_s: float = 0.0
    # produce → alert arriving at a consumer of finpulse.alerts
    # (finpulse.streams.tools.alert_latency)
    alerts: int = 0
    alert_p50_ms: float = 0.0
    alert_p95_ms: float = 0.0
    alert_p99_ms: float = 0.0
    # produce → the worker creating the alert (its created_at): the rest of the wait above
    # is the alert's own trip through the broker to the consumer
    alert_created_p50_ms: float = 0.0
    alert_created_p99_ms: float = 0.0
    # by send time, per ALERT_WINDOW_S: {"from_s", "alerts", "p50_ms", "p99_ms",
    # "created_p50_ms", "created_p99_ms"}
    alert_windows: list[dict[str, float]] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    peak_rss_mb: list[float] = field(default_factory=list)
    # the broker's own CPU over the phase: on two cores, what the worker could not have
    broker_cpu_s: float = 0.0
    # per worker: the phase's events it processed, their rate (its share of events_per_s)
    # and its CPU seconds, to see how the load divides between the group's members
    worker_events: list[int] = field(default_factory=list)
    worker_events_per_s: list[float] = field(default_factory=list)
    worker_cpu_each_s: list[float] = field(default_factory=list)
    reconciled: bool = False
    issues: list[str] = field(default_factory=list)


def percentile_row(r: dict[str, Any]) -> str:
    """``p50 / p95 / p99`` as text for the table."""
    return f"{r['p50_ms']:.1f} / {r['p95_ms']:.1f} / {r['p99_ms']:.1f}"


def proc_memory_mb(pid: int) -> tuple[float, float]:
    """(resident, peak resident) memory of ``pid`` in MiB, from ``/proc``; (0, 0) if gone."""
    values = {"VmRSS": 0.0, "VmHWM": 0.0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in values:
                values[key] = int(rest.split()[0]) / 1024
    except OSError:
        pass
    return values["VmRSS"], values["VmHWM"]


def proc_cpu_s(pid: int, tid: int | None = None) -> float:
    """User + system CPU seconds used so far by process ``pid`` (all its threads), or by its
    thread ``tid`` alone (0 if gone), from ``/proc``. ``/proc/<tid>/stat`` would give the
    whole process for any of its threads: a thread's own figures are under ``task/``.

    >>> proc_cpu_s(os.getpid()) >= proc_cpu_s(os.getpid(), os.getpid()) > 0
    True
    """
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    try:
        with open(path) as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_events(n: int, seed: int, n_customers: int) -> Iterator[tuple[str, bytes | None, Any]]:
    """(topic, key, event dict or raw bytes) of simulator traffic; dicts get ``ts`` stamped."""
    from finpulse.streams.simulator import Simulator

    now = datetime.now(UTC)
    sim = Simulator(
        seed=seed,
        start=now - timedelta(hours=2),
        n_events=n,
        sim_span_s=7200,
        n_customers=n_customers,
    )
    for ev in sim.events():
        yield ev.topic, ev.key, (ev.value if ev.malformed else json.loads(ev.value))


def _stamp(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    value["ts"] = datetime.now(UTC).isoformat(timespec="microseconds")
    return json.dumps(value, separators=(",", ":")).encode()


def _produce(
    settings: Settings,
    events: Sequence[Any],
    rate: float | None,
    sent_at: dict[str, float] | None = None,
    linger_ms: float = PRODUCER_LINGER_MS["tansu"],
) -> float:
    """Send ``events`` (paced at ``rate``/s, or flat out); returns the seconds it took.

    ``sent_at`` collects the wall-clock send time of each event id. The load comes from
    librdkafka (confluent-kafka), not from aiokafka: on this two-core machine the producer
    shares the cores with the worker, and aiokafka took much more of a core for the same rate
    (docs/benchmarks.md). Keys are hashed as Kafka's Java client and aiokafka do (murmur2), so a
    customer's events land on the same partition number in every topic. Raises
    ``RuntimeError`` if any event was not acknowledged by the broker.
    """
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": ",".join(settings.broker_bootstrap),
            "acks": "all",
            "linger.ms": linger_ms,
            "enable.idempotence": False,
            "partitioner": "murmur2_random",
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    failed: list[str] = []

    def delivered(err: Any, _msg: Any) -> None:
        if err is not None:
            failed.append(str(err))

    t0 = time.monotonic()
    sent = 0
    while sent < len(events):
        due = (
            len(events)
            if rate is None
            else min(len(events), int((time.monotonic() - t0) * rate) + 1)
        )
        while sent < due:
            topic, key, value = events[sent]
            payload = _stamp(value)
            if sent_at is not None and isinstance(value, dict):
                sent_at[value["event_id"]] = time.time()
            try:
                producer.produce(topic, payload, key=key, on_delivery=delivered)
            except BufferError:  # the local queue is full: let deliveries drain, then retry
                producer.poll(0.05)
                continue
            sent += 1
        producer.poll(0)
        if rate is not None and sent < len(events):
            time.sleep(max(min(t0 + sent / rate - time.monotonic(), BURST_S), 0))
    unsent = producer.flush(60)
    if unsent or failed:
        raise RuntimeError(f"{unsent} events unsent, {len(failed)} failed: {failed[:3]}")
    return time.monotonic() - t0


class Bench:
    """Runs the phases on a local stack rooted in ``root`` (ports chosen free)."""

    def __init__(
        self,
        base: Settings,
        root: Path,
        events: int = 50_000,
        rate: float = 1000.0,
        fixed_s: float = 60.0,
        workers: Sequence[int] = (1, 2),
        seed: int = 7,
        n_customers: int = 2000,
        linger_ms: float | None = None,
        broker: str = "tansu",
    ) -> None:
        self.base = base
        self.broker = broker
        self.root = root
        self.events = events
        self.rate = rate
        self.fixed_s = fixed_s
        self.workers = list(workers)
        self.seed = seed
        self.n_customers = n_customers
        self.linger_ms = PRODUCER_LINGER_MS[broker] if linger_ms is None else linger_ms
        self._phase_ids = iter(range(1_000_000))

    def _settings(self, clickhouse: LocalStack, broker: LocalStack, name: str) -> Settings:
        return self.base.model_copy(
            update={
                "data_dir": self.root / name,
                "broker_url": broker.broker_url,
                "clickhouse_url": clickhouse.clickhouse_url,
                "clickhouse_database": f"bench_{int(time.time())}_{next(self._phase_ids)}",
                "local_broker": self.broker,
                **LOCAL_GROUP_TIMEOUTS[self.broker],
            }
        )

    def run(self, references: dict[str, float] | None = None) -> dict[str, Any]:
        """All phases on this bench's broker; returns the summary dict (see :func:`summary`).
        ``references`` are the run's reference figures (measured once when it runs on both
        brokers), else measured here."""
        ch = start_clickhouse(self.root)
        phases: list[PhaseResult] = []
        try:
            n_fixed = round(self.rate * self.fixed_s)
            phases.append(self._phase(ch, "fixed", 1, self.rate, n_fixed))
            for n in self.workers:
                phases.append(self._phase(ch, f"saturation-{n}", n, None, self.events))
        finally:
            ch.stop()
        refs = references if references is not None else self.references()
        return {
            "broker": self.broker,
            "producer_linger_ms": self.linger_ms,
            **summary(
                phases,
                scoring_events_per_s=refs["scoring_events_per_s"],
                bytes_per_customer=refs["bytes_per_customer"],
                memory_mb_per_100k_customers=refs["memory_mb_per_100k_customers"],
            ),
        }

    def references(self) -> dict[str, float]:
        """The machine's figures that involve no broker, for the same run: the scoring path
        alone (in process) and the keyed state per customer."""
        from finpulse.streams.tools.bench_scoring import bench as bench_scoring
        from finpulse.streams.tools.bench_scoring import state_bytes_per_customer

        scoring = bench_scoring(n_events=min(self.events, 60_000), n_customers=self.n_customers)
        state = state_bytes_per_customer(n_customers=self.n_customers)
        return {
            "scoring_events_per_s": float(scoring["events_per_s"]),
            "bytes_per_customer": state["bytes_per_customer"],
            "memory_mb_per_100k_customers": state["memory_mb_per_100k_customers"],
        }

    def _phase(
        self, ch: LocalStack, name: str, n_workers: int, rate: float | None, n: int
    ) -> PhaseResult:
        log.info("bench phase %s: %d events, %d worker(s)", name, n, n_workers)
        broker = LocalStack(
            local_stack_settings(
                data_dir=self.root / name, local_broker_port=free_port(), local_broker=self.broker
            )
        )
        broker.start_broker()
        broker_pid = broker.pid("broker")
        settings = self._settings(ch, broker, name)
        workers: list[WorkerProcess] = []
        client = None
        try:
            create_topics(settings)
            migrate(settings)
            client = make_client(settings)
            for i in range(n_workers):
                s = settings.model_copy(
                    update={"web_port": free_port(), "state_dir": self.root / name / f"state-{i}"}
                )
                workers.append(WorkerProcess(s, name=f"{name}-w{i}", loglevel="warning").start())
            warm = warm_up(settings, client, workers)
            events = list(bench_events(n, self.seed, self.n_customers))
            pids = [w.proc.pid for w in workers if w.proc is not None]
            cpu0 = [proc_cpu_s(pid) for pid in pids]
            processed0 = [_processed(w) for w in workers]
            broker_cpu0 = proc_cpu_s(broker_pid)
            sent_at: dict[str, float] = {}
            watcher = AlertWatcher(settings).start()
            try:
                produce_s = _produce(settings, events, rate, sent_at, self.linger_ms)
                result = wait_reconciled(
                    client, settings.clickhouse_database, n + warm, DRAIN_TIMEOUT_S
                )
                time.sleep(ALERT_GRACE_S)  # the last batch's alerts are published with it
            finally:
                received = watcher.stop()
                alerts = latency_timeline(sent_at, received)
                created = creation_timeline(sent_at, received)
            cpu_each = [proc_cpu_s(pid) - c0 for pid, c0 in zip(pids, cpu0, strict=True)]
            cpu_s = sum(cpu_each)
            worker_events = [_processed(w) - p0 for w, p0 in zip(workers, processed0, strict=True)]
            broker_cpu_s = proc_cpu_s(broker_pid) - broker_cpu0
            memory = [proc_memory_mb(w.proc.pid) for w in workers if w.proc is not None]
            figures = stored_figures(client, settings.clickhouse_database)
            return PhaseResult(
                name=name,
                workers=n_workers,
                offered_rate=rate,
                events=n,
                produce_s=round(produce_s, 2),
                worker_cpu_s=round(cpu_s, 2),
                events_per_cpu_s=round(n / cpu_s, 1) if cpu_s > 0 else 0.0,
                rss_mb=[round(m[0], 1) for m in memory],
                peak_rss_mb=[round(m[1], 1) for m in memory],
                broker_cpu_s=round(broker_cpu_s, 2),
                worker_events=worker_events,
                worker_events_per_s=shares(figures["events_per_s"], worker_events),
                worker_cpu_each_s=[round(c, 2) for c in cpu_each],
                reconciled=result.ok,
                issues=result.issues(),
                **_alert_figures(alerts, created),
                **figures,
            )
        finally:
            if client is not None:
                client.close()
            for w in workers:
                w.stop(timeout_s=15)
            broker.stop()


def start_clickhouse(root: Path) -> LocalStack:
    """A local ClickHouse server for a bench run, its data under ``root``."""
    ch = LocalStack(
        local_stack_settings(
            data_dir=root / "clickhouse",
            local_clickhouse_http_port=free_port(),
            local_clickhouse_tcp_port=free_port(),
        )
    )
    ch.start_clickhouse()
    return ch


def warm_up(settings: Settings, client: Any, workers: Sequence[WorkerProcess]) -> int:
    """Send probes on every partition until each worker has processed one; returns sent."""
    sent = 0
    deadline = time.monotonic() + WARMUP_TIMEOUT_S
    while True:
        probes = [
            (TRANSACTIONS, f"warmup-{sent + i}".encode(), _warm_event(sent + i))
            for i in range(settings.topic_partitions * 4)
        ]
        _produce(settings, probes, None)
        sent += len(probes)
        ready = wait_reconciled(client, settings.clickhouse_database, sent, 20.0)
        if ready.accounted >= sent and all(w.stats().get("processed") for w in workers):
            return sent
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench workers not ready after {WARMUP_TIMEOUT_S}s")


def _warm_event(i: int) -> dict[str, Any]:
    return {
        "event_id": f"warmup-{i}",
        "ts": "",
        "customer_id": f"warmup-{i}",
        "customer_type": "individual",
        "segment": "retail",
        "account_id": "warmup",
        "amount": 1,
        "currency": "CNY",
        "direction": "debit",
        "txn_type": "transfer",
        "channel": "app",
    }


def _processed(worker: WorkerProcess) -> int:
    """Events (valid and dead-lettered) ``worker`` has processed so far."""
    stats = worker.stats()
    return int(stats.get("processed", 0)) + int(stats.get("deadletters", 0))


def shares(total_rate: float, counts: Sequence[int]) -> list[float]:
    """``total_rate`` divided in proportion to ``counts`` (each worker's part of a phase).

    >>> shares(9000.0, [2000, 1000])
    [6000.0, 3000.0]
    >>> shares(9000.0, [0, 0])
    [0.0, 0.0]
    """
    whole = sum(counts)
    return [round(total_rate * c / whole, 1) if whole else 0.0 for c in counts]


def stored_figures(client: Any, db: str) -> dict[str, Any]:
    """Throughput (rows stored after the first insert over the insert span) and
    produce-to-visible latency percentiles of the event rows in ``db`` (probes left out)."""
    union = " UNION ALL ".join(
        f"SELECT ts, ingested_at FROM {db}.{t.name} FINAL WHERE event_id NOT LIKE 'warmup-%'"
        for t in EVENT_TABLES.values()
    )
    rows = client.query(
        f"SELECT dateDiff('millisecond', ts, ingested_at) AS lat, "
        f"toUnixTimestamp64Milli(ingested_at) AS at FROM ({union})"
    ).result_rows
    if not rows:
        return {"events_per_s": 0.0, "p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    lats = sorted(float(r[0]) for r in rows)
    ats = [int(r[1]) for r in rows]
    first, last = min(ats), max(ats)
    after_first = sum(1 for a in ats if a > first)
    span_s = (last - first) / 1000
    return {
        "events_per_s": round(after_first / span_s, 1) if span_s > 0 else 0.0,
        "p50_ms": percentile(lats, 0.50),
        "p95_ms": percentile(lats, 0.95),
        "p99_ms": percentile(lats, 0.99),
        "max_ms": lats[-1],
    }


def _alert_figures(
    timeline: Sequence[tuple[float, float]], created: Sequence[tuple[float, float]] = ()
) -> dict[str, Any]:
    """Count and percentiles of produce → alert latencies (zeros without alerts), overall
    and per window of send time; with ``created`` (produce → alert created, the same
    alerts), its p50 and p99 too.

    >>> f = _alert_figures([(0.0, 30.0), (1.0, 10.0), (12.0, 20.0)], [(0.0, 20.0), (12.0, 5.0)])
    >>> f["alert_p50_ms"], [(w["from_s"], w["alerts"], w["p50_ms"]) for w in f["alert_windows"]]
    (20.0, [(0.0, 2, 10.0), (10.0, 1, 20.0)])
    >>> f["alert_created_p99_ms"], [w["created_p99_ms"] for w in f["alert_windows"]]
    (20.0, [20.0, 5.0])
    """
    if not timeline:
        return {"alerts": 0}
    lats = sorted(ms for _, ms in timeline)
    windows = latency_windows(timeline, ALERT_WINDOW_S, "alerts")
    figures: dict[str, Any] = {
        "alerts": len(lats),
        "alert_p50_ms": percentile(lats, 0.50),
        "alert_p95_ms": percentile(lats, 0.95),
        "alert_p99_ms": percentile(lats, 0.99),
        "alert_windows": windows,
    }
    if created:
        c = sorted(ms for _, ms in created)
        figures["alert_created_p50_ms"], figures["alert_created_p99_ms"] = (
            percentile(c, 0.50),
            percentile(c, 0.99),
        )
        start = min(t for t, _ in timeline)  # the same windows as the end-to-end figures
        by_from = {w["from_s"]: w for w in windows}
        for w in latency_windows(created, ALERT_WINDOW_S, "n", start=start):
            target = by_from.get(w["from_s"])
            if target is not None:
                target["created_p50_ms"], target["created_p99_ms"] = w["p50_ms"], w["p99_ms"]
    return figures


def latency_windows(
    timeline: Sequence[tuple[float, float]],
    window_s: float,
    count_key: str,
    start: float | None = None,
) -> list[dict[str, Any]]:
    """Count (under ``count_key``), p50 and p99 of (send time, ms) pairs per ``window_s`` of
    send time, counted from ``start`` (default: the earliest send).

    >>> w = latency_windows([(5.0, 30.0), (6.0, 10.0), (17.0, 20.0)], 10.0, "n")
    >>> [(x["from_s"], x["n"], x["p50_ms"], x["p99_ms"]) for x in w]
    [(0.0, 2, 10.0, 30.0), (10.0, 1, 20.0, 20.0)]
    """
    if not timeline:
        return []
    if start is None:
        start = min(sent for sent, _ in timeline)
    windows: dict[int, list[float]] = {}
    for sent, ms in timeline:
        windows.setdefault(int((sent - start) // window_s), []).append(ms)
    out = []
    for k, v in sorted(windows.items()):
        v.sort()
        p50, p99 = percentile(v, 0.5), percentile(v, 0.99)
        out.append({"from_s": k * window_s, count_key: len(v), "p50_ms": p50, "p99_ms": p99})
    return out


def summary(
    phases: Sequence[PhaseResult],
    scoring_events_per_s: float | None = None,
    bytes_per_customer: float | None = None,
    memory_mb_per_100k_customers: float | None = None,
) -> dict[str, Any]:
    """The bench's JSON object: headline figures plus every phase.

    ``events_per_s`` is one worker at saturation; the latency percentiles are at the fixed
    offered load; ``scoring_events_per_s`` is the in-process scoring path
    (:mod:`finpulse.streams.tools.bench_scoring`: risk features, models and rules on decoded
    events).
    """
    by_name = {p.name: p for p in phases}
    sat1 = by_name.get("saturation-1")
    fixed = by_name.get("fixed")
    return {
        "events_per_s": sat1.events_per_s if sat1 else None,
        "p50_ms": fixed.p50_ms if fixed else None,
        "p95_ms": fixed.p95_ms if fixed else None,
        "p99_ms": fixed.p99_ms if fixed else None,
        "alert_p50_ms": fixed.alert_p50_ms if fixed else None,
        "alert_p95_ms": fixed.alert_p95_ms if fixed else None,
        "alert_p99_ms": fixed.alert_p99_ms if fixed else None,
        "scoring_events_per_s": scoring_events_per_s,
        "bytes_per_customer": bytes_per_customer,  # encoded state (changelog) per customer
        # the same state as Python objects (deep size), per 100k customers
        "memory_mb_per_100k_customers": memory_mb_per_100k_customers,
        "two_workers_events_per_s": by_name["saturation-2"].events_per_s
        if "saturation-2" in by_name
        else None,
        "two_workers_events_per_s_each": by_name["saturation-2"].worker_events_per_s
        if "saturation-2" in by_name
        else None,
        "events_per_cpu_s": sat1.events_per_cpu_s if sat1 else None,
        "worker_rss_mb": max((max(p.rss_mb, default=0.0) for p in phases), default=None),
        "reconciled": all(p.reconciled for p in phases),
        "phases": [asdict(p) for p in phases],
    }


def format_table(result: dict[str, Any]) -> str:
    """A plain-text table of the phases."""
    head = (
        f"{'phase':<14}{'workers':>8}{'offered/s':>11}{'events':>8}{'events/s':>10}"
        f"{'p50 / p95 / p99 ms':>29}{'max ms':>8}{'alert p50 / p99':>17}{'ev/CPU s':>10}"
        f"{'RSS MB':>14}{'ok':>5}"
    )
    lines = [head, "-" * len(head)]
    for p in result["phases"]:
        broker_cpu = p.get("broker_cpu_s", 0.0)
        offered = f"{p['offered_rate']:.0f}" if p["offered_rate"] else "max"
        rss = "/".join(f"{m:.0f}" for m in p["rss_mb"])
        alerts = f"{p['alert_p50_ms']:.0f} / {p['alert_p99_ms']:.0f}" if p["alerts"] else "-"
        lines.append(
            f"{p['name']:<14}{p['workers']:>8}{offered:>11}{p['events']:>8}"
            f"{p['events_per_s']:>10.0f}{percentile_row(p):>29}{p['max_ms']:>8.0f}"
            f"{alerts:>17}"
            f"{p['events_per_cpu_s']:>10.0f}"
            f"{rss:>14}{'yes' if p['reconciled'] else 'NO':>5}"
            f"  broker CPU {broker_cpu:.1f} s"
        )
        if len(p.get("worker_events_per_s", ())) > 1:
            each = ", ".join(
                f"w{i} {rate:,.0f}/s ({cpu:.1f} CPU s)"
                for i, (rate, cpu) in enumerate(
                    zip(p["worker_events_per_s"], p["worker_cpu_each_s"], strict=True)
                )
            )
            lines.append(f"  per worker: {each}")
    scoring = result.get("scoring_events_per_s")
    lines.append(
        f"scoring path alone: {scoring:,.0f} events/s; " if scoring else "scoring path: n/a; "
    )
    state = result.get("bytes_per_customer")
    lines[-1] += f"state per customer: {state:,.0f} bytes encoded" if state else "state: n/a"
    for p in result["phases"]:
        if p["offered_rate"] and p.get("alert_windows"):
            lines.append(f"{p['name']}: alert p50 / p99 ms per {ALERT_WINDOW_S:.0f} s of sends:")
            lines.append("  at the consumer: " + _window_pairs(p["alert_windows"], ""))
            if any("created_p50_ms" in w for w in p["alert_windows"]):
                pairs = _window_pairs(p["alert_windows"], "created_")
                lines.append("  created by the worker: " + pairs)
    return "\n".join(lines)


def _window_pairs(windows: Sequence[dict[str, Any]], prefix: str) -> str:
    """``p50/p99`` of each window, comma-separated (``-`` where a window lacks them).

    >>> _window_pairs([{"p50_ms": 80.2, "p99_ms": 190.0}, {}], "")
    '80/190, -'
    """
    return ", ".join(
        f"{w[prefix + 'p50_ms']:.0f}/{w[prefix + 'p99_ms']:.0f}" if prefix + "p50_ms" in w else "-"
        for w in windows
    )


def run_bench(
    settings: Settings, keep: bool = False, brokers: Sequence[str] = ("tansu",), **kwargs: Any
) -> dict[str, Any]:
    """Run :class:`Bench` on each of ``brokers`` in turn, in a temporary folder (kept with
    ``keep``), with the reference figures measured once in the same run.

    Returns ``{"references": {...}, "brokers": {name: summary}, "reconciled": bool}``; with
    one broker its summary's keys are also at the top level.
    """
    root = Path(tempfile.mkdtemp(prefix="finpulse-bench-"))
    try:
        benches = {b: Bench(settings, root / b, broker=b, **kwargs) for b in brokers}
        references = next(iter(benches.values())).references()
        results = {b: bench.run(references) for b, bench in benches.items()}
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    combined: dict[str, Any] = {
        "references": references,
        "brokers": results,
        "reconciled": all(r["reconciled"] for r in results.values()),
    }
    if len(results) == 1:
        combined = {**next(iter(results.values())), **combined}
    return combined


def format_tables(result: dict[str, Any]) -> str:
    """:func:`format_table` for each broker of a :func:`run_bench` result, then the run's
    reference figures."""
    parts = []
    for name, summary_ in result["brokers"].items():
        parts.append(f"== {name} (producer linger {summary_['producer_linger_ms']:.0f} ms)")
        parts.append(format_table(summary_))
    return "\n".join(parts)
