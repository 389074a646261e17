"""A worker whose first move of input partitions to the state's position waits until a fetch
from the group's position has reached the intake: the order a restart without committed
offsets takes by chance, forced (``tests/integration/test_resume_positions.py``).

By chance, because the fetch from the group's position (offset 0) can also come before the
partitions are resumed: Faust then drops it, aiokafka's position is past it, and its seek to
the committed offsets leaves a partition at offset 0 where it is. So the first time, the
partitions about to move are sought to offset 0 after Faust's seek, and the move waits for
a fetch from there.

Run as the worker's module: ``python -m tests.integration.fetch_before_move worker``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from faust.transport import consumer as faust_consumer

from finpulse.streams.cli import main
from finpulse.streams.core.topics import TRANSACTIONS
from tests.waiting import wait_until

WAIT_S = 30.0

_faust_seek = faust_consumer.Consumer.perform_seek
_forced: list[bool] = []


def _below_the_state(consumer: Any) -> dict[Any, int]:
    """The transactions partitions about to move (no committed offset, state applied), with
    the position they move to."""
    applied = consumer.app.applied_positions(consumer.assignment())
    return {
        tp: n
        for tp, n in applied.items()
        if tp.topic == TRANSACTIONS and n > 0 and consumer._committed_offset.get(tp) is None
    }


async def _seek_then_fetch(consumer: Any) -> None:
    """Faust's seek to the committed offsets; the first time, then a seek of every partition
    about to move to offset 0, and a wait until the intake holds a message fetched of each
    below its new position."""
    await _faust_seek(consumer)
    if _forced:
        return
    _forced.append(True)
    moving = _below_the_state(consumer)
    assert moving, "no partition to move: the test's premise does not hold"
    for tp in moving:
        await consumer.seek(tp, 0)  # where the group's committed offset (0) places it
    buffer = consumer.app.bulk_intake.buffers[TRANSACTIONS]

    def fetched_below() -> bool:
        return all(
            any(m.tp == tp and m.offset < n for m in buffer.messages) for tp, n in moving.items()
        )

    await wait_until(fetched_below, WAIT_S, f"a fetch below {moving} in the intake")
    held = sum(1 for m in buffer.messages if m.tp in moving and m.offset < moving[m.tp])
    logging.getLogger(__name__).warning(
        "fetch before move: the intake holds %d messages below %s", held, moving
    )


if __name__ == "__main__":
    faust_consumer.Consumer.perform_seek = _seek_then_fetch  # type: ignore[method-assign]
    sys.exit(main())
