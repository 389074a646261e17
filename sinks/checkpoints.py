"""Model checkpoints in ClickHouse: written as ``model_checkpoints`` rows, latest one restored.

Why ClickHouse and not the data_dir: workers are disposable (containers, scaled by
partitions, rescheduled on other hosts), ClickHouse is already the durable store every
worker reaches, and a checkpoint written as a row of the batch's output is stored by the
same idempotent sink before the batch is acknowledged. Blobs are pickles: the table is
trusted, written only by finpulse workers.

**Latest is furthest.** A row holds the learning-stream position its model learned to. A
fresh worker process on any host restores the checkpoint of the highest position, the
newest of them if several: a worker that replays the stream behind the others writes
checkpoints at older positions with newer times, and they never win. The table keeps one
row per (model, position) (a ``ReplacingMergeTree`` on that key, the newest kept): every
worker checkpoints at the same positions, and their rows collapse into one. Position -1:
a checkpoint of no learning stream (rows from before the positions were kept).

>>> row = checkpoint_row("risk", "risk-v1+3", 3, {"w": 1.0}, created_at=_EPOCH)
>>> row[0], row[1], row[3], loads_blob(row[5]), row[6]
('risk:risk-v1+3:0', 'risk', 'risk-v1+3', {'w': 1.0}, -1)
>>> checkpoint_row("risk", "risk-v1+3", 3, {}, position=17)[::6]
('risk:risk-v1+3:@17', 17)
"""

from __future__ import annotations

import base64
import logging
import pickle
from datetime import UTC, datetime
from typing import Any, Protocol

from finpulse.config.settings import Settings
from finpulse.models.ids import no_card_runs
from finpulse.sinks.tables import MODEL_CHECKPOINTS_TABLE

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NO_POSITION = -1  # the position column of a checkpoint of no learning stream


class CheckpointStore(Protocol):
    """Where a stage finds the latest checkpoint of a model (writes go out as rows)."""

    def load_latest(self, model: str) -> Any | None: ...


def dumps_blob(obj: Any) -> str:
    return base64.b64encode(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)).decode()


def loads_blob(blob: str) -> Any:
    """The object of a checkpoint blob, or None (logged) for one this release cannot read,
    e.g. written by a release whose model classes have since changed: the model then starts
    fresh rather than the worker failing.

    >>> loads_blob(dumps_blob([1])), loads_blob("bm90IGEgcGlja2xl")
    ([1], None)
    """
    try:
        return pickle.loads(base64.b64decode(blob))  # trusted table, see module doc
    except (pickle.UnpicklingError, AttributeError, ImportError, EOFError, ValueError) as exc:
        log.warning("ignoring a checkpoint this release cannot read: %r", exc)
        return None


def checkpoint_row(
    model: str,
    version: str,
    n_learned: int,
    obj: Any,
    created_at: datetime | None = None,
    position: int | None = None,
) -> tuple[Any, ...]:
    """A checkpoint row (:data:`~finpulse.sinks.tables.MODEL_CHECKPOINTS_TABLE`) holding
    ``obj`` (pickled, base64) and the learning-stream ``position`` it includes (-1: none).
    With a position, the id names it instead of the time: the checkpoints several workers
    write at one position share their id."""
    at = created_at or datetime.now(UTC)
    millis = int((at - _EPOCH).total_seconds() * 1000)
    suffix = millis if position is None else f"@{position}"
    checkpoint_id = no_card_runs(f"{model}:{version}:{suffix}")
    where = NO_POSITION if position is None else position
    return (checkpoint_id, model, at, version, n_learned, dumps_blob(obj), where)


class ClickHouseCheckpoints:
    """Reads the latest checkpoint of a model (the module text: the highest position, then
    the newest); connects on each (rare) load, not at init."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def load_latest(self, model: str) -> Any | None:
        from finpulse.sinks.clickhouse import make_client

        client = make_client(self.settings)
        try:
            rows = client.query(
                f"SELECT blob, model_version, position FROM {MODEL_CHECKPOINTS_TABLE.name} "
                "WHERE model = {model:String} ORDER BY position DESC, created_at DESC LIMIT 1",
                parameters={"model": model},
            ).result_rows
        finally:
            client.close()
        if not rows:
            log.info("no checkpoint of %s yet; starting fresh", model)
            return None
        blob, version, position = rows[0]
        log.info("restoring %s from checkpoint %s (learning-stream position %d)",
                 model, version, position)  # fmt: skip
        return loads_blob(blob)


class MemoryCheckpoints:
    """Checkpoints kept in a dict (offline replay and unit tests), the latest as ClickHouse
    finds it: the highest position, then the newest.

    >>> store = MemoryCheckpoints()
    >>> store.save_row(checkpoint_row("m", "v1", 0, [1, 2], position=8))
    >>> store.save_row(checkpoint_row("m", "v0", 0, [1], position=5))  # a replaying worker
    >>> store.load_latest("m"), store.load_latest("other")
    ([1, 2], None)
    """

    def __init__(self) -> None:
        self.latest: dict[str, tuple[Any, ...]] = {}  # model -> its latest row

    def save_row(self, row: tuple[Any, ...]) -> None:
        kept = self.latest.get(row[1])
        if kept is None or (row[6], row[2]) >= (kept[6], kept[2]):
            self.latest[row[1]] = row

    def load_latest(self, model: str) -> Any | None:
        row = self.latest.get(model)
        return None if row is None else loads_blob(row[5])
