"""The Faust app factory: ``build_app(settings)`` returns a configured app with its agents.

Nothing is created at import; tests build their own app per test.

**Batches overlap.** An ingest agent goes on taking and processing batches (CPU) while the
earlier ones are still being stored and published (I/O: ClickHouse inserts in threads,
broker acks): up to ``stream_unstored_events_max`` events per agent. The three agents hand their
processed batches to one :class:`finpulse.streams.worker.committer.Committer`, which stores all
that gathered during the previous flush with one insert per table. A batch's alerts and dead
letters are published as soon as it is processed (they wait for no insert).

**Bulk intake.** The agents take their topic's messages in lists from
:mod:`finpulse.streams.worker.intake`, beneath Faust's per-message conductor and stream path (which
cost much more of the event loop per event at saturation; docs/benchmarks.md). A taken message
holds one reference, released only after the batch's rows are stored and its messages
acknowledged by the broker; offsets therefore still commit only after delivery
(at-least-once).

**Consumer lag.** Every ``lag_interval_s`` a timer writes one ``consumer_lag`` row per
assigned input partition through the same committer (:mod:`finpulse.streams.worker.lag`).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

import faust
from faust.types import TP

from finpulse.config.policy import load_policy
from finpulse.config.settings import Settings
from finpulse.models.report_calendar import WorkingDayCalendar
from finpulse.sinks.checkpoints import ClickHouseCheckpoints
from finpulse.streams.core.aiokafka_options import aiokafka_options
from finpulse.streams.core.batch import Outgoing, Stage, StateFactory
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.state_codec import StateCodec
from finpulse.streams.core.topics import CONSUMED_TOPICS, INPUT_TOPICS
from finpulse.streams.stages import model_health
from finpulse.streams.stages.alerting import STATE_NAME, AlertStage, AlertState
from finpulse.streams.stages.risk import risk_stages
from finpulse.streams.stages.rules import RuleEngine, RuleStage
from finpulse.streams.stages.service.stage import service_stages
from finpulse.streams.worker import commit_log
from finpulse.streams.worker.batch_publish import publish_batched
from finpulse.streams.worker.contiguity import Contiguity
from finpulse.streams.worker.faust_adapter import (
    FinpulseApp,
    aiokafka_producer,
    committed_offset,
    held_offsets,
    listed_end_offsets,
    recovery_seconds,
    skipped_offsets,
)
from finpulse.streams.worker.gc_pauses import GcPauses
from finpulse.streams.worker.intake import acknowledger
from finpulse.streams.worker.lag import KIND as LAG_KIND
from finpulse.streams.worker.lag import LagMonitor, default_worker_id, with_timeout
from finpulse.streams.worker.learning_feed import LearningFeed
from finpulse.streams.worker.notifier import add_notifier_agent
from finpulse.streams.worker.pipeline import Pipeline
from finpulse.streams.worker.runtime import Runtime
from finpulse.streams.worker.silence_feed import SilenceFeed
from finpulse.streams.worker.startup import StartupClock
from finpulse.streams.worker.table_state import FaustTableState
from finpulse.streams.worker.table_store import (
    rocksdb_options,
    store_entries,
    table_entries,
    table_store,
)

log = logging.getLogger(__name__)


def broker_credentials(settings: Settings) -> Any:
    """Faust credentials for TLS and/or SASL, or ``None`` for PLAINTEXT."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = None
    if protocol in ("SSL", "SASL_SSL"):
        cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        context = ssl.create_default_context(cafile=cafile)
    if protocol.startswith("SASL"):
        password = settings.kafka_sasl_password
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=password.get_secret_value() if password else None,
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=context,
        )
    return faust.SSLCredentials(context)


def default_stages(settings: Settings, state: StateFactory) -> Sequence[Stage]:
    """The stages of a finpulse worker, in order (alerting last): the one place the
    stage list is assembled, for the live worker and for offline replay alike.

    >>> from finpulse.streams.core.state import MemoryState
    >>> [s.name for s in default_stages(Settings(restore_model_checkpoints=False), MemoryState)]
    ['risk', 'service', 'channel_level', 'model_health', 'rules', 'service_context', 'alerting']
    """
    policy = load_policy(settings.policy_path)
    engine = RuleEngine(policy, WorkingDayCalendar.from_file(settings.holidays_file))
    # one checkpoint store for every online model
    store = ClickHouseCheckpoints(settings) if settings.restore_model_checkpoints else None
    service, channel_level, service_context = service_stages(settings, state, engine, store)
    return (
        *risk_stages(settings, state, engine, store),
        service,
        channel_level,
        model_health.ModelHealthStage(
            settings, policy, state(model_health.STATE_NAME, model_health.ModelHealthRecord)
        ),
        RuleStage(engine),
        service_context,
        AlertStage(policy, state(STATE_NAME, AlertState)),
    )


def build_app(settings: Settings, startup: StartupClock | None = None) -> faust.App:
    """A Faust app consuming the three input topics and the internal ones (at-least-once,
    batched); ``startup`` notes its start-up milestones (:mod:`.startup`, in the stats).

    >>> app = build_app(Settings())
    >>> sorted(a.split(".")[-1] for a in app.agents)  # doctest: +NORMALIZE_WHITESPACE
    ['channel_minute', 'feedback', 'interaction', 'model_detection', 'model_input_minute',
     'transaction']
    """
    startup = startup or StartupClock()
    app = FinpulseApp(
        settings.app_id,
        kafka_options=aiokafka_options(settings),
        fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
        intake_buffer_max=settings.stream_intake_buffer_max,
        startup=startup,
        broker=settings.broker_url,
        broker_credentials=broker_credentials(settings),
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_heartbeat_interval=settings.broker_heartbeat_interval_s,
        broker_rebalance_timeout=settings.broker_rebalance_timeout_s,
        producer_acks=-1,
        producer_linger=settings.producer_linger_s,
        producer_max_batch_size=settings.producer_max_batch_bytes,
        producer_compression_type=settings.producer_compression,
        web_port=settings.web_port,
        web_bind="127.0.0.1",
        web_enabled=False,
        store=f"{settings.state_store}://",
        datadir=str(settings.state_dir or settings.data_dir / "state"),
        table_cleanup_interval=30.0,
    )

    async def publish(messages: Sequence[Outgoing]) -> dict[tuple[str, int], int]:
        # aiokafka's producer under Faust's, in record batches
        # (finpulse.streams.worker.batch_publish); the offset of the last message per
        # (topic, partition): state records go to local stores with it
        return await publish_batched(aiokafka_producer(app), messages)

    tables: dict[str, FaustTableState] = {}

    def faust_state(name: str, value_type: Any = Any) -> FaustTableState:
        if name not in tables:
            # Keys are JSON (Faust's default); values are restored as bytes and decoded by
            # the state codec (finpulse.streams.core.state_codec) on first read.
            table = app.Table(
                name,
                default=None,
                partitions=settings.topic_partitions,
                value_type=bytes,
                options=rocksdb_options(settings),
            )
            store = table_store(table, settings.state_cache_keys)
            tables[name] = FaustTableState(table, StateCodec(name, value_type), store)
        return tables[name]

    pipeline = Pipeline(settings, default_stages, state=faust_state, learn_in_process=False)
    commits = app.Table(
        commit_log.TABLE_NAME,
        default=None,
        partitions=settings.topic_partitions,
        key_type=bytes,  # raw bytes both ways: the log entries are our own framing
        value_type=bytes,
        options=rocksdb_options(settings),
    )

    @commits.on_recover
    async def _redo_last_commits() -> None:
        # Faust has restored every table; complete a commit a crash cut short.
        targets = {t.table.changelog_topic.get_topic_name(): t for t in tables.values()}
        for t in tables.values():
            t.forget()  # partitions may have moved: cached records may be stale
        assigned = {tp.partition for tp in app.consumer.assignment() if tp.topic in INPUT_TOPICS}
        applied = commit_log.redo(table_entries(commits), assigned, targets)
        recovery_s = recovery_seconds(app) or 0.0
        runtime.recovery_s = round(recovery_s, 2)
        startup.mark_at("recovery_started", time.time() - recovery_s)
        startup.mark("recovered")
        log.info(
            "recovered partitions %s in %.2f s; %d records redone",
            sorted(assigned),
            runtime.recovery_s,
            applied,
        )

    def applied_positions(partitions: Iterable[TP]) -> dict[TP, int]:
        positions = {}
        for tp in partitions:
            kind = CONSUMED_TOPICS.get(tp.topic)
            offset = None if kind is None else pipeline.next_offset(kind, tp.partition)
            if offset is not None:
                positions[tp] = offset
        return positions

    app.applied_positions = applied_positions

    runtime = Runtime(
        settings,
        publish,
        pipeline,
        commit_log_topic=commits.changelog_topic.get_topic_name(),
        log_stored=lambda entries, offsets: store_entries(commits, entries, offsets),
        startup=startup,
    )
    runtime.gc_pauses = GcPauses().install()
    lag = LagMonitor(
        settings.worker_id or default_worker_id(),
        app.bulk_intake.buffers,  # type: ignore[attr-defined]
        lambda: (runtime.processed + runtime.deadlettered, runtime.deadlettered),
    )
    for topic_name, kind in CONSUMED_TOPICS.items():
        _add_ingest_agent(app, settings, runtime, lag, topic_name, kind)
    notifier = add_notifier_agent(app, settings, runtime)
    _add_silence_feed(app, settings, pipeline)
    _add_learning_feeds(app, settings, runtime)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]  # mode's signal typing
    async def _close(app: faust.App, **_: Any) -> None:
        if settings.stats_path is not None:
            runtime.write_stats(settings.stats_path)
        await runtime.close()
        if notifier is not None:
            await notifier.close()

    if settings.stats_path is not None:
        stats_path = settings.stats_path

        @app.timer(settings.stats_interval_s, name="finpulse.stats")
        async def _write_stats() -> None:
            runtime.write_stats(stats_path)

    @app.timer(settings.lag_interval_s, name="finpulse.lag")
    async def _record_lag() -> None:
        await _write_lag(app, runtime, lag, settings.lag_interval_s)

    return app


def _add_silence_feed(app: faust.App, settings: Settings, pipeline: Pipeline) -> None:
    """Every worker follows the console's silences (finpulse.streams.worker.silence_feed)."""
    [alerting] = [s for s in pipeline.stages if isinstance(s, AlertStage)]
    feed = SilenceFeed(settings, alerting.silences)

    @app.task
    async def _follow_silences() -> None:
        await feed.run()


def _add_learning_feeds(app: faust.App, settings: Settings, runtime: Runtime) -> None:
    """Every worker learns each model's whole learning stream
    (finpulse.streams.worker.learning_feed), once the models are restored; its first batch
    waits until they have learned it to its end."""

    def submit(out: Any) -> None:
        done = runtime.committer.submit("learning", out, acknowledge=lambda: None)
        # a failed commit fails the ingest agents, which report it; nothing to add here
        done.add_done_callback(lambda f: f.cancelled() or f.exception())

    for stage in runtime.pipeline.learners.values():
        feed = LearningFeed(settings, stage, submit, runtime.restore_models)
        app.task(feed.run)
        runtime.catch_ups.append(feed.caught_up.wait)
        runtime.learning_losses[stage.learning_topic] = feed.counts


async def _write_lag(app: faust.App, runtime: Runtime, lag: LagMonitor, timeout_s: float) -> None:
    """One ``consumer_lag`` row per assigned input partition, through the committer (no
    input to acknowledge; the timer does not wait for the commit)."""
    consumer = app.consumer
    try:
        assigned = [tp for tp in consumer.assignment() if tp.topic in INPUT_TOPICS]
    except Exception:  # the consumer has not started yet
        return
    ends = None
    if assigned:
        ends = await with_timeout(listed_end_offsets(consumer, assigned), timeout_s, "ListOffsets")

    def high_watermark(tp: Any) -> int | None:
        try:
            high = consumer.highwater(tp)
        except Exception:  # revoked meanwhile
            return None
        return None if high is None else int(high)

    rows = lag.rows(assigned, app.consumer_generation_id, high_watermark, ends or {})
    if rows:
        done = runtime.committer.submit(LAG_KIND, lag.batch(rows), acknowledge=lambda: None)
        # a failed commit fails the ingest agents, which report it; nothing to add here
        done.add_done_callback(lambda f: f.cancelled() or f.exception())


def _raw_records(messages: Sequence[Any]) -> list[RawRecord]:
    return [RawRecord(m.topic, m.partition, m.offset, m.value, m.key, m) for m in messages]


def _add_ingest_agent(
    app: faust.App,
    settings: Settings,
    runtime: Runtime,
    lag: LagMonitor,
    topic_name: str,
    kind: str,
) -> None:
    topic = app.topic(
        topic_name,
        value_serializer="raw",
        key_serializer="raw",
        partitions=settings.topic_partitions,
    )

    intake = app.bulk_intake.subscribe(app, topic)  # type: ignore[attr-defined]

    async def ingest(stream: faust.StreamT) -> None:
        # The stream stays empty: the topic's messages come in lists from the bulk intake.
        in_flight: deque[tuple[asyncio.Future[None], int]] = deque()  # (stored, events)
        unstored = 0
        consumer = app.consumer
        contiguity = Contiguity(
            topic_name,
            lambda partition: runtime.pipeline.next_offset(kind, partition),
            lambda partition: committed_offset(consumer, TP(topic_name, partition)) or 0,
            lambda starts: held_offsets(consumer, starts),
            consumer.seek,
            app.bulk_intake.release(consumer),  # type: ignore[attr-defined]
            lambda: app.consumer_generation_id,
            runtime.holes,
            skipped_offsets(consumer),
        )
        await runtime.ready()  # models restored and learned up to now, once, before any batch
        try:
            while True:
                taken = await intake.take(
                    settings.stream_batch_max, settings.stream_batch_within_s, consumer
                )
                messages = await contiguity.admit(taken)  # no hole after the applied offset
                if not messages:
                    continue
                started = time.perf_counter()
                runtime.note_arrival(messages[0].timestamp)
                out = runtime.process(kind, _raw_records(messages))
                ack = acknowledger(messages, consumer)
                stored = runtime.committer.submit(
                    kind, out, _committed(runtime, lag, messages, ack, started)
                )
                in_flight.append((stored, len(messages)))
                unstored += len(messages)
                while in_flight and (
                    in_flight[0][0].done() or unstored > settings.stream_unstored_events_max
                ):
                    # Backpressure: a slow sink stops the intake. A failed flush fails the agent.
                    done, n = in_flight.popleft()
                    await done
                    unstored -= n
        finally:
            for job, _ in in_flight:
                job.cancel()  # not acked: re-delivered, absorbed by idempotent writes

    app.agent(topic, name=f"finpulse.ingest.{kind}")(ingest)


def _committed(
    runtime: Runtime, lag: LagMonitor, messages: Sequence[Any], ack: Any, taken: float
) -> Any:
    """The acknowledgement of a batch: its offsets, then its progress and time for the lag."""

    def acknowledge() -> None:
        ack()
        lag.note_processed(messages)
        ms = (time.perf_counter() - taken) * 1000
        runtime.record("batch_ms", ms)
        lag.note_batch_ms(ms)

    return acknowledge
