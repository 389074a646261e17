"""Start a Faust worker the way finpulse runs it: quiet, with the collector tuned.

>>> make_worker(Settings(), "warning").spinner is None
True
"""

from __future__ import annotations

import sys
from typing import Any

from finpulse.config.settings import Settings
from finpulse.streams.worker.startup import StartupClock


def quiet_worker(app: Any, loglevel: str) -> Any:
    """A Faust worker for ``app`` logging at ``loglevel``, without Faust's terminal spinner.

    The spinner would set the ROOT logger to DEBUG so that it spins on every record; every
    aiokafka/Faust debug call then builds a LogRecord (a cost at saturation, docs/benchmarks.md).
    Without it the root logger keeps ``loglevel``.
    """
    from faust.worker import Worker

    worker = Worker(app, loglevel=loglevel, redirect_stdouts=False)
    worker.spinner = None
    return worker


def make_worker(settings: Settings, loglevel: str, startup: StartupClock | None = None) -> Any:
    """The worker of :func:`finpulse.streams.worker.app.build_app` (see :func:`quiet_worker`);
    ``startup`` notes when its modules are imported and its app is built."""
    startup = startup or StartupClock()
    from finpulse.streams.worker.app import build_app

    startup.mark("imported")
    app = build_app(settings, startup)
    startup.mark("app_built")
    return quiet_worker(app, loglevel)


def tune_gc(settings: Settings) -> None:
    """Raise the cyclic GC's first threshold: per-customer state is many small, long-lived
    containers, and default collections are costly on the scoring path (docs/benchmarks.md); and set
    the GIL switch interval (``gil_switch_interval_s``)."""
    import gc

    if settings.gc_threshold0:
        gc.set_threshold(settings.gc_threshold0, 50, 1000)
    sys.setswitchinterval(settings.gil_switch_interval_s)


def freeze_startup_heap() -> None:
    """Move every object made so far (modules, the app, its stages and models) out of the
    cyclic collector's reach for the life of the process (``gc.freeze``). They live as long
    as the worker, and a full collection no longer walks them: Faust's RocksDB store runs one
    per table on every rebalance, which took ~0.45 s each on the start-up heap (7 tables:
    ~3 s per rebalance, longer than Tansu's 2 s session timeout in the local stack).

    >>> import gc
    >>> freeze_startup_heap(); frozen = gc.get_freeze_count(); gc.unfreeze()
    >>> frozen > 0
    True
    """
    import gc

    gc.collect()  # what is garbage now is not frozen
    gc.freeze()
