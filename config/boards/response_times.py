"""The risk team's own service quality: how fast owners respond to and resolve alerts.

An alert's clock starts at its first firing (``first_seen``, event time) and stops at the
first console action that changed its state (acknowledge, assign or resolve: the
*response*) and at the first that resolved it (the *resolution*), read from
``alert_actions``. Actions after the board's range end are not counted, so a board looked at
in the past shows what was true then. Silenced alerts were never sent and are left out.

Each owner team has a response target in minutes (setting ``response_target_minutes``,
``'*'`` for every other team); the queries carry it as one SQL expression:

>>> target_minutes_sql({"*": 60, "fraud-oncall": 15})
"multiIf(owner = 'fraud-oncall', 15.0, 60.0)"
>>> target_minutes_sql({"aml-reporting": 240})
"multiIf(owner = 'aml-reporting', 240.0, NULL)"
>>> "$__toTime" in triaged_sql({"*": 60})
True
"""

from __future__ import annotations

from collections.abc import Mapping

from finpulse.config.boards.macros import sql_string

OTHER_OWNERS = "*"

# One row per alert with its response and resolution times (NULL while there is none).
_TRIAGE = """SELECT alert_id,
           minIfOrNull(ts, state != '') AS responded_at,
           minIfOrNull(ts, state = 'resolved') AS resolved_at
    FROM alert_actions FINAL
    WHERE ts <= $__toTime
    GROUP BY alert_id"""


def target_minutes_sql(targets: Mapping[str, float]) -> str:
    """SQL for the response target (minutes) of the row's ``owner``; NULL: no target."""
    default = targets.get(OTHER_OWNERS)
    fallback = "NULL" if default is None else repr(float(default))
    cases = [
        f"owner = {sql_string(owner)}, {float(minutes)!r}"
        for owner, minutes in sorted(targets.items())
        if owner != OTHER_OWNERS
    ]
    return f"multiIf({', '.join(cases)}, {fallback})" if cases else fallback


def _minutes_since_first(moment: str) -> str:
    """Minutes from the first firing to ``moment``, never negative, NULL for a NULL moment
    (``greatest`` would skip the NULL)."""
    return f"if({moment} < first_seen, 0, dateDiff('second', first_seen, {moment}) / 60)"


def triaged_sql(targets: Mapping[str, float], filters: str = "1") -> str:
    """Every sent alert (``filters`` on the alerts table's columns) with its owner's target,
    its response and resolution times and, in minutes: ``respond_min``, ``resolve_min``
    (NULL while none) and ``waiting_min`` (from its first firing to the range end)."""
    return f"""SELECT *,
       {_minutes_since_first("responded_at")} AS respond_min,
       {_minutes_since_first("resolved_at")} AS resolve_min,
       {_minutes_since_first("$__toTime")} AS waiting_min
FROM
(
    SELECT a.alert_id AS alert_id, a.owner AS owner, a.severity AS severity,
           a.rule_id AS rule_id, a.subject_id AS subject_id, a.first_seen AS first_seen,
           t.responded_at AS responded_at, t.resolved_at AS resolved_at,
           {target_minutes_sql(targets)} AS target_min
    FROM alerts AS a FINAL
    LEFT JOIN
    (
    {_TRIAGE}
    ) AS t ON t.alert_id = a.alert_id
    WHERE a.status != 'silenced' AND a.first_seen <= $__toTime AND {filters}
)"""


def past_target_condition() -> str:
    """Still without a response, and waiting longer than the owner's target."""
    return "isNull(responded_at) AND waiting_min > target_min"
