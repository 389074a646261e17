"""Model health: AUC / PR AUC over time, drift alarms, score distribution, model versions,
and the inputs' health (labels arriving, dead letters)."""

from __future__ import annotations

from finpulse.config.boards.spec import FILTERS, RISK_SCORE_BANDS, BoardSpec, PanelSpec

BOARD = BoardSpec(
    uid="finpulse-model-health",
    title="finpulse · Model health",
    description="Online model quality, drift and the health of the data feeding the models.",
    panels=(
        PanelSpec(
            "AUC and PR AUC over time",
            """SELECT $__timeInterval(ts) AS t, concat(model, ' ', metric) AS series,
       avg(value) AS value
FROM model_metrics
WHERE $__timeFilter(ts) AND metric IN ('auc', 'roc_auc', 'pr_auc')
GROUP BY t, series
ORDER BY t, series""",
            "t:time series:text value:number",
            min_val=0,
            max_val=1,
        ),
        PanelSpec(
            "Drift alarms",
            """SELECT last_seen, severity, rule_id, subject_id, occurrences, model_version, alert_id
FROM alerts FINAL
WHERE domain = 'model_health' AND $__timeFilter(last_seen)
ORDER BY last_seen DESC, alert_id
LIMIT 100""",
            "last_seen:time severity:severity rule_id:text subject_id:text occurrences:number "
            "model_version:text alert_id:text",
            kind="table",
        ),
        PanelSpec(
            "Risk-score quantiles",
            f"""SELECT $__timeInterval(ts) AS t,
       quantile(0.5)(score) AS p50, quantile(0.9)(score) AS p90, quantile(0.99)(score) AS p99
FROM risk_scores FINAL
WHERE $__timeFilter(ts) AND {FILTERS}
GROUP BY t
ORDER BY t""",
            "t:time p50:number p90:number p99:number",
            thresholds=RISK_SCORE_BANDS,
        ),
        PanelSpec(
            "Model versions",
            f"""SELECT model_version, min(ts) AS first_scored, max(ts) AS last_scored,
       count() AS scored, round(avg(score), 2) AS avg_score,
       countIf(isNotNull(label)) AS labelled
FROM risk_scores FINAL
WHERE $__timeFilter(ts) AND {FILTERS}
GROUP BY model_version
ORDER BY last_scored DESC, model_version""",
            "model_version:text first_scored:time last_scored:time scored:number "
            "avg_score:number labelled:number",
            kind="table",
        ),
        PanelSpec(
            "Delayed labels arriving by kind",
            """SELECT $__timeInterval(ts) AS t, kind, count() AS labels
FROM feedback FINAL
WHERE $__timeFilter(ts)
GROUP BY t, kind
ORDER BY t, kind""",
            "t:time kind:text labels:number",
            stack=True,
        ),
        PanelSpec(
            "Dead letters by error type",
            """SELECT $__timeInterval(minute) AS t, error_type, sum(deadletters) AS deadletters
FROM deadletters_1m
WHERE $__timeFilter(minute)
GROUP BY t, error_type
ORDER BY t, error_type""",
            "t:time error_type:text deadletters:number",
            stack=True,
        ),
    ),
)
