"""``finpulse bench --state-customers N``: keyed state of N distinct customers on each state
store (``rocksdb`` and ``memory``), in alternating runs of the same bench.

Each run starts a fresh broker, a fresh ClickHouse database and one worker with
``FINPULSE_STATE_STORE`` set to its store, then:

1. **load**: one transaction and one service interaction per customer (shaped like simulator
   traffic, customer ids all distinct), produced as fast as the producer can; saturation
   throughput as in :func:`finpulse.streams.tools.bench.stored_figures`, the worker's resident
   memory once everything is stored;
2. **changelog**: the newest record of every key on every changelog topic, read back from the
   broker: bytes per customer and keys in all;
3. **restart on the same host**: the worker stops (SIGTERM); a new one starts on the same
   state directory and one probe event is produced at once; ``restart_s`` runs from the
   process start to the worker's first processed event (its stats file, written every
   0.1 s here), resident memory then, and the worker's own start-up milestones
   (``restart_phases_s``, :mod:`finpulse.streams.worker.startup`);
4. **fresh state directory**: the same with an empty state directory, so the state comes
   from the changelog alone: ``rebuild_s`` and keys rebuilt per second.

Every run ends with the count reconciliation (produced = rows + dead letters).

>>> events = state_events(3, seed=7)
>>> len(events), sorted({topic for topic, _, _ in events})
(6, ['finpulse.interactions', 'finpulse.transactions'])
>>> sorted({json.loads(v)["customer_id"] for _, _, v in events})
['s-0000000', 's-0000001', 's-0000002']
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from finpulse.config.settings import LOCAL_GROUP_TIMEOUTS, Settings, local_stack_settings
from finpulse.sinks.clickhouse import make_client
from finpulse.sinks.migrate import migrate
from finpulse.streams.core.topics import INTERACTIONS, TRANSACTIONS, create_topics
from finpulse.streams.local.stack import LocalStack, free_port
from finpulse.streams.tools.bench import (
    PRODUCER_LINGER_MS,
    _produce,
    bench_events,
    proc_memory_mb,
    start_clickhouse,
    stored_figures,
    warm_up,
)
from finpulse.streams.tools.reconcile import wait_reconciled
from finpulse.streams.worker import commit_log
from finpulse.streams.worker.process import WorkerProcess

log = logging.getLogger(__name__)

STORES = ("rocksdb", "memory")
LOAD_TIMEOUT_S = 1800.0
RESTART_TIMEOUT_S = 900.0
CHANGELOG_IDLE_S = 3.0
STATS_INTERVAL_S = 0.1


@dataclass
class StateRun:
    """The figures of one state-store run."""

    store: str
    customers: int
    events: int
    load_s: float = 0.0
    events_per_s: float = 0.0  # saturation, rows stored after the first insert
    rss_mb: float = 0.0  # after the load
    peak_rss_mb: float = 0.0
    changelog_keys: int = 0
    changelog_bytes_per_customer: float = 0.0  # newest record of every key, key + value
    state_dir_mb: float = 0.0  # the worker's state directory after the load
    restart_s: float = 0.0  # same state directory: process start -> first event
    restart_recovery_s: float = 0.0  # of which reading the changelogs and redo (the worker's)
    restart_rss_mb: float = 0.0
    restart_phases_s: dict[str, float] = field(default_factory=dict)  # the worker's milestones
    rebuild_s: float = 0.0  # empty state directory: process start -> first event
    rebuild_recovery_s: float = 0.0
    rebuild_keys_per_s: float = 0.0  # changelog keys / rebuild_recovery_s
    rebuild_rss_mb: float = 0.0
    rebuild_phases_s: dict[str, float] = field(default_factory=dict)
    reconciled: bool = False
    issues: list[str] = field(default_factory=list)


def state_events(n_customers: int, seed: int = 7) -> list[tuple[str, bytes, bytes]]:
    """(topic, key, JSON value) of one transaction and one interaction per customer
    ``s-0000000``..., copied from simulator events with the customer replaced (the simulator
    itself is too slow for a million customers). Timestamps are the time of the call."""
    templates: dict[str, list[dict[str, Any]]] = {TRANSACTIONS: [], INTERACTIONS: []}
    for topic, _, value in bench_events(2_000, seed, 500):
        if topic in templates and isinstance(value, dict):
            templates[topic].append(value)
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    events = []
    for i in range(n_customers):
        customer = f"s-{i:07d}"
        for topic, shapes in templates.items():
            event = dict(shapes[i % len(shapes)])
            event.update(
                event_id=f"{topic[9]}-{customer}", ts=now, customer_id=customer
            )  # t-… / i-…
            if "account_id" in event:
                event["account_id"] = f"{customer}-a0"
            events.append((topic, customer.encode(), json.dumps(event).encode()))
    return events


def latest_changelog(settings: Settings) -> tuple[int, int]:
    """(keys, bytes) of the newest record of every key on the tables' changelog topics (the
    commit log's left out), read from the start until no record came for a few seconds."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": ",".join(settings.broker_bootstrap),
            "group.id": f"bench-state-{time.time_ns()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        topics = [
            t
            for t in consumer.list_topics(timeout=10).topics
            if t.endswith("-changelog") and commit_log.TABLE_NAME not in t
        ]
        consumer.assign(
            [TopicPartition(t, p, 0) for t in topics for p in range(settings.topic_partitions)]
        )
        sizes: dict[tuple[str, bytes], int] = {}
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < CHANGELOG_IDLE_S:
            for msg in consumer.consume(10_000, timeout=0.5):
                if msg.error() is None:
                    key, value = msg.key() or b"", msg.value()
                    sizes[(msg.topic() or "", key)] = len(key) + len(value or b"")
                    idle_since = time.monotonic()
    finally:
        consumer.close()
    return len(sizes), sum(sizes.values())


def dir_mb(path: Path) -> float:
    """Size of the files under ``path`` in MiB (0 if it does not exist).

    >>> dir_mb(Path("/nonexistent"))
    0.0
    """
    if not path.exists():
        return 0.0
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 1)


class StateBench:
    """Runs the state phase on a local stack rooted in ``root``."""

    def __init__(
        self,
        base: Settings,
        root: Path,
        customers: int = 1_000_000,
        rounds: int = 1,
        stores: Sequence[str] = STORES,
        broker: str = "kafka",
        seed: int = 7,
    ) -> None:
        self.base = base
        self.root = root
        self.customers = customers
        self.rounds = rounds
        self.stores = list(stores)
        self.broker = broker
        self.seed = seed

    def run(self) -> dict[str, Any]:
        """Every store once per round, alternating; returns ``{"runs": [...], ...}``."""
        events = state_events(self.customers, self.seed)
        ch = start_clickhouse(self.root)
        runs: list[StateRun] = []
        try:
            for r in range(self.rounds):
                for store in self.stores:
                    runs.append(self._run(ch, f"state-{store}-{r}", store, events))
                    log.info("state run: %s", runs[-1])
        finally:
            ch.stop()
        return {
            "broker": self.broker,
            "customers": self.customers,
            "runs": [asdict(r) for r in runs],
            "reconciled": all(r.reconciled for r in runs),
        }

    def _run(
        self, ch: LocalStack, name: str, store: str, events: Sequence[tuple[str, bytes, bytes]]
    ) -> StateRun:
        folder = self.root / name
        broker = LocalStack(
            local_stack_settings(
                data_dir=folder, local_broker_port=free_port(), local_broker=self.broker
            )
        )
        broker.start_broker()
        settings = self.base.model_copy(
            update={
                "data_dir": folder,
                "broker_url": broker.broker_url,
                "clickhouse_url": ch.clickhouse_url,
                "clickhouse_database": f"bench_{name.replace('-', '_')}_{int(time.time())}",
                "local_broker": self.broker,
                "state_store": store,
                "stats_interval_s": STATS_INTERVAL_S,
                **LOCAL_GROUP_TIMEOUTS[self.broker],
            }
        )
        run = StateRun(store=store, customers=self.customers, events=len(events))
        client = None
        worker: WorkerProcess | None = None
        try:
            create_topics(settings)
            migrate(settings)
            client = make_client(settings)
            db = settings.clickhouse_database
            worker = self._worker(settings, folder / "state-a", f"{name}-load")
            produced = warm_up(settings, client, [worker])
            t0 = time.monotonic()
            _produce(settings, events, None, linger_ms=PRODUCER_LINGER_MS[self.broker])
            produced += len(events)
            loaded = wait_reconciled(client, db, produced, LOAD_TIMEOUT_S)
            run.load_s = round(time.monotonic() - t0, 1)
            run.events_per_s = stored_figures(client, db)["events_per_s"]
            time.sleep(2 * settings.sink_flush_interval_s)  # the last commit's changelog
            run.rss_mb, run.peak_rss_mb = _memory(worker)
            run.state_dir_mb = dir_mb(folder / "state-a")
            run.changelog_keys, changelog_bytes = latest_changelog(settings)
            run.changelog_bytes_per_customer = round(changelog_bytes / self.customers, 1)
            worker.stop()
            # same host: the state directory of the stopped worker
            worker = self._worker(settings, folder / "state-a", f"{name}-restart")
            run.restart_s, run.restart_recovery_s, run.restart_phases_s = self._first_event(
                settings, worker, 0
            )
            run.restart_rss_mb = _memory(worker)[0]
            worker.stop()
            produced += 1
            # new host: an empty state directory
            worker = self._worker(settings, folder / "state-b", f"{name}-rebuild")
            run.rebuild_s, run.rebuild_recovery_s, run.rebuild_phases_s = self._first_event(
                settings, worker, 1
            )
            run.rebuild_keys_per_s = round(run.changelog_keys / max(run.rebuild_recovery_s, 0.01))
            run.rebuild_rss_mb = _memory(worker)[0]
            produced += 1
            result = wait_reconciled(client, db, produced, 60.0)
            run.reconciled = loaded.ok and result.ok
            run.issues = result.issues()
        finally:
            if client is not None:
                client.close()
            if worker is not None:
                worker.stop(timeout_s=15)
            broker.stop()
            shutil.rmtree(folder / "state-a", ignore_errors=True)
            shutil.rmtree(folder / "state-b", ignore_errors=True)
        return run

    def _worker(self, settings: Settings, state_dir: Path, name: str) -> WorkerProcess:
        s = settings.model_copy(update={"web_port": free_port(), "state_dir": state_dir})
        return WorkerProcess(s, name=name, loglevel="info").start()

    def _first_event(
        self, settings: Settings, worker: WorkerProcess, probe: int
    ) -> tuple[float, float, dict[str, float]]:
        """Seconds from the worker's start to its first processed event (a probe: a new
        transaction of customer 0, whose state the worker reads, sent right after start),
        the seconds of that spent in table recovery, by the worker's own count, and the
        worker's start-up milestones."""
        started = time.monotonic()  # the process was started just before
        customer = "s-0000000"
        value = {**_probe_event(customer), "event_id": f"probe-{probe}"}
        _produce(settings, [(TRANSACTIONS, customer.encode(), value)], None)
        stats = worker.wait_for(
            lambda s: s.get("processed", 0) >= 1, RESTART_TIMEOUT_S, "a first event"
        )
        recovery_s = float(stats.get("recovery_s", 0.0))
        return round(time.monotonic() - started, 2), recovery_s, stats.get("startup_phases_s", {})


def _probe_event(customer: str) -> dict[str, Any]:
    return {
        "ts": "",
        "customer_id": customer,
        "customer_type": "individual",
        "segment": "retail",
        "account_id": f"{customer}-a0",
        "amount": 12.5,
        "currency": "CNY",
        "direction": "debit",
        "txn_type": "card_payment",
        "channel": "app",
    }


def _memory(worker: WorkerProcess) -> tuple[float, float]:
    if worker.proc is None:
        return 0.0, 0.0
    rss, peak = proc_memory_mb(worker.proc.pid)
    return round(rss, 1), round(peak, 1)


def run_state_bench(settings: Settings, keep: bool = False, **kwargs: Any) -> dict[str, Any]:
    """Run :class:`StateBench` in a temporary folder (kept with ``keep``)."""
    root = Path(tempfile.mkdtemp(prefix="finpulse-bench-state-"))
    try:
        return StateBench(settings, root, **kwargs).run()
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def format_state_table(result: dict[str, Any]) -> str:
    """A plain-text table of the state runs; restart and rebuild as ``total/recovery`` s.

    >>> run = StateRun("rocksdb", 10, 20, events_per_s=5000.0, restart_s=3.2, rebuild_s=4.0)
    >>> format_state_table({"broker": "kafka", "runs": [asdict(run)]}).splitlines()[2].split()
    ['rocksdb', '10', '5000', '0', '0', '0.0', '3.2/0.0', '4.0/0.0', '0', '0.0', 'NO']
    """
    head = (
        f"{'store':<9}{'customers':>10}{'events/s':>10}{'RSS MB':>8}{'peak MB':>9}"
        f"{'B/customer':>12}{'restart s':>14}{'rebuild s':>14}{'keys/s':>9}{'disk MB':>9}"
        f"{'ok':>4}"
    )
    lines = [f"state phase on {result['broker']}", head]
    for r in result["runs"]:
        lines.append(
            f"{r['store']:<9}{r['customers']:>10}{r['events_per_s']:>10.0f}{r['rss_mb']:>8.0f}"
            f"{r['peak_rss_mb']:>9.0f}{r['changelog_bytes_per_customer']:>12.1f}"
            f"{_pair(r['restart_s'], r['restart_recovery_s']):>14}"
            f"{_pair(r['rebuild_s'], r['rebuild_recovery_s']):>14}"
            f"{r['rebuild_keys_per_s']:>9.0f}"
            f"{r['state_dir_mb']:>9.1f}{'yes' if r['reconciled'] else 'NO':>4}"
        )
    return "\n".join(lines)


def _pair(total_s: float, recovery_s: float) -> str:
    return f"{total_s:.1f}/{recovery_s:.1f}"
