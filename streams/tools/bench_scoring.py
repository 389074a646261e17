"""Benchmark of the scoring path: features + models (+ the policy's rules) on decoded events.

Decoding (pydantic) and the broker are outside the measured path: the simulator's
transactions are decoded first, then fed in batches to the risk stage (and the rule
stage, which reads its features) exactly as the Pipeline would, with the worker's GC
setting. Run: ``python -m finpulse.streams.tools.bench_scoring --events 60000``; with
``--service``, the service path instead (:func:`bench_service`).

>>> r = bench(n_events=2000, n_customers=200, batch=500)
>>> r["transactions"] > 1000 and r["events_per_s"] > 0
True
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from typing import Any

import msgspec

from finpulse.config.policy import load_policy
from finpulse.config.settings import Settings
from finpulse.models.events import Feedback, Interaction, Transaction
from finpulse.streams.core.batch import BatchOutput
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.state import MemoryState
from finpulse.streams.core.topics import INPUT_TOPICS, TRANSACTIONS
from finpulse.streams.simulator import Simulator
from finpulse.streams.stages.risk import risk_stages
from finpulse.streams.stages.rules import RuleEngine, RuleStage
from finpulse.streams.stages.service.stage import service_stages
from finpulse.streams.tools.evaluate import SIM_START


def bench(
    n_events: int = 60_000, n_customers: int = 3000, batch: int = 2000, seed: int = 1
) -> dict[str, Any]:
    """Events/s of :class:`RiskStage` over the transactions of one simulator run."""
    sim = Simulator(
        seed=seed, start=SIM_START, n_events=n_events, sim_span_s=7 * 86400.0,
        n_customers=n_customers, malformed_share=0.0,
    )  # fmt: skip
    txns = []
    for i, ev in enumerate(sim.events()):
        if ev.topic == TRANSACTIONS:
            raw = RawRecord(ev.topic, 0, i, ev.value, ev.key)
            txns.append((Transaction.model_validate_json(ev.value), raw))
    settings = Settings(restore_model_checkpoints=False)
    engine = RuleEngine(load_policy(settings.policy_path))
    _tune_gc(settings)
    result: dict[str, Any] = {"transactions": len(txns), "batch": batch}
    for label, with_rules in (("risk", False), ("risk_and_rules", True)):
        stages: list[Any] = [risk_stages(settings, MemoryState, engine)[0]]
        if with_rules:
            stages.append(RuleStage(engine))
        started = time.perf_counter()
        for k in range(0, len(txns), batch):
            out = BatchOutput()
            for stage in stages:
                stage.process("transaction", txns[k : k + batch], out)
        elapsed = time.perf_counter() - started
        result[f"{label}_seconds"] = round(elapsed, 3)
        result[f"{label}_events_per_s"] = round(len(txns) / elapsed)
    result["events_per_s"] = result["risk_and_rules_events_per_s"]
    return result


def _tune_gc(settings: Settings) -> None:
    if settings.gc_threshold0:  # as the worker does (finpulse.streams.worker.launch.tune_gc)
        gc.set_threshold(settings.gc_threshold0, 50, 1000)


_MODELS: dict[str, Any] = {
    "transaction": Transaction,
    "interaction": Interaction,
    "feedback": Feedback,
}


def bench_service(
    n_events: int = 60_000, n_customers: int = 3000, batch: int = 500, seed: int = 1
) -> dict[str, Any]:
    """Events/s of both service stages alone over the events (all three kinds) of one
    simulator run: the service path. Decoded first; the rule and risk stages do not run, so
    the context stage sees only the service stage's own candidates.

    >>> r = bench_service(n_events=2000, n_customers=200, batch=500)
    >>> r["events"] > 1500 and r["interactions"] > 100 and r["events_per_s"] > 0
    True
    """
    sim = Simulator(
        seed=seed, start=SIM_START, n_events=n_events, sim_span_s=7 * 86400.0,
        n_customers=n_customers, malformed_share=0.0,
    )  # fmt: skip
    batches: list[tuple[str, list[tuple[Any, RawRecord]]]] = []
    pending: dict[str, list[tuple[Any, RawRecord]]] = {}
    for i, ev in enumerate(sim.events()):
        kind = INPUT_TOPICS[ev.topic]
        raw = RawRecord(ev.topic, 0, i, ev.value, ev.key)
        pending.setdefault(kind, []).append((_MODELS[kind].model_validate_json(ev.value), raw))
        if i % batch == batch - 1:
            batches.extend(pending.items())
            pending = {}
    batches.extend(pending.items())
    settings = Settings(restore_model_checkpoints=False, satisfaction_checkpoint_every=0)
    engine = RuleEngine(load_policy(settings.policy_path))
    _tune_gc(settings)
    stages = service_stages(settings, MemoryState, engine)
    started, cpu_started = time.perf_counter(), time.process_time()
    for kind, events in batches:
        out = BatchOutput()
        for stage in stages:
            if kind in stage.kinds:  # as the pipeline routes them
                stage.process(kind, events, out)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    n = sum(len(events) for _kind, events in batches)
    return {
        "events": n,
        "interactions": sum(len(e) for k, e in batches if k == "interaction"),
        "batch": batch,
        "seconds": round(elapsed, 3),
        "events_per_s": round(n / elapsed),
        "events_per_cpu_s": round(n / cpu),  # process CPU time: steadier on a shared machine
    }


def main() -> None:  # pragma: no cover - CLI
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--batch", type=int, help="events per batch (2000; 500 with --service)")
    parser.add_argument("--service", action="store_true", help="the service path instead")
    args = parser.parse_args()
    if args.service:
        print(json.dumps(bench_service(args.events, args.customers, args.batch or 500)))
    else:
        print(json.dumps(bench(args.events, args.customers, args.batch or 2000)))


if __name__ == "__main__":  # pragma: no cover
    main()


def state_bytes_per_customer(
    n_events: int = 30_000, n_customers: int = 2000, seed: int = 1, batch: int = 500
) -> dict[str, Any]:
    """Bytes of every stage's keyed state after an offline replay, per customer seen.

    ``bytes_per_customer`` counts the values as the state codec writes them to the changelog
    topics (:mod:`finpulse.streams.core.state_codec`; what a restart restores); per-partition
    state is included, amortized over the customers. ``risk_record_bytes_max`` is the
    largest customer record of the risk stage. ``memory_bytes_*`` is the same state as
    resident Python objects (:func:`deep_size`), which take several times more.

    >>> r = state_bytes_per_customer(n_events=1500, n_customers=100)
    >>> r["customers"] > 50 and r["memory_bytes_per_customer"] > r["bytes_per_customer"] > 0
    True
    """
    from finpulse.streams.stages.risk import STATE_NAME as RISK_STATE
    from finpulse.streams.worker.app import default_stages
    from finpulse.streams.worker.pipeline import Pipeline

    states: dict[str, MemoryState] = {}

    def factory(name: str, value_type: Any = Any) -> MemoryState:
        states[name] = MemoryState(name, value_type)
        return states[name]

    settings = Settings(restore_model_checkpoints=False, satisfaction_checkpoint_every=0)
    pipeline = Pipeline(settings, default_stages, state=factory)
    sim = Simulator(
        seed=seed,
        start=SIM_START,
        n_events=n_events,
        sim_span_s=6 * 86400.0,
        n_customers=n_customers,
    )
    pending: dict[str, list[RawRecord]] = {}
    customers: set[bytes] = set()
    for i, ev in enumerate(sim.events()):
        pending.setdefault(ev.topic, []).append(RawRecord(ev.topic, 0, i, ev.value, ev.key))
        if ev.key and not ev.malformed:
            customers.add(ev.key)
        if i % batch == batch - 1:
            for topic, records in pending.items():
                pipeline.process(INPUT_TOPICS[topic], records)
            pending = {}
    for topic, records in pending.items():
        pipeline.process(INPUT_TOPICS[topic], records)
    sizes = {name: [len(st.codec.encode(v)) for _k, v in st.items()] for name, st in states.items()}
    by_state = {name: sum(s) for name, s in sizes.items()}
    memory_by_state = {name: deep_size(st.data) for name, st in states.items()}
    total = sum(by_state.values())
    n = len(customers)
    memory = sum(memory_by_state.values())
    return {
        "customers": n,
        "bytes_per_customer": round(total / n),
        "bytes_by_state": by_state,
        "risk_record_bytes_max": max(sizes[RISK_STATE], default=0),
        "memory_bytes_per_customer": round(memory / n),
        "memory_bytes_by_state": memory_by_state,
        "memory_mb_per_100k_customers": round(memory / n * 100_000 / 1e6, 1),
    }


def deep_size(obj: Any) -> int:
    """Resident bytes of a tree of dicts / lists / tuples / scalars (``sys.getsizeof`` of
    every distinct object reached, so shared objects such as interned strings and small
    ints are counted once). The allocator's rounding and free lists are not included.

    >>> deep_size([]) < deep_size([1.5, "abc"]) < deep_size([[1.5, "abc"], {"k": 2.5}])
    True
    """
    seen: set[int] = set()
    total = 0
    stack = [obj]
    while stack:
        o = stack.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        total += sys.getsizeof(o)
        if isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, list | tuple | set):
            stack.extend(o)
        elif isinstance(o, msgspec.Struct):
            stack.extend(getattr(o, f) for f in o.__struct_fields__)
    return total
