"""``finpulse demo``: the whole pipeline on the local embedded stack, for a bounded time.

Starts the broker and ClickHouse, creates topics, migrates, runs one worker and the
simulator, prints live progress, waits until every produced event is accounted for,
stops everything and prints a summary (the last line is JSON with ``--json``).
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from typing import Any

from finpulse.config.boards.html import write_board_html
from finpulse.config.settings import LOCAL_GROUP_TIMEOUTS, ConsoleAccount, Settings
from finpulse.sinks.clickhouse import count_rows, make_client
from finpulse.sinks.migrate import migrate
from finpulse.sinks.tables import DEADLETTERS_TABLE, EVENT_TABLES
from finpulse.streams.core.topics import create_topics
from finpulse.streams.local.stack import LocalStack
from finpulse.streams.tools.alert_feed import AlertFeed
from finpulse.streams.worker.process import WorkerProcess

DRAIN_TIMEOUT_S = 120.0
DEMO_ANALYST = "demo-analyst"


def with_demo_analyst(settings: Settings) -> tuple[Settings, str]:
    """``settings`` with a console account for the demo analyst and its fresh password."""
    import secrets

    from finpulse.streams.console.accounts import hash_password

    password = secrets.token_urlsafe(12)
    account = ConsoleAccount(role="analyst", password_hash=hash_password(password))  # type: ignore[arg-type]
    accounts = {**settings.console_accounts, DEMO_ANALYST: account}
    return settings.model_copy(update={"console_accounts": accounts}), password


def demo_settings(settings: Settings) -> Settings:
    """The user's settings pointed at the local stack, with its broker's group timeouts."""
    return settings.model_copy(
        update={
            "broker_url": f"kafka://127.0.0.1:{settings.local_broker_port}",
            "clickhouse_url": f"http://127.0.0.1:{settings.local_clickhouse_http_port}",
            **LOCAL_GROUP_TIMEOUTS[settings.local_broker],
        }
    )


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_demo(
    settings: Settings,
    duration_s: float,
    rate: float,
    seed: int,
    as_json: bool = False,
    speedup: float = 8640.0,
) -> dict[str, Any]:
    """Run the demo and return (and print) its summary."""
    from finpulse.streams.simulator import run_simulation

    settings, password = with_demo_analyst(demo_settings(settings))
    root = settings.data_dir.resolve()
    # The broker keeps records in memory, so ClickHouse starts empty too: counts must match.
    shutil.rmtree(root / "clickhouse", ignore_errors=True)
    shutil.rmtree(root / "kafka", ignore_errors=True)  # Kafka's log is on disk: start it empty
    tables = [t.name for t in EVENT_TABLES.values()]
    stack = LocalStack(settings)
    worker = WorkerProcess(settings)
    console = WorkerProcess(settings, name="console", command=("console",))
    started = time.monotonic()
    sim_result: dict[str, Any] = {}
    feed: AlertFeed | None = None
    try:
        _say(f"starting broker on {stack.broker_url} and ClickHouse on {stack.clickhouse_url}")
        stack.start()
        create_topics(settings)
        migrate(settings)
        worker.start()
        console.start()
        _say(
            f"console: http://{settings.console_host}:{settings.console_port}/ "
            f"(log in as {DEMO_ANALYST} / {password}; up while the demo runs)"
        )
        client = make_client(settings)
        feed = AlertFeed(settings, _say).start()

        def simulate() -> None:
            try:
                sim_result.update(
                    run_simulation(
                        settings,
                        seed=seed,
                        rate=rate,
                        duration_s=duration_s,
                        truth_path=root / "ground_truth.jsonl",
                        speedup=speedup,
                        on_progress=lambda s: sim_result.update(live=s),
                    )
                )
            except BaseException as exc:  # surfaced by the main loop below
                sim_result["error"] = exc
                raise

        sim = threading.Thread(target=simulate, name="simulator", daemon=True)
        sim.start()
        _say(
            f"simulating {rate:.0f} events/s for {duration_s:.0f}s (seed {seed}); "
            f"worker log {worker.log_path}"
        )
        last_rows, last_t = 0, time.monotonic()
        drain_deadline = None
        while True:
            time.sleep(1.0)
            counts = count_rows(
                client, settings.clickhouse_database, [*tables, DEADLETTERS_TABLE.name]
            )
            rows = sum(counts[t] for t in tables)
            dead = counts[DEADLETTERS_TABLE.name]
            now = time.monotonic()
            produced = sim_result.get("produced", sim_result.get("live", {}).get("produced", 0))
            rate_now = (rows + dead - last_rows) / max(now - last_t, 1e-9)
            last_rows, last_t = rows + dead, now
            _say(
                f"  t={now - started:5.0f}s produced={produced:>7} rows={rows:>7} "
                f"deadletters={dead:>5} ({rate_now:,.0f} events/s)"
            )
            if not worker.alive():
                raise RuntimeError(f"worker died; see {worker.log_path}")
            if "error" in sim_result:
                raise RuntimeError(f"simulator failed: {sim_result['error']!r}")
            if not sim.is_alive():
                drain_deadline = drain_deadline or now + DRAIN_TIMEOUT_S
                if rows + dead >= sim_result.get("produced", 0) or now > drain_deadline:
                    break
        stats = worker.wait_for(
            lambda s: s["processed"] + s["deadletters"] >= rows + dead,
            timeout_s=10,
            what="final counters",
        )
        summary = {
            "produced": sim_result.get("produced", 0),
            "malformed": sim_result.get("malformed", 0),
            "processed": stats["processed"],
            "deadletters": stats["deadletters"],
            "clickhouse_rows": rows,
            "clickhouse_deadletters": dead,
            "alerts_published": stats.get("alerts_published", 0),
            "alerts_by_rule": dict(feed.by_rule.most_common()),
            "alerts_by_severity": dict(feed.by_severity),
            "wall_s": round(time.monotonic() - started, 1),
        }
        summary["ok"] = summary["produced"] > 0 and (
            summary["processed"] == summary["produced"] - summary["malformed"]
            and summary["deadletters"] == summary["malformed"]
            and summary["clickhouse_rows"] == summary["processed"]
        )
        client.close()
        summary["board_html"] = str(write_board_html(settings, root / "board.html"))
        _say(f"boards without Grafana: {summary['board_html']}")
    finally:
        if feed is not None:
            feed.stop()
        console.stop()
        worker.stop()
        stack.stop()
    _say("summary: " + ", ".join(f"{k}={v}" for k, v in summary.items()))
    if as_json:
        print(json.dumps(summary))
    return summary
