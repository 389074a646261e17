"""The worker's one seam with Faust's and aiokafka's internals.

Every private Faust or aiokafka name finpulse relies on is used here and nowhere else;
``tests/unit/streams/worker/test_faust_adapter.py`` pins each one (its presence and the
source of the upstream code whose behaviour we rely on), so a library upgrade that
changes one fails loudly there instead of misbehaving in production.

What goes through the seam:

- **Fetch wait.** Faust's aiokafka driver creates its consumer with
  ``fetch_max_wait_ms=1500``, fixed. Against a broker that holds a fetch until that timeout
  even when data has arrived (Tansu) that wait is every event's latency floor
  (docs/benchmarks.md); :class:`FinpulseApp` sets its own.
- **Bulk intake.** :meth:`_Consumer.getmany` wraps Faust's own ``getmany`` (Faust's drain
  loop stays Faust's): a message of a topic registered in ``app.bulk_intake``
  (:mod:`finpulse.streams.worker.intake`) goes to that topic's buffer, with the read-offset and gap
  bookkeeping Faust's loop does for the messages it reads (but a message read again after a
  seek back is kept, not dropped as read before: :func:`_note_read`); every other message
  (the table changelogs read during recovery) is yielded to Faust's loop unchanged.
- **Publishing** record batches with aiokafka's producer
(:mod:`finpulse.streams.worker.batch_publish`).
- **Recovery's end offsets** come from a fetch response, not from ListOffsets
  (:func:`fetched_high_watermarks`); a fetch by a consumer without a group also answers
  which offsets from a given one on hold a record (:func:`held_offsets`, for
  :mod:`finpulse.streams.worker.contiguity`), read with the worker consumer's isolation
  level (:mod:`finpulse.streams.worker.broker_probe`).
- **Consumer lag**: the end offsets ListOffsets answers (:func:`listed_end_offsets`),
  recorded beside the fetch responses' high watermarks (:mod:`finpulse.streams.worker.lag`).
- **Skipped offsets**: each fetch's records, before Faust's ``getmany`` sees them, are
  noted in ``consumer.skipped`` (:mod:`finpulse.streams.worker.skipped_offsets`), and every
  seek ends the fetch chains there (:class:`_ConsumerThread`).
- **Resume positions**: after Faust's seek to the committed offsets, input partitions move
  to the state's applied position where the group has none or one past it
  (:mod:`finpulse.streams.worker.positions`); the intake takes nothing while they move,
  and drops what a fetch taken before the move holds below it, buffered or still on its
  way (applied already: :meth:`~finpulse.streams.worker.intake.BulkIntake.resume_at`).
- **Table stores.** The memory store's dict of a table and the partition of each key, or
  the RocksDB databases (one per changelog partition Faust holds open) of its
  ``rocksdb://`` store, written directly (:mod:`finpulse.streams.worker.table_store`); the
  partitions held as standby replicas.
- **Table start without Faust's wait.** Faust's table manager sleeps 1 s before it starts
  the tables, so that tables declared late still make the first subscription; every finpulse
  table is declared while the app is built, so :class:`FinpulseTableManager` starts them at
  once (a table declared later would still fail loudly: "Too late to add tables"). On an
  assignment it opens the partitions' RocksDB databases in threads at once
  (:func:`open_rocksdb_partitions`) before Faust's stores open them one by one on the event
  loop, and it marks start-up milestones: the tables started, the partitions assigned.

>>> options = {"bootstrap_servers": ["localhost:9092"]}
>>> app = FinpulseApp("doc", broker="kafka://localhost:9092", kafka_options=options,
...                   fetch_max_wait_ms=40)
>>> type(app.transport).__name__, app.fetch_max_wait_ms, type(app.tables).__name__
('FinpulseTransport', 40, 'FinpulseTableManager')
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Iterator, Mapping
from typing import Any

import faust
from faust.tables import TableManager
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from finpulse.config.settings import Settings
from finpulse.streams.worker.broker_probe import BrokerProbe
from finpulse.streams.worker.intake import BulkIntake, IntakeBuffer
from finpulse.streams.worker.positions import resume_positions
from finpulse.streams.worker.skipped_offsets import SkippedOffsets
from finpulse.streams.worker.startup import StartupClock

log = logging.getLogger(__name__)

# For assigned partitions, the offset after the last one the worker's state has applied.
AppliedPositions = Callable[[Iterable[TP]], Mapping[TP, int]]

FAUST_FETCH_MAX_WAIT_MS = 1500


# -- consumer -----------------------------------------------------------------------------


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    # Every way Faust moves a position: the fetch chains of ``consumer.skipped`` end there
    # (before: a fetch under way is not chained; after: nor one taken before the move).
    def _moved(self) -> None:
        skipped_offsets(self.consumer).moved()

    def seek(self, partition: TP, offset: int) -> None:
        self._moved()
        super().seek(partition, offset)
        self._moved()

    async def seek_wait(self, partitions: Mapping[TP, int]) -> None:
        self._moved()
        await super().seek_wait(partitions)
        self._moved()

    async def seek_to_committed(self) -> Mapping[TP, int]:
        self._moved()
        committed = await super().seek_to_committed()
        self._moved()
        return committed

    async def seek_to_beginning(self, *partitions: Any) -> None:
        self._moved()
        await super().seek_to_beginning(*partitions)
        self._moved()

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka passes this to its Fetcher in start(), which has not run yet.
        consumer._fetch_max_wait_ms = getattr(
            self.app, "fetch_max_wait_ms", FAUST_FETCH_MAX_WAIT_MS
        )
        # Faust reads committed records only in exactly-once mode; an upstream producer's
        # aborted transaction must never be scored, so the worker always reads committed.
        consumer._isolation_level = "read_committed"
        return consumer

    async def _highwaters(self, partitions: Any) -> Any:
        listed = dict(await super()._highwaters(partitions))
        if self.consumer.in_transaction:
            return listed  # last stable offsets: not used by finpulse
        return await fetched_high_watermarks(self, listed)


async def fetched_high_watermarks(thread: Any, listed: dict[TP, int]) -> dict[TP, int]:
    """The end offsets of ``listed``'s partitions as a fetch response reports them.

    Faust's table recovery reads each changelog partition up to its end offset from
    ListOffsets. Tansu answers that with the offset after the first record of the
    partition's last record batch, not after its last record: recovery then stopped short
    of the newest changes and the restarted worker lost them (found by killing a worker
    mid-stream). The high watermark of a fetch response is right on every broker, so a
    consumer without a group fetches each partition from one before the listed end (in
    the consumer thread, so with a probe of its own, stopped after it answered).
    """
    todo = {tp: end for tp, end in listed.items() if end}
    if not todo:
        return listed
    ends = dict(listed)
    async with _new_probe(thread.app, thread) as probe:
        found = await probe.fetch({tp: end - 1 for tp, end in todo.items()}, records=False)
    for tp, held in found.items():
        ends[tp] = max(ends[tp], held.high_watermark)
    return ends


async def held_offsets(consumer: Any, starts: Mapping[TP, int]) -> dict[TP, list[int]]:
    """For each partition of ``starts``, the offsets of the records one fetch from the
    given offset returns (empty: no record there yet), asked by the app's long-lived
    :class:`~finpulse.streams.worker.broker_probe.BrokerProbe`: the offsets between the
    start and the first of them, and between any two of them, hold no record a consumer
    is given (transaction markers, or records removed by retention).
    """
    found = await consumer.app.broker_probe.fetch(starts)
    return {tp: held.offsets for tp, held in found.items()}


def _new_probe(app: Any, thread: Any) -> BrokerProbe:
    """A probe with the app's client options that reads as the worker consumer of
    ``thread`` does (its isolation level, its fetch wait)."""
    return BrokerProbe(
        app.kafka_options,
        lambda: str(thread._ensure_consumer()._isolation_level),
        fetch_max_wait_ms=app.fetch_max_wait_ms,
    )


class _Consumer(faust_aiokafka.Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.skipped = SkippedOffsets()  # what the fetches passed over (see the module text)
        self._fetch_generation: int | None = None

    async def _wait_next_records(self, timeout: float) -> Any:
        """Faust's wait for a fetch, its records noted in ``skipped`` before Faust's
        ``getmany`` sees (and may drop) them; a new generation ends every chain."""
        skipped, generation = self.skipped, self.app.consumer_generation_id
        if generation != self._fetch_generation:
            self._fetch_generation = generation
            skipped.moved()
        epoch = skipped.epoch
        records, active_partitions = await super()._wait_next_records(timeout)
        if self.app.consumer_generation_id != generation:
            skipped.moved()
        if records:
            intake: BulkIntake | None = getattr(self.app, "bulk_intake", None)
            skipped.note(records, epoch, intake.buffers if intake is not None else ())
        return records, active_partitions

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def perform_seek(self) -> None:
        """Faust's seek to the committed offsets, then the input partitions moved to the
        state's applied positions where the group has no committed offset or one past it.

        Fetching goes on meanwhile (the partitions are resumed first): the intake takes
        nothing until the moves are made, then drops what it holds below them.
        """
        applied: AppliedPositions | None = getattr(self.app, "applied_positions", None)
        intake: BulkIntake | None = getattr(self.app, "bulk_intake", None)
        if applied is None or intake is None:
            await super().perform_seek()
            return
        with intake.moving():
            await super().perform_seek()
            next_offsets = applied(self.assignment())
            committed = {tp: committed_offset(self, tp) for tp in next_offsets}
            moves = resume_positions(committed, next_offsets)
            intake.resume_at(moves)  # before the seeks: a fetch may still bring what is below
            for tp, offset in moves.items():
                await self.seek(tp, offset)  # also Faust's read offset
        if next_offsets:
            log.info(
                "input positions (partition: applied next, group committed%s): %s",
                ", moved" if moves else "",
                ", ".join(
                    f"{tp.topic}/{tp.partition}: {n}, {committed[tp]}"
                    + (" -> moved" if tp in moves else "")
                    for tp, n in sorted(next_offsets.items())
                ),
            )

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Any]]:
        """Faust's ``getmany``, with the bulk-intake topics' messages kept back (see the
        module text)."""
        intake: BulkIntake | None = getattr(self.app, "bulk_intake", None)
        buffers = intake.buffers if intake is not None else {}
        # per partition of this fetch: its topic's buffer (None: not a bulk-intake topic)
        routes: dict[TP, IntakeBuffer | None] = {}
        try:
            async for tp, message in super().getmany(timeout):
                if tp in routes:
                    buffer = routes[tp]
                else:
                    buffer = routes[tp] = buffers.get(tp.topic)
                if buffer is None:
                    yield tp, message
                    continue
                offset = message.offset
                # asked per message: the floors move while a fetch is read (perform_seek)
                if buffer.below_floor(tp, offset):
                    continue  # below the position the state moved it to: applied already
                gap = _note_read(self, tp, offset)
                if gap is not None:
                    await self._add_gap(tp, *gap)
                if buffer.put(message):  # full: wait for room (or a rebalance)
                    await self.wait_first(buffer.wait_for_space(), self.suspend_flow.wait())
        finally:
            if intake is not None:
                intake.notify()  # the fetch's messages can be taken


def _note_read(consumer: Any, tp: TP, offset: int) -> tuple[int, int] | None:
    """What Faust's drain loop records of a message it reads: its offset; returned, a gap
    (offsets the broker skipped, e.g. transaction markers) for ``consumer._add_gap``, so
    that offsets can be committed across it once the messages around it are acknowledged.

    Unlike Faust's loop, a message below the offset read last is not dropped: Faust's
    seek to the committed offsets sets the read offset back, but a fetch taken before that
    seek can still be read after it and set it forward again, and the messages read again
    from the committed offset were then dropped as read before. Read is not applied: a
    message taken in an earlier consumer generation was dropped (intake), and dropping its
    second delivery too lost it for good. The intake keeps each partition in offset order
    and the re-delivery guard skips what is applied.
    """
    read_offset = consumer._read_offset
    last = read_offset[tp]
    if last is not None and offset < last:
        return None  # read again after a seek back: delivered, the read offset stays
    read_offset[tp] = offset
    if last and offset - last > 1 and consumer.app.topics.acks_enabled_for(tp.topic):
        return last + 1, offset
    return None


def skipped_offsets(consumer: Any) -> SkippedOffsets:
    """The offsets the worker consumer's fetches passed over (what the broker gave no
    record for), noted as each fetch returns."""
    return consumer.skipped  # type: ignore[no-any-return]


def committed_offset(consumer: Any, tp: TP) -> int | None:
    """The group's committed offset of ``tp`` as Faust last learnt it (its seek to the
    committed offsets at each assignment, then its own commits); ``None`` when there is
    none (or it is 0)."""
    offset = consumer._committed_offset.get(tp)
    return None if offset is None else int(offset)


def unacked_messages(consumer: Any) -> Any:
    """The set Faust's stream path adds a taken message to (what rebalances and shutdown
    wait to see acknowledged)."""
    return consumer._unacked_messages


async def listed_end_offsets(consumer: Any, partitions: Iterable[TP]) -> dict[TP, int]:
    """The end offsets of ``partitions`` as ListOffsets answers them (one request per
    leader), asked by the worker consumer's aiokafka consumer in its own thread.

    Faust's public ``highwaters`` is not used: for finpulse it reads fetch responses
    (``_ConsumerThread._highwaters``), which the lag already has from ``highwater(tp)``.
    """
    thread = consumer._thread
    kafka = thread._ensure_consumer()
    ends = await thread.call_thread(kafka.end_offsets, list(partitions))
    return {TP(tp.topic, tp.partition): int(end) for tp, end in ends.items()}


class FinpulseTransport(faust_aiokafka.Transport):
    """Faust's aiokafka transport whose worker consumer waits ``app.fetch_max_wait_ms``."""

    Consumer = _Consumer


class FinpulseTableManager(TableManager):
    """Faust's table manager, starting the tables without its 1 s wait (module text) and
    marking ``tables_registered`` and ``partitions_assigned`` on the app's start-up clock
    (:mod:`finpulse.streams.worker.startup`)."""

    async def on_start(self) -> None:
        if not self.should_stop:  # Faust's steps, without its ``sleep(1.0)`` before them
            await self._update_channels()
            await self.recovery.start()

    async def _update_channels(self) -> None:
        await super()._update_channels()  # every table started (at start and on rebalances)
        self._mark("tables_registered")

    async def on_rebalance(
        self, assigned: Any, revoked: Any, newly_assigned: Any, generation_id: int = 0
    ) -> None:
        self._mark("partitions_assigned")
        standbys = self.app.assignor.assigned_standbys()
        await open_rocksdb_partitions(self.values(), newly_assigned, standbys)
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)

    def _mark(self, phase: str) -> None:
        startup: StartupClock | None = getattr(self.app, "startup", None)
        if startup is not None:
            startup.mark(phase)


# The worker's default (FINPULSE_STREAM_INTAKE_BUFFER_MAX), for apps built without settings.
_INTAKE_BUFFER_MAX: int = Settings.model_fields["stream_intake_buffer_max"].default


class FinpulseApp(faust.App):
    """A Faust app whose consumer transport is :class:`FinpulseTransport`.

    ``bulk_intake`` holds the intake buffers (``intake_buffer_max`` messages per topic) that
    agents subscribe with :meth:`finpulse.streams.worker.intake.BulkIntake.subscribe` while the app
    is built; ``applied_positions`` (set by the worker) gives, for assigned partitions, the
    offset after the last one the state has applied. ``kafka_options`` are the connection
    options of the app's own aiokafka clients (``aiokafka_options(settings)``): the
    probes, among them ``broker_probe``, started on its first question and stopped with
    the app. Its tables start without Faust's wait, and ``startup`` notes the start-up
    milestones (:class:`FinpulseTableManager`).
    """

    applied_positions: AppliedPositions | None = None

    def __init__(
        self,
        *args: Any,
        kafka_options: Mapping[str, object],
        fetch_max_wait_ms: int = FAUST_FETCH_MAX_WAIT_MS,
        intake_buffer_max: int = _INTAKE_BUFFER_MAX,
        startup: StartupClock | None = None,
        **kwargs: Any,
    ) -> None:
        self.kafka_options = kafka_options
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.bulk_intake = BulkIntake(intake_buffer_max, unacked_messages)
        self.startup = startup or StartupClock()
        kwargs.setdefault("TableManager", FinpulseTableManager)
        super().__init__(*args, **kwargs)
        self._broker_probe: BrokerProbe | None = None

    @property
    def broker_probe(self) -> BrokerProbe:
        """The probe the worker's own questions go to (reads as its consumer does)."""
        if self._broker_probe is None:
            consumer: Any = self.consumer  # our _Consumer
            self._broker_probe = _new_probe(self, consumer._thread)
        return self._broker_probe

    async def on_stop(self) -> None:
        await super().on_stop()
        if self._broker_probe is not None:
            await self._broker_probe.close()

    def _new_transport(self) -> Any:
        return FinpulseTransport(self.conf.broker_consumer, self)


# -- producer -----------------------------------------------------------------------------


def aiokafka_producer(app: faust.App) -> Any:
    """The aiokafka producer beneath the app's Faust producer (started with the app)."""
    return app.producer._ensure_producer()  # type: ignore[attr-defined]


async def wait_on_metadata(producer: Any, topic: str) -> None:
    """Wait until ``producer`` knows ``topic``'s partitions (what ``send()`` does first)."""
    await producer.client._wait_on_metadata(topic)


def default_partition(producer: Any, topic: str, key: bytes | None, value: bytes | None) -> int:
    """The partition ``producer.send`` would choose for a message without one."""
    return int(producer._partition(topic, None, key, value, key, value))


# -- tables -------------------------------------------------------------------------------


def memory_store(table: Any) -> dict[Any, Any]:
    """The dict of a table's ``memory://`` store (recovery fills and prunes this same dict)."""
    return table.data.data  # type: ignore[no-any-return]


def is_rocksdb(table: Any) -> bool:
    """Whether ``table`` keeps its data in a ``rocksdb://`` store."""
    from faust.stores import rocksdb

    return isinstance(table.data, rocksdb.Store)


def rocksdb_databases(table: Any) -> Mapping[int, Any]:
    """The open RocksDB databases (``rocksdict.Rdict``) of a table's ``rocksdb://`` store by
    changelog partition, one per partition this worker holds: the store's own dict, which
    Faust updates as partitions are assigned and revoked (the same object for the store's
    life). Keep the dict, not the databases: Faust closes a revoked partition's database by
    dropping its reference."""
    return table.data._dbs  # type: ignore[no-any-return]


def memory_key_partitions(table: Any) -> dict[Any, int]:
    """The changelog partition of each key of a table's ``memory://`` store: recovery
    records it for what it restores, and at its end drops the keys of partitions no longer
    assigned (Faust's own writes do not record it: finpulse's do)."""
    return table.data._key_partition  # type: ignore[no-any-return]


def standby_partitions(table: Any) -> set[int]:
    """The partitions of ``table``'s changelog this worker holds as a standby replica (their
    databases are written by recovery alone)."""
    topic = table.changelog_topic.get_topic_name()
    return {tp.partition for tp in table.app.assignor.assigned_standbys() if tp.topic == topic}


async def open_rocksdb_partitions(
    tables: Iterable[Any], assigned: Collection[TP], standbys: Iterable[TP]
) -> int:
    """Open, in threads at once, the RocksDB databases that Faust's stores open one after
    the other on the event loop when ``assigned`` comes (the active changelog partitions of
    each ``rocksdb://`` table; ``standbys`` are read by Faust's recovery without a database
    of their own); returns how many opened. Each open waits on the disk (its manifest and
    options files are written and synced); a database that fails to open here is left to
    Faust's store, which opens it again and retries a locked one.
    """
    skip = set(standbys)
    jobs = [
        (table, tp.partition)
        for table in tables
        if is_rocksdb(table)
        for tp in assigned
        if tp.topic in table.changelog_topic.topics and tp not in skip
    ]
    results = await asyncio.gather(
        *(asyncio.to_thread(open_rocksdb_partition, table, p) for table, p in jobs),
        return_exceptions=True,
    )
    for (table, partition), result in zip(jobs, results, strict=True):
        if isinstance(result, Exception):
            log.info("%s/%d not opened ahead (%s): left to Faust", table.name, partition, result)
        elif isinstance(result, BaseException):
            raise result
    return sum(not isinstance(r, BaseException) for r in results)


def open_rocksdb_partition(table: Any, partition: int) -> Any:
    """The RocksDB database of one changelog partition of a ``rocksdb://`` store, opened if
    it is not yet: for :func:`open_rocksdb_partitions` at an assignment only (the commits
    write only databases Faust holds open, :mod:`finpulse.streams.worker.table_store`)."""
    return table.data._db_for_partition(partition)


def rocksdb_offset_key(table: Any) -> bytes:
    """The key under which Faust's RocksDB store keeps a partition's persisted changelog
    offset (recovery reads the changelog from the record after it)."""
    return table.data.offset_key  # type: ignore[no-any-return]


def rocksdb_keys(table: Any) -> Iterator[tuple[int, bytes]]:
    """(partition, key) of the keys of a ``rocksdb://`` store's open partitions (its offset
    keys left out)."""
    store = table.data
    for partition, db in list(rocksdb_databases(table).items()):
        for key in store._visible_keys(db):
            yield partition, key


def recovery_seconds(app: Any) -> float | None:
    """Seconds since Faust's table recovery began reading the changelogs (``None`` if it
    has not begun)."""
    started = app.tables.recovery._recovery_started_at
    return None if started is None else time.monotonic() - started
