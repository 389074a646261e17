"""Every board, in menu order; add a board here, add a panel in its own module.

>>> [b.uid for b in BOARDS][:2]
['finpulse-risk-overview', 'finpulse-service-quality']
"""

from __future__ import annotations

from collections.abc import Mapping

from finpulse.config.boards import (
    alerts_board,
    model_health,
    pipeline_health,
    risk_overview,
    service_quality,
    service_risk,
)
from finpulse.config.boards.spec import BoardSpec
from finpulse.config.settings import DEFAULT_RESPONSE_TARGETS


def boards(
    response_targets: Mapping[str, float] = DEFAULT_RESPONSE_TARGETS,
) -> tuple[BoardSpec, ...]:
    """Every board; the Alerts board with these response targets (setting
    ``response_target_minutes``)."""
    return (
        risk_overview.BOARD,
        service_quality.BOARD,
        alerts_board.board(response_targets),
        model_health.BOARD,
        service_risk.BOARD,
        pipeline_health.BOARD,
    )


BOARDS = boards()

# Tables the panels read that other branches are adding; a panel on one of these is checked
# against ClickHouse once the table exists (the tests list which ones are still pending).
PENDING_TABLES: frozenset[str] = frozenset()

FOLDER_UID = "finpulse"
FOLDER_TITLE = "finpulse"
