"""Real Apache Kafka (finpulse.streams.local.kafka): clients, Faust, SASL/PLAIN, compression,
restart.

One broker for the module (2 cores: never two JVMs at once), fetched with Maven on the first
run (~10 s, cached in ``FINPULSE_KAFKA_CACHE_DIR`` or ~/.cache/finpulse). Group clients use
the production timeouts (session 10 s, heartbeat 3 s), which real Kafka requires.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from finpulse.config.settings import Settings
from finpulse.streams.local.kafka import KafkaBroker, fetch_kafka
from finpulse.streams.local.stack import LocalStack, free_port

pytestmark = pytest.mark.integration

USER, PASSWORD = "finpulse", "s3cret-pw"
SESSION_MS, HEARTBEAT_MS = 10_000, 3_000
SASL = {
    "security_protocol": "SASL_PLAINTEXT",
    "sasl_mechanism": "PLAIN",
    "sasl_plain_username": USER,
    "sasl_plain_password": PASSWORD,
}


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    libs = fetch_kafka(cache_dir=Settings().kafka_cache_dir)
    broker = KafkaBroker(
        tmp_path_factory.mktemp("kafka"), libs, port=free_port(), sasl_users={USER: PASSWORD}
    )
    broker.start()
    yield broker
    broker.stop()


def create_topic(bootstrap: str, name: str, partitions: int = 2, **security: str) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, **security)
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()


def produce(bootstrap: str, topic: str, count: int, **security: str) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, **security)
    for i in range(count):
        producer.send(topic, f"m{i}".encode())
    producer.flush()
    producer.close()


def group_consume(
    bootstrap: str, topic: str, group: str, count: int, **security: str
) -> tuple[list[bytes], float]:
    """``count`` values read by a consumer group, and seconds until its first message."""
    from kafka import KafkaConsumer

    started = time.monotonic()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        session_timeout_ms=SESSION_MS,
        heartbeat_interval_ms=HEARTBEAT_MS,
        consumer_timeout_ms=20_000,
        **security,
    )
    values: list[bytes] = []
    first = float("nan")
    try:
        for record in consumer:
            if not values:
                first = time.monotonic() - started
            values.append(record.value)
            if len(values) == count:
                break
        consumer.commit()
    finally:
        consumer.close()
    return values, first


def test_group_gets_first_message_fast_with_production_timeouts(kafka: KafkaBroker) -> None:
    create_topic(kafka.bootstrap, "plain")
    produce(kafka.bootstrap, "plain", 100)
    values, first_s = group_consume(kafka.bootstrap, "plain", "g-plain", 100)
    assert sorted(values) == sorted(f"m{i}".encode() for i in range(100))
    assert first_s < 5.0  # group.initial.rebalance.delay.ms=0; measured ~0.2 s


def test_aiokafka_production_timeouts_and_short_sessions_refused(kafka: KafkaBroker) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.errors import InvalidSessionTimeoutError

    create_topic(kafka.bootstrap, "aio")

    async def run() -> float:
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, enable_idempotence=True)
        await producer.start()
        try:
            await producer.send_and_wait("aio", b"hello")
        finally:
            await producer.stop()
        started = time.monotonic()
        consumer = AIOKafkaConsumer(
            "aio",
            bootstrap_servers=kafka.bootstrap,
            group_id="g-aio",
            auto_offset_reset="earliest",
            session_timeout_ms=SESSION_MS,
            heartbeat_interval_ms=HEARTBEAT_MS,
        )
        await consumer.start()
        try:
            record = await asyncio.wait_for(consumer.getone(), 20)
        finally:
            await consumer.stop()
        assert record.value == b"hello"
        elapsed = time.monotonic() - started
        # Tansu's short sessions are below group.min.session.timeout.ms (6 s): refused
        short = AIOKafkaConsumer(
            "aio",
            bootstrap_servers=kafka.bootstrap,
            group_id="g-aio-short",
            session_timeout_ms=2000,
            heartbeat_interval_ms=500,
        )
        try:
            with pytest.raises(InvalidSessionTimeoutError):  # start() joins the group
                await short.start()
        finally:
            await short.stop()
        return elapsed

    assert asyncio.run(run()) < 5.0


FAUST_APP = """
import os, sys, time, faust
started = time.monotonic()
bootstrap, topic, count, web_port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
app = faust.App(
    "faust-" + topic, broker="kafka://" + bootstrap, topic_partitions=2, web_port=web_port,
    broker_session_timeout=10, broker_heartbeat_interval=3, broker_rebalance_timeout=60,
    consumer_auto_offset_reset="earliest", value_serializer="raw", store="memory://",
)
seen = []

@app.agent(app.topic(topic, partitions=2))
async def agent(stream):
    async for value in stream:
        seen.append(value)
        if len(seen) == 1:
            print(f"FIRST {time.monotonic() - started:.3f}", flush=True)
        if len(seen) == count:
            print(f"DONE {len(set(seen))}", flush=True)
            os._exit(0)

faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()
"""


def test_faust_worker_consumes_with_production_timeouts(kafka: KafkaBroker, tmp_path: Path) -> None:
    create_topic(kafka.bootstrap, "faust-in")
    produce(kafka.bootstrap, "faust-in", 500)
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(FAUST_APP))
    argv = [sys.executable, str(script), kafka.bootstrap, "faust-in", "500", str(free_port())]
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "DONE 500" in done.stdout + done.stderr  # Faust logs what the app prints


def test_sasl_plain_listener_authenticates_kafka_python_and_aiokafka(kafka: KafkaBroker) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.errors import KafkaConnectionError

    sasl = kafka.sasl_bootstrap
    assert sasl is not None
    create_topic(sasl, "secured", **SASL)
    produce(sasl, "secured", 10, **SASL)
    values, _ = group_consume(sasl, "secured", "g-sasl", 10, **SASL)
    assert len(values) == 10

    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=sasl, **SASL)
        await producer.start()
        try:
            await producer.send_and_wait("secured", b"aio")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            "secured",
            bootstrap_servers=sasl,
            group_id="g-sasl-aio",
            auto_offset_reset="earliest",
            session_timeout_ms=SESSION_MS,
            heartbeat_interval_ms=HEARTBEAT_MS,
            **SASL,
        )
        await consumer.start()
        try:
            assert (await asyncio.wait_for(consumer.getone(), 20)).value is not None
        finally:
            await consumer.stop()
        wrong = AIOKafkaProducer(bootstrap_servers=sasl, **{**SASL, "sasl_plain_password": "no"})
        with pytest.raises(KafkaConnectionError):  # logs SaslAuthenticationFailed
            await wrong.start()
        await wrong.stop()

    asyncio.run(run())


@pytest.mark.parametrize("codec", ["gzip", "lz4", "zstd"])
def test_compressed_batches_round_trip(kafka: KafkaBroker, codec: str) -> None:
    """The broker validates compressed batches with its native libraries (unpacked in root/tmp)."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    topic = f"codec-{codec}"
    create_topic(kafka.bootstrap, topic, partitions=1)

    async def run() -> list[bytes]:
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, compression_type=codec)
        await producer.start()
        try:
            batch = [producer.send(topic, b'{"amount": %d}' % i) for i in range(200)]
            await asyncio.gather(*[await f for f in batch])
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap)
        await consumer.start()
        try:
            tp = TopicPartition(topic, 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            assert (await consumer.end_offsets([tp]))[tp] == 200  # real Kafka: correct
            got: list[bytes] = []
            while len(got) < 200:
                batches = await consumer.getmany(tp, timeout_ms=5000)
                assert batches, "no records"
                got.extend(r.value for r in batches[tp] if r.value is not None)
            return got
        finally:
            await consumer.stop()

    assert asyncio.run(run())[-1] == b'{"amount": 199}'


def test_restart_keeps_topics_records_and_committed_offsets(kafka: KafkaBroker) -> None:
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    create_topic(kafka.bootstrap, "durable")
    produce(kafka.bootstrap, "durable", 50)
    group_consume(kafka.bootstrap, "durable", "g-durable", 50)
    cluster = (kafka.log_dir / "meta.properties").read_text()

    kafka.stop()
    assert kafka.pid is None
    kafka.start()
    assert kafka.formatted_now is False
    assert (kafka.log_dir / "meta.properties").read_text() == cluster

    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    try:
        assert {"plain", "durable", "secured"} <= set(admin.list_topics())
    finally:
        admin.close()
    consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap)
    try:
        partitions = [TopicPartition("durable", p) for p in range(2)]
        assert sum(consumer.end_offsets(partitions).values()) == 50
    finally:
        consumer.close()
    # the group resumes at its committed offsets: new records only
    produce(kafka.bootstrap, "durable", 5)
    values, _ = group_consume(kafka.bootstrap, "durable", "g-durable", 5)
    assert sorted(values) == sorted(f"m{i}".encode() for i in range(5))


def test_a_finpulse_worker_runs_over_sasl_plain_with_its_settings(
    kafka: KafkaBroker, clickhouse: LocalStack, tmp_path: Path
) -> None:
    """The FINPULSE_KAFKA_SASL_* settings, end to end on the real broker: topics created,
    events consumed and stored, all over the SASL listener (a wrong password is refused:
    the test above)."""
    from finpulse.config.settings import local_stack_settings
    from finpulse.sinks.clickhouse import make_client
    from finpulse.sinks.migrate import migrate
    from finpulse.streams.core.topics import TRANSACTIONS, create_topics
    from finpulse.streams.tools.reconcile import wait_reconciled
    from finpulse.streams.worker.process import WorkerProcess
    from tests import factories as f

    assert kafka.sasl_bootstrap is not None
    settings = local_stack_settings(
        local_broker="kafka",
        data_dir=tmp_path,
        broker_url=f"kafka://{kafka.sasl_bootstrap}",
        clickhouse_url=clickhouse.clickhouse_url,
        clickhouse_database=f"sasl_{int(time.time())}",
        topic_partitions=2,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username=USER,
        kafka_sasl_password=PASSWORD,
        web_port=free_port(),
    )
    create_topics(settings)
    migrate(settings)
    worker = WorkerProcess(settings, name="sasl").start()
    client = make_client(settings)
    try:
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=kafka.sasl_bootstrap, **SASL)
        for _ in range(200):
            producer.send(TRANSACTIONS, f.encode(f.transaction()))
        producer.flush()
        producer.close()
        result = wait_reconciled(client, settings.clickhouse_database, 200, timeout_s=90)
        assert result.ok, result.issues()
        assert worker.alive()
    finally:
        client.close()
        worker.stop(timeout_s=10)
