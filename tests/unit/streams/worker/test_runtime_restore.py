"""The worker restores its models once, off the event loop, before any batch; while the
checkpoint store cannot be read it waits and retries instead of scoring with fresh models."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, ClassVar

from finpulse.config.settings import Settings
from finpulse.streams.core.batch import BatchOutput, Valid
from finpulse.streams.worker.pipeline import Pipeline
from finpulse.streams.worker.runtime import Runtime


class Flaky:
    """A model stage whose store answers on the third try."""

    name: ClassVar[str] = "flaky"
    kinds: ClassVar[frozenset[str]] = frozenset({"transaction"})
    state_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self.tries = 0
        self.threads: set[int] = set()

    def restore(self) -> None:
        self.threads.add(threading.get_ident())
        self.tries += 1
        if self.tries < 3:
            raise ConnectionError("ClickHouse down")

    def process(self, kind: str, batch: Valid, out: BatchOutput) -> None:
        pass


def test_restore_retries_off_the_loop_and_runs_once_for_every_caller() -> None:
    stage = Flaky()
    settings = Settings(sink_retry_max_s=0.05)
    pipeline = Pipeline(settings, stages=lambda s, st: (stage,))

    async def scenario() -> Any:
        async def publish(messages: Any) -> None:
            pass

        runtime = Runtime(settings, publish, pipeline, sinks={})
        loop_thread = threading.get_ident()
        await asyncio.gather(*(runtime.restore_models() for _ in range(3)))  # three agents
        await runtime.restore_models()  # later callers: already done
        return loop_thread

    loop_thread = asyncio.run(scenario())
    assert stage.tries == 3  # two failures, then once: not once per agent
    assert loop_thread not in stage.threads  # never on the event loop


def test_the_first_batch_waits_for_the_restore_then_the_learning_feeds(
    monkeypatch: Any, caplog: Any
) -> None:
    from finpulse.streams.worker import runtime as runtime_module

    monkeypatch.setattr(runtime_module, "CATCH_UP_WAIT_S", 0.05)
    stage = Flaky()
    settings = Settings(sink_retry_max_s=0.05)
    pipeline = Pipeline(settings, stages=lambda s, st: (stage,))
    order: list[str] = []

    async def scenario() -> None:
        async def publish(messages: Any) -> None:
            pass

        runtime = Runtime(settings, publish, pipeline, sinks={})
        caught_up, never = asyncio.Event(), asyncio.Event()

        async def feed() -> None:  # a learning feed: learns once the models are restored
            await runtime.restore_models()
            order.append(f"feed after {stage.tries} restore tries")
            caught_up.set()

        runtime.catch_ups += [caught_up.wait, never.wait]
        task = asyncio.ensure_future(feed())
        await asyncio.gather(runtime.ready(), runtime.ready())  # two agents
        order.append("first batch")
        await task

    with caplog.at_level("WARNING"):
        asyncio.run(scenario())
    assert order == ["feed after 3 restore tries", "first batch"]
    assert "was not learned to its end" in caplog.text  # the feed that never caught up
