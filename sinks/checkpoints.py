"""Model checkpoints in ClickHouse: written as ``model_checkpoints`` rows, latest one restored.

Why ClickHouse and not the data_dir: workers are disposable (containers, scaled by
partitions, rescheduled on other hosts), ClickHouse is already the durable store every
worker reaches, and a checkpoint written as a row of the batch's output is stored by the
same idempotent sink before the batch is acknowledged. A fresh worker process on any host
restores the newest blob of its model. Blobs are pickles: the table is trusted, written
only by finpulse workers.

>>> row = checkpoint_row("risk", "risk-v1+3", 3, {"w": 1.0}, created_at=_EPOCH)
>>> row[0], row[1], row[3], loads_blob(row[5])
('risk:risk-v1+3:0', 'risk', 'risk-v1+3', {'w': 1.0})
>>> checkpoint_row("risk", "risk-v1+3", 3, {}, position=17)[0]
'risk:risk-v1+3:@17'
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
    """A ``model_checkpoints`` row holding ``obj`` (pickled, base64). With the learning-stream
    ``position`` it includes, the id names that position instead of the time: the
    checkpoints several workers write at one position share their id."""
    at = created_at or datetime.now(UTC)
    millis = int((at - _EPOCH).total_seconds() * 1000)
    suffix = millis if position is None else f"@{position}"
    checkpoint_id = no_card_runs(f"{model}:{version}:{suffix}")
    return (checkpoint_id, model, at, version, n_learned, dumps_blob(obj))


class ClickHouseCheckpoints:
    """Reads the newest checkpoint of a model; connects on each (rare) load, not at init."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def load_latest(self, model: str) -> Any | None:
        from finpulse.sinks.clickhouse import make_client

        client = make_client(self.settings)
        try:
            rows = client.query(
                f"SELECT blob, model_version FROM {MODEL_CHECKPOINTS_TABLE.name} "
                "WHERE model = {model:String} ORDER BY created_at DESC LIMIT 1",
                parameters={"model": model},
            ).result_rows
        finally:
            client.close()
        if not rows:
            log.info("no checkpoint of %s yet; starting fresh", model)
            return None
        log.info("restoring %s from checkpoint %s", model, rows[0][1])
        return loads_blob(rows[0][0])


class MemoryCheckpoints:
    """Checkpoints kept in a dict (offline replay and unit tests).

    >>> store = MemoryCheckpoints()
    >>> store.save_row(checkpoint_row("m", "v1", 0, [1, 2]))
    >>> store.load_latest("m"), store.load_latest("other")
    ([1, 2], None)
    """

    def __init__(self) -> None:
        self.blobs: dict[str, str] = {}

    def save_row(self, row: tuple[Any, ...]) -> None:
        self.blobs[row[1]] = row[5]

    def load_latest(self, model: str) -> Any | None:
        blob = self.blobs.get(model)
        return None if blob is None else loads_blob(blob)
