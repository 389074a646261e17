"""The ``finpulse`` command line.

Settings are built once here from ``FINPULSE_*`` variables and passed down.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from finpulse.config.settings import Settings

log = logging.getLogger("finpulse")


def _schema(settings: Settings, args: argparse.Namespace) -> int:
    from pydantic import BaseModel

    from finpulse.models.alerts import Alert
    from finpulse.models.events import EVENT_MODELS

    if args.name == "policy":  # the policy file, for editors (yaml-language-server) and CI
        from finpulse.config.policy import policy_json_schema

        print(json.dumps(policy_json_schema(), indent=2))
        return 0
    models: dict[str, type[BaseModel]] = {**EVENT_MODELS, "alert": Alert}
    names = [args.name] if args.name else list(models)
    schemas = {n: models[n].model_json_schema() for n in names}
    print(json.dumps(schemas if len(names) > 1 else schemas[names[0]], indent=2))
    return 0


def _topics(settings: Settings, args: argparse.Namespace) -> int:
    from finpulse.streams.core.topics import create_topics

    print(json.dumps(create_topics(settings)))
    return 0


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from finpulse.sinks.migrate import migrate

    applied = migrate(settings)
    print(json.dumps({"applied": applied}))
    return 0


def _services(settings: Settings, args: argparse.Namespace) -> int:
    from finpulse.streams.local.stack import LocalStack, stop_recorded

    if args.action == "down":
        print(json.dumps({"stopped": stop_recorded(settings)}))
        return 0
    if args.broker:
        settings = settings.model_copy(update={"local_broker": args.broker})
    stack = LocalStack(settings)
    stack.start()
    print(
        json.dumps(
            {
                "broker": settings.local_broker,
                "broker_url": stack.broker_url,
                "clickhouse_url": stack.clickhouse_url,
                "data_dir": str(stack.root),
            }
        )
    )
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from finpulse.streams.worker.launch import freeze_startup_heap, make_worker, tune_gc
    from finpulse.streams.worker.startup import StartupClock

    startup = StartupClock()  # the milestones of the start, in the worker's stats
    startup.mark("settings_read")
    tune_gc(settings)
    worker = make_worker(settings, args.loglevel, startup)
    freeze_startup_heap()
    startup.mark("heap_frozen")
    worker.execute_from_commandline()
    return 0


def _evaluate(settings: Settings, args: argparse.Namespace) -> int:
    from finpulse.streams.tools.evaluate import evaluate
    from finpulse.streams.worker.launch import tune_gc

    tune_gc(settings)
    result = evaluate(
        seed=args.seed,
        n_events=args.events,
        n_customers=args.customers,
        sim_days=args.days,
        warmup=args.warmup,
        settings=settings,
    )
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


def _simulate(settings: Settings, args: argparse.Namespace) -> int:
    from finpulse.streams.simulator import run_simulation

    stats = run_simulation(
        settings,
        seed=args.seed,
        rate=args.rate,
        duration_s=args.duration,
        truth_path=args.truth,
        speedup=args.speedup,
    )
    print(json.dumps(stats))
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from finpulse.streams.tools.demo import run_demo

    summary = run_demo(
        settings,
        duration_s=args.duration,
        rate=args.rate,
        seed=args.seed,
        as_json=args.json,
        speedup=args.speedup,
    )
    return 0 if summary.get("ok") else 1


def _evaluate_service(settings: Settings, args: argparse.Namespace) -> int:
    from finpulse.streams.tools.evaluate_service import service_figures

    figures = [
        service_figures(
            seed,
            n_events=args.events,
            sim_span_s=args.span,
            n_customers=args.customers,
            partitions=args.partitions,
            settings=settings,
            risk=not args.without_risk_scoring,
        )
        for seed in args.seed
    ]
    result = figures[0] if len(figures) == 1 else {"runs": figures}
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


def _grafana(settings: Settings, args: argparse.Namespace) -> int:
    import os

    if args.action == "build":
        from finpulse.config.boards.build import build

        print(json.dumps({"changed": build(args.root, settings.response_target_minutes)}))
        return 0
    from finpulse.config.boards.grafana_api import GrafanaError
    from finpulse.config.boards.publish import PublishError, publish

    url = args.url or settings.grafana_url
    try:
        done = publish(settings, url, dict(os.environ))
    except (GrafanaError, PublishError) as exc:
        print(f"finpulse: grafana publish: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(done))
    return 0


def _board(settings: Settings, args: argparse.Namespace) -> int:
    from finpulse.config.boards.html import write_board_html

    if args.range_s:
        settings = settings.model_copy(update={"board_range_s": args.range_s})
    print(write_board_html(settings, args.html))
    return 0


def _status(settings: Settings, args: argparse.Namespace) -> int:
    from finpulse.streams.tools.status import format_table, status_rows

    try:
        rows = status_rows(settings, args.within_s)
    except Exception as exc:  # ClickHouse unreachable, schema not migrated
        print(f"finpulse: status: {str(exc).strip().splitlines()[0][:300]}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"within_s": args.within_s, "rows": rows}))
    elif rows:
        print(format_table(rows))
    if not rows:
        print(
            f"finpulse: no worker recorded its lag in the last {args.within_s:g} s", file=sys.stderr
        )
        return 1
    return 0


def _reports(settings: Settings, args: argparse.Namespace) -> int:
    from finpulse.streams.tools.large_value_export import day_reports, write_reports

    try:
        reports = day_reports(settings, args.day)
    except Exception as exc:  # ClickHouse unreachable, schema not migrated
        print(f"finpulse: reports: {str(exc).strip().splitlines()[0][:300]}", file=sys.stderr)
        return 2
    write_reports(reports, args.format, sys.stdout)
    return 0


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from None


def _config(settings: Settings, args: argparse.Namespace) -> int:
    # SecretStr fields serialise as "**********": secrets are never printed.
    print(json.dumps(settings.model_dump(mode="json"), indent=2, sort_keys=True))
    return 0


def _bench(settings: Settings, args: argparse.Namespace) -> int:
    from finpulse.streams.tools.bench import format_tables, run_bench

    if args.state_customers:
        return _bench_state(settings, args)
    result = run_bench(
        settings,
        keep=args.keep,
        events=args.events,
        rate=args.rate,
        fixed_s=args.fixed_seconds,
        workers=[int(w) for w in args.workers.split(",") if w],
        brokers=("kafka", "tansu") if args.broker == "both" else (args.broker,),
        **({} if args.linger_ms is None else {"linger_ms": args.linger_ms}),
    )
    return _bench_report(format_tables(result), result, args.json)


def _bench_state(settings: Settings, args: argparse.Namespace) -> int:
    from finpulse.streams.tools.bench_state import format_state_table, run_state_bench

    result = run_state_bench(
        settings,
        keep=args.keep,
        customers=args.state_customers,
        rounds=args.state_rounds,
        stores=[s for s in args.state_stores.split(",") if s],
        broker="kafka" if args.broker == "both" else args.broker,
    )
    return _bench_report(format_state_table(result), result, args.json)


def _bench_report(table: str, result: dict[str, Any], as_json: bool) -> int:
    """Print a bench's table (on stderr with ``as_json``, the JSON on stdout); 0 if every
    count reconciled."""
    print(table, file=sys.stderr if as_json else sys.stdout)
    if as_json:
        print(json.dumps(result))
    return 0 if result["reconciled"] else 1


def _console(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "hash-password":
        import getpass

        from finpulse.streams.console.accounts import hash_password

        print(hash_password(getpass.getpass("password: ")))
        return 0
    from finpulse.streams.console.app import run_console

    if not settings.console_accounts:
        print("finpulse: no console accounts (FINPULSE_CONSOLE_ACCOUNTS)", file=sys.stderr)
        return 2
    print(f"console: http://{settings.console_host}:{settings.console_port}/", file=sys.stderr)
    run_console(settings)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="finpulse", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(
        name: str, fn: Callable[[Settings, argparse.Namespace], int], help_: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_)
        p.set_defaults(handler=fn)
        return p

    p = add("schema", _schema, "print the JSON Schemas of the events, or of one of them")
    p.add_argument(
        "name",
        nargs="?",
        choices=["transaction", "interaction", "feedback", "deadletter", "alert", "policy"],
        help="one message, or `policy`: the schema of the policy file (config/policy.yaml)",
    )
    p = add("topics", _topics, "create every topic with explicit partitions (idempotent)")
    p.add_argument("action", choices=["create"])
    add("migrate", _migrate, "create or upgrade the ClickHouse schema (idempotent)")
    p = add("services", _services, "start/stop the local broker and ClickHouse")
    p.add_argument("action", choices=["up", "down"])
    p.add_argument(
        "--broker",
        choices=["tansu", "kafka"],
        default=None,
        help="the local broker (default: FINPULSE_LOCAL_BROKER, else tansu)",
    )
    p = add("worker", _worker, "run a stream-processing worker")
    p.add_argument("--loglevel", default="warning")
    p = add("simulate", _simulate, "produce simulated streams to the broker")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rate", type=float, default=1000.0, help="events per second")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of real time")
    p.add_argument("--speedup", type=float, default=60.0, help="simulated seconds per real second")
    p.add_argument("--truth", type=Path, default=None, help="ground-truth JSONL file")
    p = add("evaluate", _evaluate, "replay a simulator run offline and print the risk figures")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--events", type=int, default=60_000)
    p.add_argument("--customers", type=int, default=3000)
    p.add_argument("--days", type=float, default=7.0, help="simulated days")
    p.add_argument("--warmup", type=int, default=10_000, help="events before figures count")
    p.add_argument("--json", action="store_true", help="one JSON object on one line")
    p = add("demo", _demo, "run the whole pipeline on the local stack for a bounded time")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of simulation")
    p.add_argument("--rate", type=float, default=1000.0, help="events per second")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--speedup",
        type=float,
        default=8640.0,
        help="simulated seconds per real second (8640: a minute of demo shows six days)",
    )
    p.add_argument("--json", action="store_true", help="end with one JSON summary line")
    p = add(
        "evaluate-service",
        _evaluate_service,
        "replay simulator runs offline and print the service figures (outage detection, "
        "SLA false alarms, satisfaction MAE, friction)",
    )
    p.add_argument("--seed", type=int, nargs="+", default=[1])
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--span", type=float, default=172_800.0, help="simulated seconds")
    p.add_argument("--customers", type=int, default=2000)
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument(
        "--without-risk-scoring",
        action="store_true",
        help="skip the risk stage: same SLA figures, several times faster; friction and "
        "satisfaction figures are not the worker's",
    )
    p.add_argument("--json", action="store_true", help="one JSON line")
    p = add("grafana", _grafana, "build the Grafana/compose files, or publish them to Grafana")
    p.add_argument("action", choices=["build", "publish"])
    p.add_argument("--url", default=None, help="Grafana base URL (publish)")
    p.add_argument("--root", type=Path, default=None, help="checkout to write into (build)")
    p = add("board", _board, "render every board from ClickHouse into one HTML file")
    p.add_argument("--html", type=Path, required=True, help="output file")
    p.add_argument("--range-s", type=int, default=None, help="time range in seconds")
    p = add("status", _status, "latest consumer lag per worker, topic and partition")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.add_argument(
        "--within-s", type=float, default=300.0, help="rows written in the last S seconds"
    )
    p = add("reports", _reports, "export one CST day's regulatory reports from the register")
    p.add_argument("kind", choices=["large-value"], help="large-value: PBoC Order 2016 No. 3")
    p.add_argument("--day", type=_day, required=True, help="the CST day, YYYY-MM-DD")
    p.add_argument("--format", choices=["csv", "json"], default="csv")
    p = add("console", _console, "serve the alert console, or hash a console password")
    p.add_argument("action", nargs="?", choices=["serve", "hash-password"], default="serve")
    add("config", _config, "print the effective settings (secrets masked)")
    p = add("bench", _bench, "end-to-end throughput/latency/memory on a fresh local stack")
    p.add_argument("--events", type=int, default=50_000, help="events per saturation phase")
    p.add_argument("--rate", type=float, default=1000.0, help="offered load of the fixed phase")
    p.add_argument("--fixed-seconds", type=float, default=60.0, help="length of the fixed phase")
    p.add_argument("--workers", default="1,2", help="worker counts of the saturation phases")
    p.add_argument(
        "--linger-ms",
        type=float,
        default=None,
        help="the load producer's linger.ms (default: 5 on Kafka, as Kafka's own; 50 on Tansu)",
    )
    p.add_argument(
        "--broker",
        choices=["tansu", "kafka", "both"],
        default="tansu",
        help="the broker of every phase; both = Kafka then Tansu in one run, side by side",
    )
    p.add_argument(
        "--state-customers",
        type=int,
        default=0,
        help="instead of the phases above, the state phase: this many distinct customers on "
        "RocksDB and in memory, alternating (docs/benchmarks.md)",
    )
    p.add_argument("--state-rounds", type=int, default=1, help="runs per store of the state phase")
    p.add_argument(
        "--state-stores", default="rocksdb,memory", help="the stores of the state phase, in turn"
    )
    p.add_argument("--keep", action="store_true", help="keep the bench folder (logs)")
    p.add_argument("--json", action="store_true", help="print one JSON object (table on stderr)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings = Settings()
    from finpulse.streams.local.stack import StackError

    try:
        return int(args.handler(settings, args))
    except StackError as exc:
        print(f"finpulse: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
