"""Every board, in menu order; add a board here, add a panel in its own module.

>>> [b.uid for b in BOARDS][:2]
['finpulse-risk-overview', 'finpulse-service-quality']
"""

from __future__ import annotations

from finpulse.config.boards import (
    alerts_board,
    model_health,
    pipeline_health,
    risk_overview,
    service_quality,
    service_risk,
)
from finpulse.config.boards.spec import BoardSpec

BOARDS: tuple[BoardSpec, ...] = (
    risk_overview.BOARD,
    service_quality.BOARD,
    alerts_board.BOARD,
    model_health.BOARD,
    service_risk.BOARD,
    pipeline_health.BOARD,
)

# Tables the panels read that other branches are adding; a panel on one of these is checked
# against ClickHouse once the table exists (the tests list which ones are still pending).
PENDING_TABLES: frozenset[str] = frozenset()

FOLDER_UID = "finpulse"
FOLDER_TITLE = "finpulse"
