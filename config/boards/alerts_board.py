"""Alerts: live alert table with severity colours, counts, suppressed duplicates."""

from __future__ import annotations

from finpulse.config.boards.spec import SEVERITY_ORDER_SQL, BoardSpec, PanelSpec, var_in_or_none

ALERT_FILTERS = f"{var_in_or_none('segment')} AND {var_in_or_none('channel')}"

BOARD = BoardSpec(
    uid="finpulse-alerts",
    title="finpulse · Alerts",
    description="Early warnings as on-call staff see them: live, by severity, deduplicated.",
    refresh="10s",
    panels=(
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
    ),
)
