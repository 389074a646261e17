"""No hole after the applied offset (finpulse.streams.worker.contiguity): a batch whose records
of a partition start past the state's applied offset is not processed past a hole.

The broker answers (first_offsets), the seek and the release are recorded in memory here;
tests/integration/test_first_offsets.py asks real brokers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from faust.types import TP

from finpulse.config.settings import Settings
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.topics import TRANSACTIONS
from finpulse.streams.worker.contiguity import Contiguity, Msg
from finpulse.streams.worker.pipeline import Pipeline
from tests import factories as f


class Broker:
    """What the check asks and does, and what the broker holds (first record offsets)."""

    def __init__(self, holds: dict[int, int]) -> None:
        self.holds = holds  # partition -> first record at or after any asked offset
        self.asked: list[dict[TP, int]] = []
        self.seeks: list[tuple[TP, int]] = []
        self.released: list[Any] = []
        self.generation = 1

    async def first_offsets(self, starts: Mapping[TP, int]) -> dict[TP, int | None]:
        self.asked.append(dict(starts))
        return {tp: max(o, self.holds[tp.partition]) for tp, o in starts.items()}

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))

    def release(self, batch: Sequence[Any]) -> None:
        self.released.extend(batch)


def _check(
    applied: dict[int, int], broker: Broker, committed: dict[int, int] | None = None
) -> Contiguity:
    """The check of a consumer whose state applied ``applied`` (last offset per partition)
    and whose group committed ``committed``."""
    return Contiguity(
        TRANSACTIONS,
        lambda p: None if p not in applied else applied[p] + 1,
        lambda p: (committed or {}).get(p, 0),
        broker.first_offsets,
        broker.seek,
        broker.release,
        lambda: broker.generation,
    )


def _msgs(partition: int, offsets: range) -> list[Msg]:
    return [Msg(partition, o) for o in offsets]


def test_batches_that_follow_the_applied_offset_pass_without_asking_the_broker() -> None:
    broker = Broker({})
    check = _check({0: 9, 1: 4}, broker, committed={2: 30})
    batch = _msgs(0, range(5, 15)) + _msgs(1, range(5, 8)) + _msgs(2, range(30, 31))
    # re-deliveries, the next records, and a partition taken where the group placed it
    assert asyncio.run(check.admit(batch)) == batch
    assert broker.asked == [] and broker.seeks == [] and broker.released == []


def test_a_partition_nothing_is_applied_of_is_read_from_its_start_without_a_committed_offset():
    # A worker killed before its first commit of partition 1 left no committed offset and
    # no applied one; its successor's first fetch (offsets 0-11) was dropped while recovery
    # paused the partition, and Faust's seek (to no committed offset) did not fetch it again:
    # the first batch starts at 12. It is left out and the partition read again from 0.
    broker = Broker({1: 0})
    check = _check({}, broker)

    async def scenario() -> list[list[Msg]]:
        first = await check.admit(_msgs(1, range(12, 16)))
        again = await check.admit(_msgs(1, range(0, 16)))
        return [first, again]

    first, again = asyncio.run(scenario())
    assert first == [] and again == _msgs(1, range(0, 16))
    assert broker.asked == [{TP(TRANSACTIONS, 1): 0}]
    assert broker.seeks == [(TP(TRANSACTIONS, 1), 0)]
    assert broker.released == _msgs(1, range(12, 16))


def test_a_partition_nothing_is_applied_of_is_checked_from_its_committed_offset() -> None:
    broker = Broker({0: 40})
    check = _check({}, broker, committed={0: 40})
    assert asyncio.run(check.admit(_msgs(0, range(40, 43)))) == _msgs(0, range(40, 43))
    assert broker.asked == []
    assert asyncio.run(_check({}, broker, committed={0: 40}).admit(_msgs(0, range(45, 47)))) == []
    assert broker.seeks == [(TP(TRANSACTIONS, 0), 40)]


def test_a_log_that_starts_past_zero_is_taken_from_its_first_record() -> None:
    broker = Broker({0: 500})  # retention removed 0-499
    check = _check({}, broker)
    batch = _msgs(0, range(500, 503))
    assert asyncio.run(check.admit(batch)) == batch
    assert broker.asked == [{TP(TRANSACTIONS, 0): 0}] and broker.seeks == []


def test_a_partition_starting_past_a_hole_is_left_out_and_read_again_from_the_state() -> None:
    # applied up to 10837; the batch's records of partition 0 start at 13928; the broker
    # holds 10838: partition 0 is left out, released, and read again from 10838
    broker = Broker({0: 10838})
    check = _check({0: 10837, 1: 99}, broker)
    batch = _msgs(0, range(13928, 13931)) + _msgs(1, range(100, 102))

    async def scenario() -> list[list[Msg]]:
        first = await check.admit(batch)
        stale = await check.admit(_msgs(0, range(13931, 13933)))  # fetched before the seek
        again = await check.admit(_msgs(0, range(10838, 10840)))  # the re-read
        return [first, stale, again]

    first, stale, again = asyncio.run(scenario())
    assert first == _msgs(1, range(100, 102))
    assert stale == [] and again == _msgs(0, range(10838, 10840))
    assert broker.seeks == [(TP(TRANSACTIONS, 0), 10838)]  # once
    assert broker.asked == [{TP(TRANSACTIONS, 0): 10838}]  # once
    assert broker.released == _msgs(0, range(13928, 13931)) + _msgs(0, range(13931, 13933))


def test_offsets_that_hold_no_record_at_the_broker_are_passed_over() -> None:
    broker = Broker({0: 12})  # 10 and 11 are transaction markers, say
    check = _check({0: 9}, broker)
    batch = _msgs(0, range(12, 15))
    assert asyncio.run(check.admit(batch)) == batch
    assert broker.seeks == [] and broker.released == []


def test_a_rebalance_ends_the_wait_for_a_re_read() -> None:
    broker = Broker({0: 10})
    check = _check({0: 9}, broker)

    async def scenario() -> list[Msg]:
        await check.admit(_msgs(0, range(20, 22)))  # left out, waiting for 10
        broker.generation = 2  # Faust sought every partition to its committed offset
        broker.holds = {0: 20}  # and now the broker answers 20 (say, retention)
        return await check.admit(_msgs(0, range(20, 22)))

    assert asyncio.run(scenario()) == _msgs(0, range(20, 22))
    assert len(broker.asked) == 2


def test_a_hole_inside_a_batch_leaves_out_only_the_records_after_it() -> None:
    broker = Broker({0: 13})  # the broker holds 13 and on
    check = _check({0: 9}, broker)
    batch = _msgs(0, range(10, 13)) + _msgs(0, range(20, 23))  # 13-19 missing
    assert asyncio.run(check.admit(batch)) == _msgs(0, range(10, 13))
    assert broker.seeks == [(TP(TRANSACTIONS, 0), 13)]
    assert broker.released == _msgs(0, range(20, 23))


def test_offsets_without_records_inside_a_batch_are_passed_over_and_checked_on() -> None:
    broker = Broker({0: 12})
    check = _check({0: 9}, broker)

    async def first_offsets(starts: Mapping[TP, int]) -> dict[TP, int | None]:
        broker.asked.append(dict(starts))
        # 11 is a marker (the broker's next record is 12); from 14 on it holds 14
        return {tp: {11: 12, 14: 14}[o] for tp, o in starts.items()}

    check.first_offsets = first_offsets
    batch = _msgs(0, range(10, 11)) + _msgs(0, range(12, 14)) + _msgs(0, range(20, 21))
    assert asyncio.run(check.admit(batch)) == _msgs(0, range(10, 11)) + _msgs(0, range(12, 14))
    assert broker.asked == [{TP(TRANSACTIONS, 0): 11}, {TP(TRANSACTIONS, 0): 14}]
    assert broker.seeks == [(TP(TRANSACTIONS, 0), 14)]


def test_without_an_answer_from_the_broker_the_partition_is_read_again() -> None:
    broker = Broker({})
    check = _check({0: 9}, broker)

    async def unanswered(starts: Mapping[TP, int]) -> dict[TP, int | None]:
        raise RuntimeError("no fetch answered")

    check.first_offsets = unanswered
    assert asyncio.run(check.admit(_msgs(0, range(20, 22)))) == []
    assert broker.seeks == [(TP(TRANSACTIONS, 0), 10)]


def test_a_partition_revoked_during_the_check_is_still_left_out() -> None:
    broker = Broker({0: 10})
    check = _check({0: 9}, broker)

    async def revoked(tp: TP, offset: int) -> None:
        raise RuntimeError("No current assignment for partition")

    check.seek = revoked
    assert asyncio.run(check.admit(_msgs(0, range(20, 22)))) == []
    assert broker.released == _msgs(0, range(20, 22))


def test_without_the_check_the_guard_applies_past_a_hole_and_then_skips_it() -> None:
    """Why the check exists: the guard alone is a high-water mark."""
    p = Pipeline(Settings(), stages=lambda settings, state: ())

    def txns(offsets: range) -> list[RawRecord]:
        return [RawRecord(TRANSACTIONS, 0, o, f.encode(f.transaction())) for o in offsets]

    p.process("transaction", txns(range(0, 5)))
    past_the_hole = p.process("transaction", txns(range(8, 10)))
    the_hole = p.process("transaction", txns(range(5, 8)))
    assert past_the_hole.valid_count == 2 and the_hole.valid_count == 0
