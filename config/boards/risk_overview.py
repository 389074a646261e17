"""Risk overview: volume, risk-score distribution, alerts by severity and rule, top risky
customers, large-value reports due."""

from __future__ import annotations

from finpulse.config.boards.spec import (
    FILTERS,
    RISK_SCORE_BANDS,
    SEVERITY_ORDER_SQL,
    BoardSpec,
    PanelSpec,
    var_in_or_none,
)

ALERT_FILTERS = f"{var_in_or_none('segment')} AND {var_in_or_none('channel')}"

BOARD = BoardSpec(
    uid="finpulse-risk-overview",
    title="finpulse · Risk overview",
    description="Transaction flow, risk scores and early warnings for the risk team.",
    panels=(
        PanelSpec(
            "Transactions per interval by channel",
            f"""SELECT $__timeInterval(minute) AS t, channel, sum(events) AS transactions
FROM transactions_1m
WHERE $__timeFilter(minute) AND {FILTERS}
GROUP BY t, channel
ORDER BY t, channel""",
            "t:time channel:text transactions:number",
            stack=True,
        ),
        PanelSpec(
            "Amount per interval by currency",
            f"""SELECT $__timeInterval(minute) AS t, currency, toFloat64(sum(amount)) AS amount
FROM transactions_1m
WHERE $__timeFilter(minute) AND {FILTERS}
GROUP BY t, currency
ORDER BY t, currency""",
            "t:time currency:text amount:number",
        ),
        PanelSpec(
            "Risk-score distribution",
            f"""SELECT concat(toString(band), '-', toString(band + 10)) AS score_band,
       count() AS transactions
FROM
(
    SELECT toUInt8(least(intDiv(toUInt32(greatest(score, 0)), 10) * 10, 90)) AS band
    FROM risk_scores FINAL
    WHERE $__timeFilter(ts) AND {FILTERS}
)
GROUP BY band
ORDER BY band""",
            "score_band:text transactions:number",
            kind="barchart",
            w=8,
        ),
        PanelSpec(
            "New alerts by severity",
            f"""SELECT $__timeInterval(first_seen) AS t, severity, count() AS alerts
FROM alerts FINAL
WHERE $__timeFilter(first_seen) AND {ALERT_FILTERS}
GROUP BY t, severity
ORDER BY t, {SEVERITY_ORDER_SQL}""",
            "t:time severity:severity alerts:number",
            severity_series=True,
            stack=True,
            w=8,
        ),
        PanelSpec(
            "Alerts by rule",
            f"""SELECT rule_id,
       argMax(severity, {SEVERITY_ORDER_SQL}) AS top_severity,
       count() AS alerts,
       sum(occurrences) AS occurrences
FROM alerts FINAL
WHERE $__timeFilter(first_seen) AND {ALERT_FILTERS}
GROUP BY rule_id
ORDER BY alerts DESC, rule_id
LIMIT 50""",
            "rule_id:text top_severity:severity alerts:number occurrences:number",
            kind="table",
            w=8,
        ),
        PanelSpec(
            "Top risky customers",
            f"""SELECT customer_id,
       any(segment) AS customer_segment,
       max(score) AS max_score,
       round(avg(score), 1) AS avg_score,
       count() AS transactions,
       toFloat64(sum(amount_cny)) AS amount_cny
FROM risk_scores FINAL
WHERE $__timeFilter(ts) AND {FILTERS}
GROUP BY customer_id
ORDER BY max_score DESC, transactions DESC, customer_id
LIMIT 20""",
            "customer_id:text customer_segment:text max_score:number avg_score:number "
            "transactions:number amount_cny:number",
            kind="table",
            thresholds=RISK_SCORE_BANDS,
            color_column="max_score",
        ),
        PanelSpec(
            "Large-value reports due",
            f"""SELECT alert_id, rule_id, customer_id, severity,
       first_seen, toString(report_due) AS due_date,
       dateDiff('day', today(), toDate(report_due)) AS days_left
FROM alerts FINAL
WHERE domain = 'compliance' AND isNotNull(report_due)
  AND $__timeFilter(first_seen) AND {ALERT_FILTERS}
ORDER BY due_date, alert_id
LIMIT 100""",
            "alert_id:text rule_id:text customer_id:text severity:severity first_seen:time "
            "due_date:text days_left:number",
            kind="table",
            thresholds=((0, "red"), (1, "orange"), (3, "yellow"), (5, "blue")),
            color_column="days_left",
        ),
    ),
)
