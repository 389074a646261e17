"""Bulk intake: batches of real Faust consumer messages, acknowledged through Faust's consumer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from faust.types import TP
from faust.types.tuples import ConsumerMessage

from finpulse.config.settings import Settings
from finpulse.streams.core.topics import TRANSACTIONS
from finpulse.streams.worker.app import build_app
from finpulse.streams.worker.intake import IntakeBuffer
from tests.waiting import wait_until


def _message(offset: int, generation: int = 0) -> ConsumerMessage:
    tp = TP(TRANSACTIONS, 0)
    return ConsumerMessage(
        TRANSACTIONS, 0, offset, 0.0, 0, None, b"k", b"v", None, tp=tp, generation_id=generation
    )


def _waiting_on(event: asyncio.Event) -> bool:
    """Whether a task is blocked on ``event`` (asyncio keeps its waiters' futures)."""
    return bool(event._waiters)  # type: ignore[attr-defined]


def _run(scenario: Callable[[Any, IntakeBuffer], Coroutine[Any, Any, None]]) -> None:
    async def main() -> None:
        app = build_app(Settings())
        await app.topics._update_indices()  # what subscribing does: acks enabled per topic
        app.flow_control.resume()  # Faust resumes the flow once partitions are assigned
        await scenario(app.consumer, app.bulk_intake.buffers[TRANSACTIONS])

    asyncio.run(main())


def test_take_returns_at_most_max_and_leaves_the_rest_in_order() -> None:
    async def scenario(consumer: Any, buf: IntakeBuffer) -> None:
        for i in range(5):
            buf.put(_message(i))
        first = await buf.take(3, 0.01, consumer)
        second = await buf.take(3, 0.01, consumer)
        assert [m.offset for m in first] == [0, 1, 2]
        assert [m.offset for m in second] == [3, 4]

    _run(scenario)


def test_take_waits_within_for_a_full_batch_and_no_longer() -> None:
    async def scenario(consumer: Any, buf: IntakeBuffer) -> None:
        buf.put(_message(0))
        taking = asyncio.ensure_future(buf.take(3, 5.0, consumer))
        await wait_until(lambda: _waiting_on(buf._ready), 2.0, "take waiting to fill its batch")
        buf.put(_message(1))
        buf.put(_message(2))
        buf.notify()  # the drain loop's end of a fetch
        full = await asyncio.wait_for(taking, 2.0)  # full before `within`
        assert [m.offset for m in full] == [0, 1, 2]
        buf.put(_message(3))
        partial = await asyncio.wait_for(buf.take(3, 0.05, consumer), 2.0)  # `within` ran out
        assert [m.offset for m in partial] == [3]

    _run(scenario)


def test_taken_messages_are_tracked_until_their_final_ack_reaches_the_consumer() -> None:
    async def scenario(consumer: Any, buf: IntakeBuffer) -> None:
        buf.put(_message(0))
        (m,) = await buf.take(10, 0.01, consumer)
        assert m in consumer.unacked and m.refcount == 1
        assert m.ack(consumer) is True
        assert m not in consumer.unacked
        assert list(consumer._acked[m.tp]) == [0]

    _run(scenario)


def test_taken_messages_handed_back_unprocessed_hold_nothing_and_are_not_acked() -> None:
    async def scenario(consumer: Any, buf: IntakeBuffer) -> None:
        buf.put(_message(0))
        (m,) = await buf.take(10, 0.01, consumer)
        consumer.app.bulk_intake.release(consumer)([m])
        assert m not in consumer.unacked and m.refcount == 0 and not m.acked
        assert not consumer._acked[m.tp]  # read again later, acknowledged then

    _run(scenario)


def test_messages_of_an_earlier_consumer_generation_are_dropped() -> None:
    async def scenario(consumer: Any, buf: IntakeBuffer) -> None:
        consumer.app.consumer_generation_id = 2
        buf.put(_message(0, generation=1))
        buf.put(_message(1, generation=2))
        taken = await asyncio.wait_for(buf.take(10, 0.01, consumer), 2.0)
        assert [m.offset for m in taken] == [1]
        assert len(consumer.unacked) == 1

    _run(scenario)


def test_a_full_buffer_holds_the_drain_until_a_take_makes_room() -> None:
    async def scenario(consumer: Any, buf: IntakeBuffer) -> None:
        buf.maxsize = 2
        assert buf.put(_message(0)) is False
        assert buf.put(_message(1)) is True  # full: the drain loop waits for room
        room = asyncio.ensure_future(buf.wait_for_space())
        await wait_until(lambda: _waiting_on(buf._space), 2.0, "the drain waiting for room")
        assert not room.done()
        assert [m.offset for m in await buf.take(1, 0.01, consumer)] == [0]
        await asyncio.wait_for(room, 2.0)

    _run(scenario)


def test_nothing_is_taken_or_dropped_while_a_rebalance_suspends_the_flow() -> None:
    async def scenario(consumer: Any, buf: IntakeBuffer) -> None:
        buf.put(_message(0))
        consumer.app.flow_control.suspend()
        taking = asyncio.ensure_future(buf.take(10, 0.01, consumer))
        flow = consumer.app.flow_control
        await wait_until(lambda: _waiting_on(flow._resume), 2.0, "take waiting out the rebalance")
        assert not taking.done() and not consumer.unacked and len(buf) == 1
        consumer.app.flow_control.resume()
        assert [m.offset for m in await asyncio.wait_for(taking, 2.0)] == [0]

    _run(scenario)


def test_a_refetch_after_a_seek_back_supersedes_the_buffer_without_a_hole() -> None:
    """The regression: messages dropped around a rebalance, then the ones fetched again after
    the seek back dropped as duplicates: a hole the re-delivery guard skipped for good."""

    async def scenario(consumer: Any, buf: IntakeBuffer) -> None:
        for offset in (3, 4, 5):  # fetched before the rebalance, beyond the committed 1
            buf.put(_message(offset))
        for offset in (1, 2, 3, 4, 5, 6):  # the seek back to 1: fetched again from there
            buf.put(_message(offset))
        taken = await asyncio.wait_for(buf.take(10, 0.01, consumer), 2.0)
        assert [m.offset for m in taken] == [1, 2, 3, 4, 5, 6]

    _run(scenario)


def test_a_message_fetched_again_after_a_seek_is_held_once_in_offset_order() -> None:
    async def scenario(consumer: Any, buf: IntakeBuffer) -> None:
        for offset in (0, 1, 2, 0, 1, 2, 3):  # the seek to the committed offset 0 refetches
            buf.put(_message(offset))
        assert [m.offset for m in buf.messages] == [0, 1, 2, 3]
        buf.put(_message(1, generation=1))  # a rebalance: fetched again from offset 1
        assert [m.offset for m in buf.messages][-1:] == [1]

    _run(scenario)
