"""Checkpoint and restore of a worker's online models: a pickle in the data directory.

The satisfaction model is per worker (it learns from the surveys of the partitions the
worker holds), so it is not in a changelog-backed table; it is pickled atomically (temp
file + rename) every N surveys and restored when the stage first runs.

>>> import tempfile, pathlib
>>> cp = Checkpoint(pathlib.Path(tempfile.mkdtemp()) / "m.pkl")
>>> cp.load() is None
True
>>> cp.save({"n": 3}); cp.load()
{'n': 3}
"""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class Checkpoint:
    """One pickle file holding a model and its metrics."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def save(self, obj: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, self.path)

    def load(self) -> Any:
        """The saved object, or None when there is none (or it cannot be read)."""
        if not self.path.exists():
            return None
        try:
            with self.path.open("rb") as fh:
                return pickle.load(fh)  # our own file in our own data directory
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError) as exc:
            log.warning("ignoring unreadable checkpoint %s: %s", self.path, exc)
            return None
