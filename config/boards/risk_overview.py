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
CST = "Asia/Shanghai"  # report days and deadlines are China Standard Time days
# The register does not know which reports were filed: an overdue report is shown (red)
# for this many days after its deadline.
OVERDUE_SHOWN_DAYS = 30

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
            f"""SELECT toString(report_due) AS due_date,
       dateDiff('day', toDate($__toTime, '{CST}'), report_due) AS days_left,
       criterion, article, direction, currency_class, customer_id,
       segment AS customer_segment, toString(report_day) AS transaction_day,
       total, transaction_count, calendar, report_id
FROM large_value_reports FINAL
WHERE report_day <= toDate($__toTime, '{CST}')
  AND report_due >= toDate($__toTime, '{CST}') - {OVERDUE_SHOWN_DAYS}
  AND {var_in_or_none("segment")}
ORDER BY report_due, report_day, report_id
LIMIT 200""",
            "due_date:text days_left:number criterion:text article:text direction:text "
            "currency_class:text customer_id:text customer_segment:text "
            "transaction_day:text total:number transaction_count:number calendar:text "
            "report_id:text",
            kind="table",
            description="The large-value report register (PBoC Order 2016 No. 3, Art. 5), "
            "earliest deadline first: days_left counts calendar days from the range end "
            f"(China Standard Time) to report_due; overdue in red, for {OVERDUE_SHOWN_DAYS} "
            "days after the deadline. total is RMB, or USD for currency_class fx.",
            thresholds=((0, "red"), (0, "orange"), (1, "yellow"), (3, "green")),
            color_column="days_left",
            w=24,
        ),
    ),
)
