"""Alerts: live alert table with severity colours, counts, suppressed duplicates, and the
team's own response times (:mod:`finpulse.config.boards.response_times`).

>>> [p.title for p in board({"*": 30}).panels][-3:]  # doctest: +NORMALIZE_WHITESPACE
['Response times by owner and severity', 'Open alerts by age',
 "Alerts past their owner's response target"]
"""

from __future__ import annotations

from collections.abc import Mapping

from finpulse.config.boards.response_times import past_target_condition, triaged_sql
from finpulse.config.boards.spec import SEVERITY_ORDER_SQL, BoardSpec, PanelSpec, var_in_or_none
from finpulse.config.settings import DEFAULT_RESPONSE_TARGETS

ALERT_FILTERS = f"{var_in_or_none('segment')} AND {var_in_or_none('channel')}"


def response_panels(targets: Mapping[str, float]) -> tuple[PanelSpec, ...]:
    """Time to respond and resolve, open alerts by age, alerts past target."""
    triaged = triaged_sql(targets, ALERT_FILTERS)
    return (
        PanelSpec(
            "Response times by owner and severity",
            f"""SELECT owner, severity, count() AS alerts,
       countIf(isNotNull(responded_at)) AS responded,
       round(quantileExact(0.5)(respond_min), 1) AS respond_p50_min,
       round(quantileExact(0.9)(respond_min), 1) AS respond_p90_min,
       countIf(isNotNull(resolved_at)) AS resolved,
       round(quantileExact(0.5)(resolve_min), 1) AS resolve_p50_min,
       round(quantileExact(0.9)(resolve_min), 1) AS resolve_p90_min,
       countIf(ifNull(respond_min, waiting_min) > target_min) AS past_target
FROM ({triaged})
WHERE $__timeFilter(first_seen)
GROUP BY owner, severity
ORDER BY owner, {SEVERITY_ORDER_SQL} DESC""",
            "owner:text severity:severity alerts:number responded:number "
            "respond_p50_min:number respond_p90_min:number resolved:number "
            "resolve_p50_min:number resolve_p90_min:number past_target:number",
            kind="table",
            thresholds=((0, "green"), (1, "red")),
            color_column="past_target",
            description="Alerts first fired in the range: minutes from the first firing to "
            "the first acknowledge, assign or resolve (respond) and to the resolution; "
            "past_target counts those answered late or still waiting beyond the owner's "
            "response target.",
            w=24,
        ),
        PanelSpec(
            "Open alerts by age",
            f"""SELECT owner, count() AS open_alerts,
       countIf(waiting_min < 15) AS age_under_15m,
       countIf(waiting_min >= 15 AND waiting_min < 60) AS age_15m_1h,
       countIf(waiting_min >= 60 AND waiting_min < 240) AS age_1h_4h,
       countIf(waiting_min >= 240 AND waiting_min < 1440) AS age_4h_24h,
       countIf(waiting_min >= 1440) AS age_over_24h
FROM ({triaged})
WHERE isNull(resolved_at)
GROUP BY owner
ORDER BY open_alerts DESC, owner""",
            "owner:text open_alerts:number age_under_15m:number age_15m_1h:number "
            "age_1h_4h:number age_4h_24h:number age_over_24h:number",
            kind="table",
            description="Alerts not resolved at the end of the range, whenever they fired.",
        ),
        PanelSpec(
            "Alerts past their owner's response target",
            f"""SELECT owner, severity, rule_id, subject_id, first_seen,
       round(waiting_min, 1) AS waiting_min, target_min, alert_id
FROM ({triaged})
WHERE {past_target_condition()}
ORDER BY {SEVERITY_ORDER_SQL} DESC, waiting_min DESC, alert_id
LIMIT 100""",
            "owner:text severity:severity rule_id:text subject_id:text first_seen:time "
            "waiting_min:number target_min:number alert_id:text",
            kind="table",
            description="No response yet, and waiting longer than the owner's target "
            "(FINPULSE_RESPONSE_TARGET_MINUTES).",
        ),
    )


def board(targets: Mapping[str, float] = DEFAULT_RESPONSE_TARGETS) -> BoardSpec:
    """The Alerts board with these response targets (minutes per owner, '*' the rest)."""
    return BoardSpec(
        uid="finpulse-alerts",
        title="finpulse · Alerts",
        description="Early warnings as on-call staff see them: live, by severity, "
        "deduplicated; and how fast the owners respond.",
        refresh="10s",
        panels=_LIVE_PANELS + response_panels(targets),
    )


_LIVE_PANELS = (
    PanelSpec(
        "Alerts in range by severity",
        f"""SELECT countIf(severity = 'blue') AS blue, countIf(severity = 'yellow') AS yellow,
       countIf(severity = 'orange') AS orange, countIf(severity = 'red') AS red
FROM alerts FINAL
WHERE $__timeFilter(last_seen) AND {ALERT_FILTERS}""",
        "blue:number yellow:number orange:number red:number",
        kind="stat",
        severity_series=True,
        w=12,
        h=5,
    ),
    PanelSpec(
        "Suppressed duplicates in range",
        f"""SELECT sum(suppressed) AS suppressed, count() AS alerts
FROM alerts FINAL
WHERE $__timeFilter(last_seen) AND {ALERT_FILTERS}""",
        "suppressed:number alerts:number",
        kind="stat",
        w=12,
        h=5,
    ),
    PanelSpec(
        "Live alerts",
        f"""SELECT last_seen, severity, status, rule_id, domain, subject_type, subject_id,
       owner, route, occurrences, suppressed, score, model_version, alert_id
FROM alerts FINAL
WHERE $__timeFilter(last_seen) AND {ALERT_FILTERS}
ORDER BY last_seen DESC, {SEVERITY_ORDER_SQL} DESC, alert_id
LIMIT 200""",
        "last_seen:time severity:severity status:text rule_id:text domain:text "
        "subject_type:text subject_id:text owner:text route:text occurrences:number "
        "suppressed:number "
        "score:number model_version:text alert_id:text",
        kind="table",
        w=24,
        h=10,
    ),
    PanelSpec(
        "Alerts by severity",
        f"""SELECT $__timeInterval(last_seen) AS t, severity, count() AS alerts
FROM alerts FINAL
WHERE $__timeFilter(last_seen) AND {ALERT_FILTERS}
GROUP BY t, severity
ORDER BY t, {SEVERITY_ORDER_SQL}""",
        "t:time severity:severity alerts:number",
        severity_series=True,
        stack=True,
    ),
    PanelSpec(
        "Suppressed duplicates by rule",
        f"""SELECT rule_id, count() AS alerts, sum(suppressed) AS suppressed,
       argMax(severity, {SEVERITY_ORDER_SQL}) AS top_severity
FROM alerts FINAL
WHERE $__timeFilter(last_seen) AND {ALERT_FILTERS}
GROUP BY rule_id
ORDER BY suppressed DESC, rule_id
LIMIT 50""",
        "rule_id:text alerts:number suppressed:number top_severity:severity",
        kind="table",
    ),
)

BOARD = board()
