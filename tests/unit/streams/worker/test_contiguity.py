"""No hole after the applied offset (finpulse.streams.worker.contiguity): a batch whose records
of a partition start past the state's applied offset is not processed past a hole.

The broker (the record offsets it holds, answered a fetch's worth at a time), the seek and
the release are in memory here; tests/integration/test_first_offsets.py asks real brokers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from faust.types import TP

from finpulse.config.settings import Settings
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.topics import TRANSACTIONS
from finpulse.streams.worker.contiguity import Contiguity, Msg
from finpulse.streams.worker.pipeline import Pipeline
from finpulse.streams.worker.skipped_offsets import SkippedOffsets
from tests import factories as f
from tests.unit.streams.worker.test_pipeline_guard import Seen

T0 = TP(TRANSACTIONS, 0)


class Broker:
    """What the check asks and does, and what the broker holds (record offsets)."""

    def __init__(self, holds: Mapping[int, Iterable[int]], fetch_records: int = 50) -> None:
        self.holds = {p: sorted(offsets) for p, offsets in holds.items()}
        self.fetch_records = fetch_records  # records one fetch returns
        self.asked: list[dict[TP, int]] = []
        self.seeks: list[tuple[TP, int]] = []
        self.released: list[Any] = []
        self.generation = 1

    async def held_offsets(self, starts: Mapping[TP, int]) -> dict[TP, list[int]]:
        self.asked.append(dict(starts))
        return {
            tp: [o for o in self.holds.get(tp.partition, []) if o >= start][: self.fetch_records]
            for tp, start in starts.items()
        }

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))

    def release(self, batch: Sequence[Any]) -> None:
        self.released.extend(batch)


def _check(
    applied: Callable[[int], int | None] | dict[int, int],
    broker: Broker,
    committed: dict[int, int] | None = None,
    skipped: SkippedOffsets | None = None,
) -> Contiguity:
    """``applied``: the last offset applied per partition, or the offset after it;
    ``committed``: the group's committed offsets (a partition without one starts at 0);
    ``skipped``: what the worker consumer's fetches passed over."""
    if isinstance(applied, dict):
        last = applied
        applied = lambda p: last[p] + 1 if p in last else None  # noqa: E731
    return Contiguity(
        TRANSACTIONS,
        applied,
        lambda p: (committed or {}).get(p, 0),
        broker.held_offsets,
        broker.seek,
        broker.release,
        lambda: broker.generation,
        skipped=skipped,
    )


def _msgs(partition: int, offsets: Iterable[int]) -> list[Msg]:
    return [Msg(partition, o) for o in offsets]


def test_batches_that_follow_the_applied_offset_pass_as_they_are_without_asking() -> None:
    broker = Broker({})
    check = _check({0: 9, 1: 4}, broker, committed={2: 30})
    batch = _msgs(0, range(5, 15)) + _msgs(1, range(5, 8)) + _msgs(2, range(30, 31))
    # re-deliveries, the next records, and a partition taken where the group placed it
    assert asyncio.run(check.admit(batch)) is batch
    assert broker.asked == [] and broker.seeks == [] and broker.released == []


def test_a_partition_nothing_is_applied_of_is_read_from_its_start_without_a_committed_offset():
    # A worker killed before its first commit of partition 1 left no committed offset and
    # no applied one; its successor's first fetch (offsets 0-11) was dropped while recovery
    # paused the partition, and Faust's seek (to no committed offset) did not fetch it again:
    # the first batch starts at 12. It is left out and the partition read again from 0.
    broker = Broker({1: range(0, 16)})
    check = _check({}, broker)

    async def scenario() -> list[Sequence[Msg]]:
        first = await check.admit(_msgs(1, range(12, 16)))
        again = await check.admit(_msgs(1, range(0, 16)))
        return [first, again]

    first, again = asyncio.run(scenario())
    assert list(first) == [] and list(again) == _msgs(1, range(0, 16))
    assert broker.asked == [{TP(TRANSACTIONS, 1): 0}]
    assert broker.seeks == [(TP(TRANSACTIONS, 1), 0)]
    assert broker.released == _msgs(1, range(12, 16))


def test_a_partition_nothing_is_applied_of_is_checked_from_its_committed_offset() -> None:
    broker = Broker({0: range(40, 50)})
    check = _check({}, broker, committed={0: 40})
    assert list(asyncio.run(check.admit(_msgs(0, range(40, 43))))) == _msgs(0, range(40, 43))
    assert broker.asked == []
    later = _check({}, broker, committed={0: 40})
    assert list(asyncio.run(later.admit(_msgs(0, range(45, 47))))) == []
    assert broker.seeks == [(TP(TRANSACTIONS, 0), 40)]


def test_a_log_that_starts_past_zero_is_taken_from_its_first_record() -> None:
    broker = Broker({0: range(500, 510)})  # retention removed 0-499
    check = _check({}, broker)
    batch = _msgs(0, range(500, 503))
    assert list(asyncio.run(check.admit(batch))) == batch
    assert broker.asked == [{TP(TRANSACTIONS, 0): 0}] and broker.seeks == []


def test_a_partition_starting_past_a_hole_is_left_out_and_read_again_from_the_state() -> None:
    # applied up to 10837; the batch's records of partition 0 start at 13928; the broker
    # holds 10838: partition 0 is left out, released, and read again from 10838
    broker = Broker({0: range(10838, 14000)})
    check = _check({0: 10837, 1: 99}, broker)
    batch = _msgs(0, range(13928, 13931)) + _msgs(1, range(100, 102))

    async def scenario() -> list[Sequence[Msg]]:
        first = await check.admit(batch)
        stale = await check.admit(_msgs(0, range(13931, 13933)))  # fetched before the seek
        again = await check.admit(_msgs(0, range(10838, 10840)))  # the re-read
        return [first, stale, again]

    first, stale, again = asyncio.run(scenario())
    assert first == _msgs(1, range(100, 102))
    assert stale == [] and again == _msgs(0, range(10838, 10840))
    assert broker.seeks == [(T0, 10838)]  # once
    assert broker.asked == [{T0: 10838}]  # once
    assert broker.released == _msgs(0, range(13928, 13933))
    assert dict(check.counts) == {"probes": 1, "read_again": 1}


def test_offsets_that_hold_no_record_at_the_broker_are_passed_over() -> None:
    broker = Broker({0: range(12, 20)})  # 10 and 11 are transaction markers, say
    check = _check({0: 9}, broker)
    batch = _msgs(0, range(12, 15))
    assert asyncio.run(check.admit(batch)) is batch
    assert broker.seeks == [] and broker.released == []
    assert dict(check.counts) == {"probes": 1, "passed": 1}


def test_one_answer_passes_over_every_marker_it_covers() -> None:
    # a transactional producer: every 10th offset is a commit marker; state applied as taken
    log = [o for o in range(1000) if o % 10 != 9]
    broker = Broker({0: log}, fetch_records=500)
    applied: dict[int, int] = {0: -1}
    check = _check(lambda p: applied[p] + 1, broker)

    async def consume() -> list[int]:
        taken = []
        for start in range(0, len(log), 25):  # batches of 25 records, each across markers
            admitted = await check.admit(_msgs(0, log[start : start + 25]))
            taken += [m.offset for m in admitted]
            applied[0] = taken[-1]
        return taken

    assert asyncio.run(consume()) == log  # every record, in order, none left out
    assert len(broker.asked) == 2  # one question per 500 records, not one per batch
    assert check.counts["passed"] == 99 and broker.seeks == []


def test_gaps_the_worker_fetches_passed_over_need_no_question_and_dropped_records_do() -> None:
    # the consumer fetched 0-4, 6-9 (5: a marker), 10-19 (dropped by Faust), 21-22 (20: a
    # marker); the batches hold 0-4, 6-9 and 21-22
    fetched = SkippedOffsets()
    for offsets in ([0, 1, 2, 3, 4], [6, 7, 8, 9], list(range(10, 20)), [21, 22]):
        fetched.note({T0: [Msg(0, o) for o in offsets]}, fetched.epoch)
    broker = Broker({0: [o for o in range(30) if o not in (5, 20)]})
    applied = {0: -1}
    check = _check(lambda p: applied[p] + 1, broker, skipped=fetched)

    async def take(offsets: list[int]) -> list[int]:
        admitted = [m.offset for m in await check.admit(_msgs(0, offsets))]
        applied[0] = admitted[-1] if admitted else applied[0]
        return admitted

    async def scenario() -> list[list[int]]:
        return [await take([0, 1, 2, 3, 4]), await take([6, 7, 8, 9]), await take([21, 22])]

    assert asyncio.run(scenario()) == [[0, 1, 2, 3, 4], [6, 7, 8, 9], []]
    assert broker.asked == [{T0: 10}]  # only the hole of the dropped records is asked
    assert broker.seeks == [(T0, 10)] and check.counts["passed"] == 1


def test_a_rebalance_ends_the_wait_for_a_re_read() -> None:
    broker = Broker({0: range(10, 30)})
    check = _check({0: 9}, broker)

    async def scenario() -> Sequence[Msg]:
        await check.admit(_msgs(0, range(20, 22)))  # left out, waiting for 10
        broker.generation = 2  # Faust sought every partition to its committed offset
        broker.holds = {0: list(range(20, 30))}  # and now the broker holds 20 on (retention)
        return await check.admit(_msgs(0, range(20, 22)))

    assert asyncio.run(scenario()) == _msgs(0, range(20, 22))
    assert len(broker.asked) == 2


def test_when_the_awaited_record_never_comes_the_broker_is_asked_again() -> None:
    # 10 was awaited; retention removed 10-14 before the re-read fetched them
    broker = Broker({0: range(10, 40)})
    check = _check({0: 9}, broker)

    async def scenario() -> list[Sequence[Msg]]:
        left = await check.admit(_msgs(0, range(30, 32)))
        broker.holds = {0: list(range(15, 40))}
        reread = await check.admit(_msgs(0, range(15, 18)))  # the re-read, past 10
        return [left, reread]

    left, reread = asyncio.run(scenario())
    assert left == [] and reread == _msgs(0, range(15, 18))
    assert broker.asked == [{T0: 10}, {T0: 10}]
    assert broker.seeks == [(T0, 10)] and check.counts["asked_again"] == 1


def test_a_re_read_that_starts_where_the_records_left_out_ended_is_not_taken_as_stale() -> None:
    # 30-31 left out, 10 awaited; retention removes 10-31; the first fetch after the seek
    # brings 32, the offset a fetch from before the seek would have brought next
    fetched = SkippedOffsets()
    broker = Broker({0: range(10, 40)})
    check = _check(lambda p: 10, broker, skipped=fetched)

    async def scenario() -> list[Sequence[Msg]]:
        left = await check.admit(_msgs(0, [30, 31]))
        broker.holds = {0: list(range(32, 40))}
        fetched.moved()  # the seek back to 10
        fetched.note({T0: _msgs(0, [32, 33])}, fetched.epoch)
        return [left, await check.admit(_msgs(0, [32, 33]))]

    assert asyncio.run(scenario()) == [[], _msgs(0, [32, 33])]
    assert broker.asked == [{T0: 10}, {T0: 10}] and check.counts["asked_again"] == 1


def test_a_record_the_probe_saw_but_the_consumer_never_gets_does_not_stall_the_partition() -> None:
    # the probe's first answer named 10, the worker's re-read brings 12 (10 and 11 not
    # readable to it); asked again, the broker answers 12: the partition goes on
    broker = Broker({0: range(10, 40)})
    applied = {0: 9}
    check = _check(applied, broker)

    async def take(offsets: range) -> Sequence[Msg]:
        admitted = await check.admit(_msgs(0, offsets))
        if admitted:
            applied[0] = admitted[-1].offset
        return admitted

    async def scenario() -> list[Sequence[Msg]]:
        await take(range(30, 32))
        broker.holds = {0: list(range(12, 40))}
        return [await take(range(12, 14)), await take(range(14, 16)), await take(range(16, 18))]

    assert asyncio.run(scenario()) == [
        _msgs(0, r) for r in (range(12, 14), range(14, 16), range(16, 18))
    ]
    assert len(broker.asked) == 2 and len(broker.seeks) == 1


def test_a_hole_inside_a_batch_leaves_out_only_the_records_after_it() -> None:
    broker = Broker({0: range(10, 30)})  # the broker holds 13 and on
    check = _check({0: 9}, broker)
    batch = _msgs(0, range(10, 13)) + _msgs(1, [5]) + _msgs(0, range(20, 23)) + _msgs(1, [6])
    assert asyncio.run(check.admit(batch)) == _msgs(0, range(10, 13)) + _msgs(1, [5, 6])
    assert broker.seeks == [(T0, 13)]
    assert broker.released == _msgs(0, range(20, 23))


def test_offsets_without_records_inside_a_batch_are_passed_over_and_checked_on() -> None:
    broker = Broker({0: [10, 12, 13, 14, 20]})  # 11 is a marker; 14 is missing from the batch
    check = _check({0: 9}, broker)
    batch = _msgs(0, [10, 12, 13, 20])
    assert asyncio.run(check.admit(batch)) == _msgs(0, [10, 12, 13])
    assert broker.asked == [{T0: 11}]  # the answer from 11 on also covers 14
    assert broker.seeks == [(T0, 14)]


def test_a_record_out_of_offset_order_is_read_again_not_lost() -> None:
    broker = Broker({0: range(0, 30)})
    check = _check({0: 9}, broker)
    batch = _msgs(0, [10, 12, 11, 13])
    assert asyncio.run(check.admit(batch)) == _msgs(0, [10])
    assert broker.seeks == [(T0, 11)] and broker.released == _msgs(0, [12, 11, 13])


def test_without_an_answer_from_the_broker_the_partition_is_read_again() -> None:
    broker = Broker({})
    check = _check({0: 9}, broker)

    async def unanswered(starts: Mapping[TP, int]) -> dict[TP, list[int]]:
        raise RuntimeError("no fetch answered")

    check.held_offsets = unanswered
    assert asyncio.run(check.admit(_msgs(0, range(20, 22)))) == []
    assert broker.seeks == [(T0, 10)]


def test_a_partition_revoked_during_the_check_is_still_left_out() -> None:
    broker = Broker({0: range(10, 30)})
    check = _check({0: 9}, broker)

    async def revoked(tp: TP, offset: int) -> None:
        raise RuntimeError("No current assignment for partition")

    check.seek = revoked
    assert asyncio.run(check.admit(_msgs(0, range(20, 22)))) == []
    assert broker.released == _msgs(0, range(20, 22))


def test_the_guard_alone_loses_a_hole_and_with_the_check_every_event_is_applied_once() -> None:
    """The guard is a high-water mark: past a hole it skips the hole's events when they
    come. Offsets 5-7 are dropped from the first fetch (as Faust drops a paused
    partition's records) and come with the re-read from 5."""

    def txns(offsets: Iterable[int]) -> list[RawRecord]:
        return [RawRecord(TRANSACTIONS, 0, o, f.encode(f.transaction())) for o in offsets]

    def run(checked: bool) -> list[int]:
        seen = Seen()
        pipeline = Pipeline(Settings(), stages=lambda settings, state: (seen,))
        check = _check(lambda p: pipeline.next_offset("transaction", p), Broker({0: range(20)}))

        async def deliver(offsets: range) -> None:
            records = txns(offsets)
            pipeline.process("transaction", await check.admit(records) if checked else records)

        async def fetches() -> None:
            for offsets in (range(0, 5), range(8, 10), range(5, 10)):
                await deliver(offsets)

        asyncio.run(fetches())
        return [offset for _, _, offset in seen.events]

    assert run(checked=False) == [0, 1, 2, 3, 4, 8, 9]  # 5-7 skipped as re-deliveries
    assert run(checked=True) == list(range(10))
