"""Crash equivalence, as a property: the same seeded input through an undisturbed worker and
through a worker SIGKILLed at random points (and restarted each time) must end with the same
rows and the same alerts.

Each run has its own fresh broker, topics, ClickHouse database and data folder; the input
(simulator, fixed seed and start time: large-value, structuring and card-testing patterns
among ordinary traffic) is produced in the same order every time, so each partition sees the
same sequence, and never more than ``AHEAD`` events past what the workers have stored, so
every kill strikes mid-stream with a backlog waiting, whatever the machine's speed. Rows are
compared as id sets and exact (``FINAL``) counts, alerts as ``(rule, subject type, subject,
first_seen) -> occurrences`` from ``alerts FINAL``.

Which alerts are compared: every rule whose decision is a function of one partition's event
sequence. Left out, and why (each is named in ``NOT_COMPARED``):
- the model-driven alerts (``model.*``, ``service.csat_drop``): a restarted worker's online
  models resume from their last checkpoint, not from the state of the commit it resumes
  from; ``drift.*``: a crash changes how batches cut the learning stream's records, and
  which partitions had closed a minute when the model owner's wait ran out;
- rules that read state fed by two input topics (``service.customer_at_risk``,
  ``service.risk_friction``, the complaint deadlines): the two topics' consumption order
  is not fixed even without a crash, so two calm runs can already differ.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from finpulse.config.settings import Settings
from finpulse.sinks.clickhouse import make_client
from finpulse.sinks.tables import EVENT_TABLES
from finpulse.streams.local.stack import LocalStack
from finpulse.streams.simulator import Simulator
from finpulse.streams.tools.reconcile import wait_reconciled
from finpulse.streams.worker.process import WorkerProcess
from tests.conftest import BROKERS, own_stack
from tests.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.crash_property]

N_EVENTS = 6000
AHEAD = 600  # events produced past the rows stored, at most
STEP = 100  # events produced between two looks at the rows stored
STALL_S = 120.0  # how long the stored rows may stay AHEAD behind (a kill, a restart)
SEED = 11
SPAN_S = 12 * 3600.0
N_CUSTOMERS = 400
NOT_COMPARED = (
    "model.",
    "drift.",
    "service.csat_drop",
    "service.customer_at_risk",
    "service.risk_friction",
    "service.complaint_",
)
KILL_SEEDS = (1, 2, 3)  # each draws 2-3 kill points

AlertKey = tuple[str, str, str, str]


@dataclass
class Outcome:
    counts: dict[str, int]
    ids: dict[str, set[str]]
    alerts: dict[AlertKey, int]
    kills: list[int]  # event rows stored when each kill struck


def compared(alerts: dict[AlertKey, int]) -> dict[AlertKey, int]:
    return {k: v for k, v in alerts.items() if not k[0].startswith(NOT_COMPARED)}


def _events() -> list[Any]:
    start = datetime(2026, 11, 30, tzinfo=UTC)
    sim = Simulator(
        seed=SEED, start=start, n_events=N_EVENTS, sim_span_s=SPAN_S, n_customers=N_CUSTOMERS
    )
    return list(sim.events())


def _produce(settings: Settings, events: list[Any], errors: list[Any]) -> None:
    """Produce ``events`` in order, in steps of ``STEP``, each once the rows stored are at
    most ``AHEAD`` behind; a failure (a send, or rows stalled past ``STALL_S``) is appended
    to ``errors``."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=settings.broker_bootstrap, acks="all", linger_ms=20)
    client = make_client(settings)
    db = settings.clickhouse_database
    try:
        for start in range(0, len(events), STEP):
            wait_for(
                lambda s=start: _rows(client, db) >= s - AHEAD,
                STALL_S,
                f"rows stored within {AHEAD} of the {start} events produced",
            )
            for ev in events[start : start + STEP]:
                producer.send(ev.topic, key=ev.key, value=ev.value).add_errback(errors.append)
            producer.flush()
    except AssertionError as stalled:
        errors.append(stalled)
    finally:
        producer.close()
        client.close()


def _rows(client: Any, db: str) -> int:
    return sum(
        int(client.query(f"SELECT count() FROM {db}.{t.name}").result_rows[0][0])
        for t in EVENT_TABLES.values()
    )


def _wait(condition: Any, worker: WorkerProcess, what: str, timeout_s: float = 120.0) -> None:
    def met() -> bool:
        assert worker.alive(), f"the worker died before {what}; log: {worker.log_path}"
        return bool(condition())

    wait_for(met, timeout_s, what)


def run(
    clickhouse: LocalStack, root: Path, broker_kind: str, events: list[Any], kills: list[float]
) -> Outcome:
    """One run of ``events`` on a fresh broker of ``broker_kind``; the worker is SIGKILLed
    once the stored rows reach each fraction in ``kills`` of the input, and restarted."""
    with own_stack(clickhouse, root, broker_kind, "crash", topic_partitions=2) as stack:
        settings, db = stack.settings, stack.settings.clickhouse_database

        def start_worker() -> WorkerProcess:
            return stack.worker(f"{root.name}-w{len(stack.workers)}")

        worker = start_worker()
        errors: list[Any] = []
        producer = threading.Thread(target=_produce, args=(settings, events, errors))
        producer.start()
        client = make_client(settings)
        struck: list[int] = []
        try:
            for fraction in kills:
                target = int(fraction * len(events))
                _wait(lambda t=target: _rows(client, db) >= t, worker, f"{target} rows stored")
                struck.append(_rows(client, db))
                worker.kill()  # SIGKILL: no shutdown, no flush, no commit
                worker = start_worker()
            producer.join(timeout=120)
            assert not errors, errors[:3]
            _wait(lambda: _rows(client, db) >= len(events) * 0.9, worker, "the input stored")
            reconciled = wait_reconciled(client, db, len(events), timeout_s=180)
            assert reconciled.ok, reconciled.issues()
            counts, ids = {}, {}
            for t in EVENT_TABLES.values():
                counts[t.name] = int(
                    client.query(f"SELECT count() FROM {db}.{t.name} FINAL").result_rows[0][0]
                )
                ids[t.name] = {
                    r[0] for r in client.query(f"SELECT event_id FROM {db}.{t.name}").result_rows
                }
            alerts = {
                (rule, stype, sid, first): int(n)
                for rule, stype, sid, first, n in client.query(
                    "SELECT rule_id, subject_type, subject_id, toString(first_seen), occurrences"
                    f" FROM {db}.alerts FINAL"
                ).result_rows
            }
        finally:
            client.close()
    return Outcome(counts, ids, alerts, struck)


@pytest.fixture(scope="module")
def events() -> list[Any]:
    return _events()


@pytest.fixture(scope="module", params=BROKERS)
def broker(request: pytest.FixtureRequest) -> str:
    """Every run of this module on Apache Kafka, then on Tansu."""
    return str(request.param)


@pytest.fixture(scope="module")
def calm(
    clickhouse: LocalStack,
    tmp_path_factory: pytest.TempPathFactory,
    events: list[Any],
    broker: str,
) -> Iterator[Outcome]:
    yield run(clickhouse, tmp_path_factory.mktemp(f"calm-{broker}"), broker, events, [])


def test_the_compared_alerts_cover_the_risk_and_service_rules(calm: Outcome) -> None:
    rules = {k[0] for k in compared(calm.alerts)}
    # the input exercises the regulatory and fraud rules the comparison is about
    assert {"large_value.cash", "card_testing"} <= rules, rules
    assert sum(compared(calm.alerts).values()) > 50


@pytest.mark.parametrize("kill_seed", KILL_SEEDS)
def test_a_worker_killed_at_random_points_ends_like_an_undisturbed_one(
    clickhouse: LocalStack,
    tmp_path: Path,
    events: list[Any],
    broker: str,
    calm: Outcome,
    kill_seed: int,
) -> None:
    rng = random.Random(kill_seed)
    kills = sorted(rng.uniform(0.1, 0.9) for _ in range(rng.choice((2, 3))))
    crashed = run(clickhouse, tmp_path, broker, events, kills)
    assert crashed.counts == calm.counts
    assert crashed.ids == calm.ids
    want, got = compared(calm.alerts), compared(crashed.alerts)
    diff = {
        "only_undisturbed": sorted(set(want) - set(got)),
        "only_crashed": sorted(set(got) - set(want)),
        "occurrences": sorted(
            (k, want[k], got[k]) for k in set(want) & set(got) if want[k] != got[k]
        ),
        "kills_at_rows": crashed.kills,
    }
    assert want == got, json.dumps(diff, indent=1, default=str)
