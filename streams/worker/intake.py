"""Bulk intake: the worker's input messages in lists, beneath Faust's per-message stream path.

Faust hands every fetched message to its conductor, which decodes it into an event, puts
it on each subscribed channel's queue, and the agent's stream takes it from there one at
a time (``take_events``). At saturation that path alone is costly (docs/benchmarks.md) per
event (``python -m finpulse.streams.tools.bench_faust_floor``). For the topics registered here, the
consumer's ``getmany`` (:mod:`finpulse.streams.worker.faust_adapter`) appends each message to the
topic's
:class:`IntakeBuffer` instead, and the agent takes whole lists with :meth:`IntakeBuffer.take`.

What Faust's path did and this one keeps:

- **Acknowledgement.** A taken message is tracked as unacknowledged by the consumer (what
  rebalances and shutdown wait for) and holds one reference; ``message.ack(consumer)``
  releases it, and the consumer commits offsets only past acknowledged messages.
- **Rebalance.** Nothing is taken, and nothing dropped, while Faust's flow control is
  suspended (a rebalance is under way); a message fetched in an earlier consumer generation
  is dropped when taken: after a rebalance Faust seeks back to the committed offsets.
- **Backpressure.** The drain loop waits while a buffer holds ``maxsize`` messages.

What it does differently: Faust clears its stream queues whenever the flow resumes,
including after recovery, when the stream partitions are already fetching and the seek to
the committed offsets is still under way. A message fetched in that window was dropped, and
on a partition that had no committed offset yet the seek does not fetch it again: it was
lost until the next rebalance (a restarted worker that never saw a partition's first events;
reproduced with the restart tests; faust-streaming/faust#596 describes the same race). The
buffers are never cleared. A message fetched again after a seek back (an offset below the
partition's next) supersedes what the buffer holds of that partition from its offset on:
every partition is taken in offset order without a hole, which the pipeline's re-delivery
guard (the last offset applied per partition) relies on.

After an assignment, input partitions can move forward to the state's applied position
(:mod:`finpulse.streams.worker.positions`). A fetch taken from the old position before the
move can already be in a buffer, or still on its way: :meth:`BulkIntake.resume_at` drops
what is held below the new position and sets it as the partition's floor, below which
nothing fetched later is put; :meth:`BulkIntake.moving` holds every take while the
positions are decided, so nothing below them is handed out in between.

>>> from faust.types import TP
>>> class M:
...     def __init__(self, offset): self.tp, self.offset, self.generation_id = TP("t", 0), offset, 1
>>> buf = IntakeBuffer(maxsize=8)
>>> [buf.put(M(o)) for o in (0, 1, 2, 1, 2, 3)]  # 1 and 2 fetched again after a seek
[False, False, False, False, False, False]
>>> [m.offset for m in buf.messages]
[0, 1, 2, 3]
>>> buf.drop_below(TP("t", 0), 2)  # the partition moved to offset 2
>>> [m.offset for m in buf.messages], buf.below_floor(TP("t", 0), 1)
([2, 3], True)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any


def _no_tracking(consumer: Any) -> set[Any]:
    return set()  # an intake outside a Faust worker (tests): nothing waits on acks


class IntakeBuffer:
    """The fetched, not yet taken messages of one topic (oldest first)."""

    def __init__(self, maxsize: int, unacked: Callable[[Any], Any] = _no_tracking) -> None:
        self.maxsize = maxsize
        self.unacked = unacked  # the consumer's set of taken, unacknowledged messages
        self.messages: list[Any] = []
        self._generation: int | None = None
        self._next_offset: dict[Any, int] = {}  # per partition, in ``_generation``
        # per partition, in ``_generation``: the first and the newest message put (lag)
        self.first_fetched: dict[Any, Any] = {}
        self.newest_fetched: dict[Any, Any] = {}
        self.floors: dict[Any, int] = {}  # per partition: the position it was moved to
        self._ready = asyncio.Event()  # set while messages wait to be taken
        self._settled = asyncio.Event()  # cleared while input positions move: nothing taken
        self._settled.set()
        self._space = asyncio.Event()  # set while there is room below ``maxsize``
        self._space.set()

    def __len__(self) -> int:
        return len(self.messages)

    def put(self, message: Any) -> bool:
        """Append one message; ``True`` when the buffer is now full (the drain should wait).

        A message at an offset already put in the same consumer generation is dropped (it
        was fetched again after a seek back to the committed offset).
        """
        if message.generation_id != self._generation:
            self._generation = message.generation_id
            self._next_offset, self.first_fetched, self.newest_fetched = {}, {}, {}
        tp, offset = message.tp, message.offset
        next_offset = self._next_offset.get(tp)
        if tp not in self.first_fetched:
            self.first_fetched[tp] = message
        if next_offset is not None and offset < next_offset:
            # Fetched again from ``offset`` (the consumer sought back to a committed offset):
            # that supersedes what the buffer holds of the partition from there on, so it is
            # taken again in order, without a hole (one the re-delivery guard, a high-water
            # mark, would skip over for good). Taken messages are re-deliveries: skipped.
            self.messages = [m for m in self.messages if m.tp != tp or m.offset < offset]
        self._next_offset[tp] = offset + 1
        self.newest_fetched[tp] = message
        messages = self.messages
        messages.append(message)
        if len(messages) >= self.maxsize:
            self._space.clear()
            self._ready.set()
            return True
        return False

    def below_floor(self, tp: Any, offset: int) -> bool:
        """Whether ``offset`` of ``tp`` lies below the position the partition was moved to
        (applied already: not put)."""
        return offset < self.floors.get(tp, -1)

    def drop_below(self, tp: Any, offset: int) -> None:
        """``tp`` moved to ``offset``: drop what the buffer holds of it below, and make
        ``offset`` its floor (:meth:`below_floor`) for what a fetch taken before still brings."""
        self.floors[tp] = offset
        self.messages = [m for m in self.messages if m.tp != tp or m.offset >= offset]
        kept = [m for m in self.messages if m.tp == tp]
        if kept:
            self.first_fetched[tp] = kept[0]
        else:  # the first fetch after the move sets them again
            self.first_fetched.pop(tp, None)
            self.newest_fetched.pop(tp, None)
        if len(self.messages) < self.maxsize:
            self._space.set()

    def notify(self) -> None:
        """Wake the taker if messages wait (the drain loop calls this after each fetch)."""
        if self.messages:
            self._ready.set()

    async def wait_for_space(self) -> None:
        await self._space.wait()

    async def take(self, max_: int, within: float, consumer: Any) -> list[Any]:
        """Up to ``max_`` messages: waits for the first, then up to ``within`` s for ``max_``.

        Each returned message is tracked by ``consumer`` and holds one reference until
        ``message.ack(consumer)``. Messages taken while Faust's flow control is suspended
        or fetched in an earlier consumer generation are dropped (see the module docstring).
        """
        flow = consumer.app.flow_control
        while True:
            await flow.acquire()  # wait out a rebalance
            await self._settled.wait()  # wait out a move of input partitions
            while not self.messages:
                self._ready.clear()
                await self._ready.wait()
            deadline = time.monotonic() + within
            while len(self.messages) < max_:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._ready.clear()
                try:
                    await asyncio.wait_for(self._ready.wait(), left)
                except TimeoutError:
                    break
            if not (flow.is_active() and self._settled.is_set()):
                continue  # a rebalance or a move holds the intake: take nothing, drop nothing
            batch = _track(self._pop(max_), consumer, self.unacked(consumer))
            if batch:
                return batch

    def _pop(self, max_: int) -> list[Any]:
        messages = self.messages
        if len(messages) <= max_:
            batch, self.messages = messages, []
        else:
            batch, self.messages = messages[:max_], messages[max_:]
        if len(self.messages) < self.maxsize:
            self._space.set()
        return batch


def _track(batch: list[Any], consumer: Any, unacked: Any) -> list[Any]:
    """The messages of ``batch`` tracked as taken; those fetched in an earlier consumer
    generation are dropped (after a rebalance Faust seeks back to the committed offsets)."""
    generation = consumer.app.consumer_generation_id
    kept = []
    for m in batch:
        if m.generation_id != generation:
            continue  # fetched before a rebalance: fetched again from the committed offset
        m.tracked = True
        m.incref()
        unacked.add(m)
        kept.append(m)
    return kept


def untrack(batch: Sequence[Any], consumer: Any, unacked: Any) -> None:
    """Undo :func:`_track` for messages taken but left unprocessed, to be read again: they
    hold no reference and nothing waits on their acknowledgement (a rebalance would)."""
    for m in batch:
        m.tracked = False
        m.decref()
        unacked.discard(m)


class BulkIntake:
    """The intake buffers of an app, by topic name."""

    def __init__(self, maxsize: int, unacked: Callable[[Any], Any] = _no_tracking) -> None:
        self.maxsize = maxsize
        self.unacked = unacked
        self.buffers: dict[str, IntakeBuffer] = {}

    def subscribe(self, app: Any, topic: Any) -> IntakeBuffer:
        """The buffer of ``topic`` (a Faust topic of one name); the app's consumer subscribes it.

        Call while building the app, before the worker starts, so the topic is in the
        consumer's first subscription.
        """
        (name,) = topic.topics
        buf = self.buffers.get(name)
        if buf is None:
            buf = self.buffers[name] = IntakeBuffer(self.maxsize, self.unacked)
            app.topics.add(topic.clone(is_iterator=True))  # what iterating the topic does
        return buf

    def notify(self) -> None:
        for buf in self.buffers.values():
            buf.notify()

    @contextlib.contextmanager
    def moving(self) -> Iterator[None]:
        """Hold every take while input partitions move to their resume positions."""
        for buf in self.buffers.values():
            buf._settled.clear()
        try:
            yield
        finally:
            for buf in self.buffers.values():
                buf._settled.set()

    def resume_at(self, positions: Mapping[Any, int]) -> None:
        """Input partitions moved to ``positions`` (after an assignment; the previous moves'
        floors are lifted): nothing below them is held or put (:meth:`IntakeBuffer.drop_below`).

        >>> from faust.types import TP
        >>> class M:
        ...     def __init__(self, o): self.tp, self.offset, self.generation_id = TP("t", 0), o, 1
        >>> intake = BulkIntake(maxsize=8)
        >>> buf = intake.buffers["t"] = IntakeBuffer(8)
        >>> [buf.put(M(o)) for o in (0, 1)]  # fetched from the start before the move
        [False, False]
        >>> intake.resume_at({TP("t", 0): 5})
        >>> len(buf), buf.below_floor(TP("t", 0), 4), buf.below_floor(TP("t", 0), 5)
        (0, True, False)
        """
        for buf in self.buffers.values():
            buf.floors.clear()
        for tp, offset in positions.items():
            if tp.topic in self.buffers:
                self.buffers[tp.topic].drop_below(tp, offset)

    def release(self, consumer: Any) -> Callable[[Sequence[Any]], None]:
        """How taken messages are handed back unprocessed (:func:`untrack`)."""
        return lambda batch: untrack(batch, consumer, self.unacked(consumer))


def acknowledger(messages: Sequence[Any], consumer: Any) -> Callable[[], None]:
    """The acknowledgement of ``messages`` taken from the intake: called once their
    batch is committed, it releases their offsets to Faust's periodic commit."""

    def acknowledge() -> None:
        for m in messages:
            m.ack(consumer)

    return acknowledge
