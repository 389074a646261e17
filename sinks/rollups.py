"""The boards' 1-minute rollups (migration 0030): names, and bringing them up to date now.

The rollups are refreshable materialized views recomputed from the deduplicated raw tables
every 30 s (see the migration for why). Tests, ``make demo`` and the HTML board call
:func:`refresh_rollups` so that what they show includes the last rows stored.

>>> ROLLUP_REFRESH_VIEWS[0]
'transactions_1m_refresh'
"""

from __future__ import annotations

import time
from typing import Any

ROLLUP_VIEWS: tuple[str, ...] = ("transactions_1m", "interactions_1m", "deadletters_1m")
ROLLUP_REFRESH_VIEWS: tuple[str, ...] = tuple(f"{v}_refresh" for v in ROLLUP_VIEWS)


class RollupRefreshError(RuntimeError):
    """A rollup refresh failed or did not finish in time."""


def refresh_rollups(client: Any, database: str, timeout_s: float = 30.0) -> None:
    """Run every rollup refresh now and return once each has succeeded after this call."""
    # last_success_time is the start of the last successful refresh, in whole seconds: wait for
    # the server clock to pass the second in which every earlier insert had finished, so only a
    # refresh that started after them counts.
    (started,) = client.query("SELECT now()").result_rows[0]
    deadline = time.monotonic() + timeout_s
    while client.query("SELECT now()").result_rows[0][0] <= started:
        time.sleep(0.05)
    pending = set(ROLLUP_REFRESH_VIEWS)
    while pending:
        for view in sorted(pending):  # (again, if a refresh already running absorbed ours)
            client.command(f"SYSTEM REFRESH VIEW {database}.{view}")
        for view in sorted(pending):
            client.command(f"SYSTEM WAIT VIEW {database}.{view}")
        rows = client.query(
            "SELECT view, last_success_time, exception FROM system.view_refreshes "
            f"WHERE database = '{database}'"
        ).result_rows
        for view, last_success, exception in rows:
            if view in pending and last_success is not None and last_success > started:
                pending.discard(view)
            elif view in pending and exception:
                raise RollupRefreshError(f"{database}.{view}: {exception}")
        if pending and time.monotonic() > deadline:
            raise RollupRefreshError(f"rollups not refreshed after {timeout_s}s: {pending}")
        if pending:
            time.sleep(0.05)  # inside a deadline: the refresh runs on the server's scheduler
