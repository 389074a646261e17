"""The worker's seam with Faust and aiokafka internals (finpulse.streams.worker.faust_adapter).

The first test pins the upstream code the adapter relies on: a faust-streaming or aiokafka
upgrade that changes any of it fails here, naming what to re-read, instead of quietly
changing delivery. The others check the adapter's behaviour on the pinned versions.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiokafka
import aiokafka.client
import faust
import pytest
from aiokafka.consumer import fetcher as aiokafka_fetcher
from faust.assignor.partition_assignor import PartitionAssignor
from faust.stores import memory as faust_memory
from faust.stores import rocksdb as faust_rocksdb
from faust.tables import manager as faust_tables
from faust.tables import recovery as faust_recovery
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.types.tuples import ConsumerMessage
from mode.threads import QueueServiceThread
from pydantic import SecretStr

from finpulse.config.settings import Settings
from finpulse.streams.core.aiokafka_options import aiokafka_options
from finpulse.streams.core.topics import TRANSACTIONS
from finpulse.streams.worker import faust_adapter
from finpulse.streams.worker.app import build_app

# upstream code -> (sha256 prefix of its source, why the adapter depends on it)
PINNED: dict[str, tuple[Any, str, str]] = {
    "faust rocksdb Store._db_for_partition": (
        faust_rocksdb.Store._db_for_partition,
        "cb7e67d5f9efc4bc",
        "Faust's assignment opens a partition's database into _dbs: the only databases "
        "a commit writes (table_store.writable_databases())",
    ),
    "faust rocksdb Store._get": (
        faust_rocksdb.Store._get,
        "7ae8dfd6d7754a59",
        "within an event reads only that event's partition database, as RocksTableStore.get",
    ),
    "faust memory Store._create_batch_iterator": (
        faust_memory.Store._create_batch_iterator,
        "b082c8bcc0403823",
        "recovery records each key's partition in _key_partition (memory_key_partitions())",
    ),
    "faust memory Store.on_recovery_completed": (
        faust_memory.Store.on_recovery_completed,
        "a00bef343e139602",
        "drops the keys of partitions no longer active, by _key_partition",
    ),
    "faust rocksdb Store._visible_keys": (
        faust_rocksdb.Store._visible_keys,
        "28b3c24a6884cbcd",
        "rocksdb_keys(): a database's keys without the offset key",
    ),
    "faust rocksdb Store.apply_changelog_batch": (
        faust_rocksdb.Store.apply_changelog_batch,
        "ea3344d369fc4ab5",
        "recovery writes raw changelog keys and values per partition, as RocksTableStore.write",
    ),
    "faust rocksdb Store.assign_partitions": (
        faust_rocksdb.Store.assign_partitions,
        "34dc27ace6dd9160",
        "opens the databases of assigned active partitions, standbys left to recovery; "
        "open_rocksdb_partitions() opens the same ahead through _db_for_partition",
    ),
    "faust PartitionAssignor.assigned_standbys": (
        PartitionAssignor.assigned_standbys,
        "c3cff09409143afd",
        "standby_partitions(): databases a commit leaves to recovery; "
        "open_rocksdb_partitions(): the standby partitions Faust opens no database for",
    ),
    "faust rocksdb Store.persisted_offset": (
        faust_rocksdb.Store.persisted_offset,
        "6f2e502fb86043a1",
        "the offset RocksTableStore.write puts under offset_key, read back by recovery",
    ),
    "faust rocksdb Store.revoke_partitions": (
        faust_rocksdb.Store.revoke_partitions,
        "3f85447a24fc34ff",
        "a revoked partition's database leaves _dbs (rocksdb_databases(), kept by the store)",
    ),
    "faust TableManager.on_start": (
        faust_tables.TableManager.on_start,
        "365dd25fbc0e0684",
        "FinpulseTableManager.on_start: the same steps without the 1 s sleep before them",
    ),
    "faust TableManager._update_channels": (
        faust_tables.TableManager._update_channels,
        "88e3941facc934d6",
        "starts every table and sets _tables_registered, which the conductor waits for "
        "before it subscribes (FinpulseTableManager marks tables_registered after it)",
    ),
    "faust Recovery._add": (
        faust_recovery.Recovery._add,
        "1584a197b11bf835",
        "recovery starts a changelog partition after the store's persisted offset",
    ),
    "faust Recovery._set_recovery_started": (
        faust_recovery.Recovery._set_recovery_started,
        "bcfebf81ae13fc75",
        "recovery_seconds(): _recovery_started_at, set as recovery begins reading changelogs",
    ),
    "faust Consumer.getmany": (
        faust_consumer.Consumer.getmany,
        "4b168d84882a70d6",
        "wrapped by _Consumer.getmany: yields (tp, message) per fetched record, and drops "
        "the records of a partition not active when iterated (aiokafka's position already "
        "past them; Faust's seek to the committed offsets fetches them again, and without "
        "one nothing does): why contiguity.py checks each batch for a hole",
    ),
    "faust Consumer._drain_messages": (
        faust_consumer.Consumer._drain_messages,
        "44a2500309e83c63",
        "calls getmany(timeout=...) and does the read-offset/gap bookkeeping _note_read mirrors",
    ),
    "faust Consumer._wait_next_records": (
        faust_consumer.Consumer._wait_next_records,
        "6218e1969a636b3f",
        "extended by _Consumer._wait_next_records: every record aiokafka returned, before "
        "getmany drops any, noted in skipped_offsets",
    ),
    "faust AIOKafkaConsumerThread.seek": (
        faust_aiokafka.AIOKafkaConsumerThread.seek,
        "1498560d05f02582",
        "a way Faust moves a position: _ConsumerThread ends the fetch chains around it",
    ),
    "faust AIOKafkaConsumerThread.seek_wait": (
        faust_aiokafka.AIOKafkaConsumerThread.seek_wait,
        "12e8d34e554e9024",
        "a way Faust moves a position: _ConsumerThread ends the fetch chains around it",
    ),
    "faust AIOKafkaConsumerThread.seek_to_committed": (
        faust_aiokafka.AIOKafkaConsumerThread.seek_to_committed,
        "775ab0adc4b052ab",
        "a way Faust moves a position: _ConsumerThread ends the fetch chains around it",
    ),
    "faust AIOKafkaConsumerThread.seek_to_beginning": (
        faust_aiokafka.AIOKafkaConsumerThread.seek_to_beginning,
        "bd4250b8d1e76d33",
        "a way Faust moves a position: _ConsumerThread ends the fetch chains around it",
    ),
    "aiokafka FetchResult.getall": (
        aiokafka_fetcher.FetchResult.getall,
        "3e717e30de5068d5",
        "records come only from the partition's position on, which moves past each record "
        "and each offset the broker gave none for: the chain skipped_offsets relies on",
    ),
    "aiokafka PartitionRecords._unpack_records": (
        aiokafka_fetcher.PartitionRecords._unpack_records,
        "b803e6d46480732c",
        "control batches (transaction markers) and aborted records are passed over, the "
        "next fetch offset moved past them",
    ),
    "faust Consumer._add_gap": (
        faust_consumer.Consumer._add_gap,
        "4df2573ded7c1c2c",
        "called by _note_read for offsets the broker skipped",
    ),
    "faust Consumer.perform_seek": (
        faust_consumer.Consumer.perform_seek,
        "0e8c130ff4b0afd8",
        "extended by _Consumer.perform_seek: fills _committed_offset, then input partitions move",
    ),
    "faust Consumer.seek": (
        faust_consumer.Consumer.seek,
        "b86a9fe05f956b30",
        "_Consumer.perform_seek moves a partition with it (it also sets the read offset)",
    ),
    "faust Consumer._new_offset": (
        faust_consumer.Consumer._new_offset,
        "1d2c7ea89a7ad4f1",
        "commits only acks contiguous with _committed_offset: why a committed offset behind "
        "the applied position is left alone (positions.py)",
    ),
    "faust AIOKafkaConsumerThread._create_worker_consumer": (
        faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer,
        "c2701bfc3e6f6cad",
        "overridden to set the consumer's fetch wait",
    ),
    "faust AIOKafkaConsumerThread._highwaters": (
        faust_aiokafka.AIOKafkaConsumerThread._highwaters,
        "a7f4f97d9f32aca2",
        "overridden: recovery's end offsets corrected from a fetch response",
    ),
    "faust aiokafka Consumer._new_consumer_thread": (
        faust_aiokafka.Consumer._new_consumer_thread,
        "0870ec53dea75083",
        "overridden to use our consumer thread",
    ),
    "faust aiokafka Producer._ensure_producer": (
        faust_aiokafka.Producer._ensure_producer,
        "5592a4bbdf251325",
        "aiokafka_producer(): the producer batches are published with",
    ),
    "faust App._new_transport": (
        faust.App._new_transport,
        "42db531312dd776f",
        "overridden by FinpulseApp",
    ),
    "faust AIOKafkaConsumerThread._ensure_consumer": (
        faust_aiokafka.AIOKafkaConsumerThread._ensure_consumer,
        "ff4a4c693b7ec63f",
        "listed_end_offsets(): the worker consumer's aiokafka consumer",
    ),
    "mode QueueServiceThread.call_thread": (
        QueueServiceThread.call_thread,
        "479edda75b54734b",
        "listed_end_offsets(): runs end_offsets in the consumer's thread, awaited in ours",
    ),
    "aiokafka AIOKafkaConsumer.end_offsets": (
        aiokafka.AIOKafkaConsumer.end_offsets,
        "f4b19078581881ba",
        "listed_end_offsets(): ListOffsets, the consumer_lag end_offset column",
    ),
    "aiokafka AIOKafkaConsumer.highwater": (
        aiokafka.AIOKafkaConsumer.highwater,
        "044275efc968e286",
        "Faust's consumer.highwater(tp): the consumer_lag high_watermark (fetch responses)",
    ),
    "aiokafka AIOKafkaConsumer.seek_to_committed": (
        aiokafka.AIOKafkaConsumer.seek_to_committed,
        "f6cd85c8b70a4ccf",
        "Faust's seek to the committed offsets seeks no partition without one (or at 0): "
        "records dropped before it are not fetched again, so contiguity.py checks such a "
        "partition from where the group placed it (committed_offset())",
    ),
    "aiokafka AIOKafkaConsumer.start": (
        aiokafka.AIOKafkaConsumer.start,
        "2f1ba70443327538",
        "passes self._fetch_max_wait_ms to its Fetcher",
    ),
    "aiokafka AIOKafkaProducer._partition": (
        aiokafka.AIOKafkaProducer._partition,
        "e45fa9c539d431d1",
        "default_partition(): the partition send() would choose",
    ),
    "aiokafka AIOKafkaClient._wait_on_metadata": (
        aiokafka.client.AIOKafkaClient._wait_on_metadata,
        "52b0a5ee78ef3aa0",
        "wait_on_metadata(): what send() does first",
    ),
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_the_upstream_code_the_adapter_relies_on_is_unchanged(name: str) -> None:
    target, digest, why = PINNED[name]
    actual = hashlib.sha256(inspect.getsource(target).encode()).hexdigest()[:16]
    assert actual == digest, (
        f"{name} changed upstream ({actual} != {digest}); the adapter relies on it: {why}. "
        "Re-read it, adapt streams/worker/faust_adapter.py, then update the digest."
    )


def test_worker_consumer_uses_the_configured_fetch_wait() -> None:
    async def created_wait() -> int:
        app = build_app(Settings(consumer_fetch_max_wait_ms=37))
        consumer = app.consumer  # Faust's Consumer of our transport
        thread = consumer._new_consumer_thread()
        kafka_consumer = thread._create_worker_consumer(app.transport)
        try:
            return int(kafka_consumer._fetch_max_wait_ms)
        finally:
            await kafka_consumer._client.close()

    assert asyncio.run(created_wait()) == 37


def test_consumer_instances_have_the_attributes_the_adapter_reads(tmp_path: Path) -> None:
    app = build_app(Settings(state_store="memory", data_dir=tmp_path))
    consumer = app.consumer
    unacked = faust_adapter.unacked_messages(consumer)
    assert len(unacked) == 0 and callable(unacked.add)  # a (weak) set taken messages join
    assert consumer._read_offset[TP("t", 0)] is None  # a defaultdict of None
    assert consumer._committed_offset.get(TP("t", 0)) is None  # perform_seek's positions
    consumer._committed_offset[TP("t", 1)] = 40  # what perform_seek and commits write
    assert faust_adapter.committed_offset(consumer, TP("t", 0)) is None
    assert faust_adapter.committed_offset(consumer, TP("t", 1)) == 40
    thread = consumer._thread  # listed_end_offsets(): the consumer thread of our transport
    assert type(thread).__name__ == "_ConsumerThread" and callable(thread.call_thread)
    table = app.Table("pinned", default=None, partitions=1)
    assert faust_adapter.memory_store(table) == {}
    assert faust_adapter.memory_key_partitions(table) == {}
    assert not faust_adapter.is_rocksdb(table)


def test_recovery_seconds_count_from_the_start_of_faust_recovery(tmp_path: Path) -> None:
    app = build_app(Settings(state_store="memory", data_dir=tmp_path))
    assert faust_adapter.recovery_seconds(app) is None
    app.tables.recovery._set_recovery_started()
    seconds = faust_adapter.recovery_seconds(app)
    assert seconds is not None and 0 <= seconds < 5


def test_a_rocksdb_table_exposes_its_partition_databases_and_offset_key(tmp_path: Path) -> None:
    app = build_app(Settings(data_dir=tmp_path))
    table = app.Table("pinned", default=None, partitions=2)
    databases = faust_adapter.rocksdb_databases(table)
    assert faust_adapter.is_rocksdb(table) and databases == {}
    assigned = {TP(table.changelog_topic.get_topic_name(), 1)}
    asyncio.run(table.data.on_rebalance(assigned, set(), assigned))
    db = databases[1]  # opened by Faust as the partition is assigned
    db.put(b'"k"', b"v")
    db.put(faust_adapter.rocksdb_offset_key(table), b"41")
    assert databases == {1: db}  # the store's own dict: kept, it follows the assignment
    assert list(faust_adapter.rocksdb_keys(table)) == [(1, b'"k"')]
    assert faust_adapter.standby_partitions(table) == set()
    assert table.data.persisted_offset(TP("app-pinned-changelog", 1)) == 41
    assert (tmp_path / "state").is_dir()
    table.data.revoke_partitions(table, {TP(table.changelog_topic.get_topic_name(), 1)})
    assert databases == {} and faust_adapter.rocksdb_databases(table) is databases


def test_assigned_rocksdb_partitions_open_ahead_in_threads_standbys_left_out(
    tmp_path: Path,
) -> None:
    app = build_app(Settings(data_dir=tmp_path))
    tables = [app.Table(name, default=None, partitions=3) for name in ("a", "b")]
    topics = [t.changelog_topic.get_topic_name() for t in tables]
    assigned = {TP(topic, p) for topic in topics for p in range(3)} | {TP("input", 0)}
    standbys = {TP(topics[1], 2)}

    opened = asyncio.run(faust_adapter.open_rocksdb_partitions(tables, assigned, standbys))
    assert opened == 5
    assert sorted(faust_adapter.rocksdb_databases(tables[0])) == [0, 1, 2]
    assert sorted(faust_adapter.rocksdb_databases(tables[1])) == [0, 1]
    db = faust_adapter.rocksdb_databases(tables[0])[1]
    assert faust_adapter.open_rocksdb_partition(tables[0], 1) is db  # Faust's store finds it open


def test_a_database_that_cannot_open_ahead_is_left_to_fausts_store(
    tmp_path: Path, caplog: Any
) -> None:
    app = build_app(Settings(data_dir=tmp_path))
    table = app.Table("locked", default=None, partitions=2)
    topic = table.changelog_topic.get_topic_name()
    holder = table.data.rocksdb_options.open(table.data.partition_path(0))  # holds its lock
    caplog.set_level("INFO", logger=faust_adapter.__name__)
    try:
        assigned = {TP(topic, 0), TP(topic, 1)}
        opened = asyncio.run(faust_adapter.open_rocksdb_partitions([table], assigned, set()))
    finally:
        holder.close()
    assert opened == 1 and sorted(faust_adapter.rocksdb_databases(table)) == [1]
    assert "locked/0 not opened ahead" in caplog.text


def _consumer(acks: bool = True) -> Any:
    return SimpleNamespace(
        _read_offset={TP("t", 0): None},
        app=SimpleNamespace(topics=SimpleNamespace(acks_enabled_for=lambda topic: acks)),
    )


def test_note_read_records_offsets_and_gaps_and_keeps_the_read_offset_on_a_reread() -> None:
    consumer, tp = _consumer(), TP("t", 0)
    seen, gaps = [], []
    for o in (3, 4, 7, 5, 6, 7, 8):
        if (gap := faust_adapter._note_read(consumer, tp, o)) is not None:
            gaps.append(gap)
        seen.append(consumer._read_offset[tp])
    # 5 and 6 (read again after a seek back) leave the read offset at 7 and add no gap
    assert seen == [3, 4, 7, 7, 7, 7, 8]
    assert gaps == [(5, 7)]  # 5 and 6 were skipped by the broker the first time
    assert faust_adapter._note_read(_consumer(acks=False), tp, 3) is None
    unacked = _consumer(acks=False)
    unacked._read_offset[tp] = 3
    assert faust_adapter._note_read(unacked, tp, 9) is None  # no acks: no gap to commit across


def test_messages_read_again_after_a_seek_back_reach_the_intake(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Faust's seek to the committed offset (10) sets the read offset back; a fetch taken
    before the seek (20-24), read after it, sets it forward again. What the seek fetches
    again (10-24) must still reach the intake: read is not applied (the first fetch's
    messages may have been dropped there, e.g. as fetched in an earlier generation)."""
    app = build_app(Settings())
    tp = TP("finpulse.transactions", 0)
    buffer = app.bulk_intake.buffers[tp.topic]  # type: ignore[attr-defined]

    class Fetched:
        def __init__(self, offset: int) -> None:
            self.tp, self.offset, self.generation_id = tp, offset, 1

    async def fetches(self: Any, timeout: float) -> Any:
        for offset in (*range(20, 25), *range(10, 25)):
            yield tp, Fetched(offset)

    monkeypatch.setattr(faust_aiokafka.Consumer, "getmany", fetches)

    async def main() -> list[int]:
        await app.topics._update_indices()
        app.consumer._read_offset[tp] = 10  # where Faust's seek to the committed offset set it
        async for _ in app.consumer.getmany(1.0):
            pass
        return [m.offset for m in buffer.messages]

    assert asyncio.run(main()) == list(range(10, 25))


def test_faust_drops_the_fetched_records_of_a_partition_not_active_when_iterated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Upstream behaviour the no-hole check (contiguity.py) answers: records the consumer
    thread fetched for a partition that is not active (paused for recovery) when Faust
    iterates them never reach the intake, although aiokafka's position has moved past them."""
    app = build_app(Settings())
    tp = TP("finpulse.transactions", 0)
    buffer = app.bulk_intake.buffers[tp.topic]  # type: ignore[attr-defined]
    records = [
        aiokafka.ConsumerRecord(tp.topic, 0, o, 0, 0, None, b"v", None, 0, 1, ()) for o in range(3)
    ]

    async def fetched(timeout: float) -> tuple[dict[TP, list[Any]], set[TP]]:
        return {tp: records}, set()  # the partition is paused: not among the active ones

    async def main() -> int:
        await app.topics._update_indices()
        monkeypatch.setattr(app.consumer, "_wait_next_records", fetched)
        async for _ in app.consumer.getmany(1.0):
            pass
        return len(buffer)

    assert asyncio.run(main()) == 0


def test_the_broker_probe_reads_as_the_worker_consumer_with_the_apps_client_options() -> None:
    settings = Settings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_username="u",
        kafka_sasl_password=SecretStr("p"),
    )
    app = build_app(settings)
    thread = app.consumer._thread

    async def isolation_levels() -> tuple[str, str]:
        worker = thread._create_worker_consumer(app.transport)
        # read committed always (Faust: only exactly-once): no aborted transaction is scored
        thread._consumer = worker
        try:
            return worker._isolation_level, app.broker_probe.isolation_level()
        finally:
            await worker._client.close()

    worker_level, probe_level = asyncio.run(isolation_levels())
    assert probe_level == worker_level == "read_committed"
    assert app.broker_probe is app.broker_probe  # one probe, kept
    assert app.broker_probe.options == aiokafka_options(settings)
    assert app.broker_probe.fetch_max_wait_ms == settings.consumer_fetch_max_wait_ms


def test_each_fetch_is_noted_before_faust_sees_it_and_every_seek_ends_the_chains(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = build_app(Settings())
    tp, other = TP("finpulse.transactions", 0), TP("app-some-changelog", 0)
    fetches = iter([[0, 1, 3], [5, 6], [9]])  # 2 and 4 skipped by the broker; a seek to 9

    class Record:
        def __init__(self, offset: int) -> None:
            self.offset = offset

    async def fetched(self: Any, timeout: float) -> tuple[dict[TP, list[Any]], set[TP]]:
        offsets = next(fetches)
        return {tp: [Record(o) for o in offsets], other: [Record(0), Record(7)]}, {tp}

    monkeypatch.setattr(faust_consumer.Consumer, "_wait_next_records", fetched)
    monkeypatch.setattr(faust_aiokafka.AIOKafkaConsumerThread, "seek", lambda *a: None)
    consumer, skipped = app.consumer, faust_adapter.skipped_offsets(app.consumer)

    async def main() -> list[int | None]:
        await consumer._wait_next_records(1.0)
        await consumer._wait_next_records(1.0)
        consumer._thread.seek(tp, 9)
        await consumer._wait_next_records(1.0)
        return [skipped.gap_start(tp, o) for o in (3, 5, 6, 9)]

    assert asyncio.run(main()) == [2, 4, None, None]
    assert skipped.gap_start(other, 7) is None  # only the intake's topics are noted


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"])
def test_the_probes_options_carry_the_same_security_as_fausts_own_clients(protocol: str) -> None:
    settings = Settings(
        broker_url="kafka://a:9093;b:9094",
        kafka_security_protocol=protocol,
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="u",
        kafka_sasl_password=SecretStr("p"),
    )
    app = build_app(settings)
    faust_auth = dict(
        faust_aiokafka.credentials_to_aiokafka_auth(app.conf.broker_credentials, None)
    )
    ours = dict(aiokafka_options(settings))
    servers = faust_aiokafka.server_list(app.transport.url, app.transport.default_port)
    assert ours.pop("bootstrap_servers") == servers
    theirs_context, ours_context = (
        faust_auth.pop("ssl_context", None),
        ours.pop("ssl_context", None),
    )
    assert ours == faust_auth
    assert (ours_context is None) == (theirs_context is None)
    if ours_context is not None:
        assert ours_context.verify_mode == theirs_context.verify_mode
        assert ours_context.check_hostname == theirs_context.check_hostname


def test_a_fetch_taken_before_the_resume_move_is_neither_taken_nor_kept_below_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The group committed nothing and the state applied offsets 0-2: Faust's seek leaves
    the partition at 0, and fetching goes on (the partition is resumed before the seek), so
    a fetch from 0 reaches the intake before the move to 3. No take hands it out while the
    move is under way, and none of it below 3 is left afterwards, even from a fetch taken
    before the move and read after it."""
    app = build_app(Settings())
    tp = TP(TRANSACTIONS, 0)
    buffer = app.bulk_intake.buffers[tp.topic]  # type: ignore[attr-defined]
    fetches = [range(6), range(2, 8)]  # from 0 before the move; one still on its way after
    early: list[list[int]] = []
    seeks: list[tuple[TP, int]] = []

    def message(offset: int) -> ConsumerMessage:
        return ConsumerMessage(
            tp.topic, 0, offset, 0.0, 0, None, b"k", b"v", None, tp=tp, generation_id=0
        )

    async def fetch(self: Any, timeout: float) -> Any:
        for offset in fetches.pop(0):
            yield tp, message(offset)

    async def faust_seek(self: Any) -> None:  # to the committed offsets: none; it fetches
        async for _ in self.getmany(1.0):
            pass
        try:  # a take now would hand out applied events
            batch = await asyncio.wait_for(buffer.take(10, 0.0, self), 0.2)
            early.append([m.offset for m in batch])
        except TimeoutError:
            pass

    async def seek(self: Any, partition: TP, offset: int) -> None:
        seeks.append((partition, offset))

    monkeypatch.setattr(faust_aiokafka.Consumer, "getmany", fetch)
    monkeypatch.setattr(faust_aiokafka.Consumer, "perform_seek", faust_seek)
    monkeypatch.setattr(faust_aiokafka.Consumer, "seek", seek)
    monkeypatch.setattr(app.consumer, "assignment", lambda: {tp})
    app.applied_positions = lambda tps: {tp: 3}  # type: ignore[attr-defined]

    async def main() -> list[int]:
        await app.topics._update_indices()
        app.flow_control.resume()  # recovery has resumed the flow by then
        await app.consumer.perform_seek()
        async for _ in app.consumer.getmany(1.0):  # the fetch taken before the move
            pass
        return [m.offset for m in await buffer.take(10, 0.0, app.consumer)]

    assert asyncio.run(main()) == [3, 4, 5, 6, 7]
    assert early == [] and seeks == [(tp, 3)]


def test_table_manager_runs_fausts_start_steps_without_its_wait_on_stubbed_steps(
    tmp_path: Path,
) -> None:
    """Faust's table manager sleeps 1 s before starting the tables; ours runs the same two
    steps at once. The steps are stubbed (starting the tables declares their changelog
    topics on a broker); the worker integration tests run them for real."""
    app = build_app(Settings(state_store="memory", data_dir=tmp_path))
    manager = app.tables
    assert isinstance(manager, faust_adapter.FinpulseTableManager)
    steps: list[str] = []

    async def update_channels() -> None:
        steps.append("tables")

    async def recovery_start() -> None:
        steps.append("recovery")

    async def start() -> float:
        manager._update_channels = update_channels  # type: ignore[method-assign]
        manager.recovery.start = recovery_start  # type: ignore[method-assign]
        t0 = asyncio.get_running_loop().time()
        await manager.on_start()
        return asyncio.get_running_loop().time() - t0

    assert asyncio.run(start()) < 0.5
    assert steps == ["tables", "recovery"]
