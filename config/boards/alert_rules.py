"""Grafana alert rules on ClickHouse queries (unified alerting file-provisioning format).

Each rule is one :class:`RuleSpec`: a ClickHouse query (plugin macros allowed; the tests
expand and run it), a reducer and a threshold. Labels carry the finpulse severity, which the
notification policy routes on.

>>> r = RULES[0]
>>> r.uid, r.severity, rule_json(r)["data"][0]["datasourceUid"]
('finpulse-service-level', 'orange', 'finpulse-clickhouse')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from finpulse.config.boards.catalog import FOLDER_TITLE
from finpulse.config.boards.pipeline_health import LAG_ALERT_S
from finpulse.config.boards.query import DATASOURCE_UID, ClickHouseQuery, Format
from finpulse.config.boards.response_times import past_target_condition, triaged_sql
from finpulse.config.boards.spec import (
    COMPLAINT_DECISION_DAYS,
    SERVICE_LEVEL_SECONDS,
    SERVICE_LEVEL_TARGET,
)
from finpulse.config.settings import DEFAULT_RESPONSE_TARGETS

GROUP = "finpulse"
GROUP_INTERVAL = "1m"
EXPR_UID = "__expr__"


@dataclass(frozen=True)
class RuleSpec:
    uid: str
    title: str
    sql: str
    value_column: str  # the numeric column the threshold applies to
    op: Literal["gt", "lt"]
    threshold: float
    severity: Literal["blue", "yellow", "orange", "red"]
    domain: Literal["risk", "service", "model_health", "compliance", "pipeline"]
    summary: str
    window_s: int = 900
    for_: str = "5m"
    no_data: Literal["OK", "NoData", "Alerting"] = "OK"
    label_columns: tuple[str, ...] = ()  # string columns: one alert instance per value


_FIXED_RULES: tuple[RuleSpec, ...] = (
    RuleSpec(
        uid="finpulse-service-level",
        title=f"Service level below {SERVICE_LEVEL_TARGET:.0%} in {SERVICE_LEVEL_SECONDS} s",
        sql="""SELECT channel, sum(answered_in_target) / sum(contacts) AS service_level
FROM interactions_1m
WHERE $__timeFilter(minute)
GROUP BY channel
HAVING sum(contacts) >= 20
ORDER BY channel""",
        value_column="service_level",
        op="lt",
        threshold=SERVICE_LEVEL_TARGET,
        severity="orange",
        domain="service",
        summary="Channel {{ $labels.channel }} answers fewer than 80 % of contacts within 20 s.",
        label_columns=("channel",),
    ),
    RuleSpec(
        uid="finpulse-no-transactions",
        title="No transactions stored for 10 minutes",
        sql="""SELECT sum(events) AS transactions
FROM transactions_1m
WHERE $__timeFilter(minute)""",
        value_column="transactions",
        op="lt",
        threshold=1,
        severity="red",
        domain="pipeline",
        summary="The pipeline stored no transaction in 10 minutes: workers or ClickHouse down?",
        window_s=600,
        for_="2m",
        no_data="Alerting",
    ),
    RuleSpec(
        uid="finpulse-deadletters",
        title="Dead letters above 50 in 10 minutes",
        sql="""SELECT source_topic, sum(deadletters) AS deadletters
FROM deadletters_1m
WHERE $__timeFilter(minute)
GROUP BY source_topic
ORDER BY source_topic""",
        value_column="deadletters",
        op="gt",
        threshold=50,
        severity="yellow",
        domain="pipeline",
        summary="Upstream {{ $labels.source_topic }} sends invalid events.",
        window_s=600,
        label_columns=("source_topic",),
    ),
    RuleSpec(
        uid="finpulse-consumer-lag",
        title=f"A worker is more than {LAG_ALERT_S} s behind",
        sql="""SELECT worker, max(lag_s) AS lag_s
FROM
(
    SELECT worker, topic, partition, argMax(lag_s, at) AS lag_s
    FROM consumer_lag
    WHERE $__timeFilter(at)
    GROUP BY worker, topic, partition
)
GROUP BY worker
ORDER BY worker""",
        value_column="lag_s",
        op="gt",
        threshold=LAG_ALERT_S,
        severity="orange",
        domain="pipeline",
        summary="Worker {{ $labels.worker }} processes events more than 60 s (event time) "
        "behind what it has fetched: overloaded, paused or stuck. `finpulse status` shows "
        "the partitions.",
        window_s=120,
        for_="2m",
        label_columns=("worker",),
    ),
    RuleSpec(
        uid="finpulse-overdue-complaints",
        title=f"Complaints open longer than {COMPLAINT_DECISION_DAYS} days",
        sql=f"""SELECT count() AS overdue
FROM
(
    SELECT complaint_id, min(ts) AS opened FROM interactions FINAL
    WHERE interaction_type = 'complaint' AND isNotNull(complaint_id)
      AND complaint_id NOT IN
      (
          SELECT assumeNotNull(complaint_id) FROM interactions FINAL
          WHERE isNotNull(complaint_id) AND event_id IN
              (SELECT ref_event_id FROM feedback FINAL WHERE kind = 'complaint_closed')
      )
    GROUP BY complaint_id
    HAVING opened < $__toTime - INTERVAL {COMPLAINT_DECISION_DAYS} DAY
)""",
        value_column="overdue",
        op="gt",
        threshold=0,
        severity="orange",
        domain="compliance",
        summary="Complaints are past the 15-day decision deadline.",
        window_s=3600,
        for_="0s",
    ),
    RuleSpec(
        uid="finpulse-red-alerts",
        title="New red early warnings",
        sql="""SELECT rule_id, count() AS red_alerts
FROM alerts FINAL
WHERE severity = 'red' AND $__timeFilter(first_seen)
GROUP BY rule_id
ORDER BY rule_id""",
        value_column="red_alerts",
        op="gt",
        threshold=0,
        severity="red",
        domain="risk",
        summary="Rule {{ $labels.rule_id }} raised red alerts.",
        window_s=300,
        for_="0s",
        label_columns=("rule_id",),
    ),
    RuleSpec(
        uid="finpulse-model-auc",
        title="Risk model AUC below 0.70",
        sql="""SELECT model, avg(value) AS auc
FROM model_metrics
WHERE metric = 'auc' AND $__timeFilter(ts)
GROUP BY model
ORDER BY model""",
        value_column="auc",
        op="lt",
        threshold=0.7,
        severity="orange",
        domain="model_health",
        summary="Model {{ $labels.model }} has an online AUC below 0.70.",
        window_s=3600,
        for_="15m",
        label_columns=("model",),
    ),
)


def response_target_rule(targets: Mapping[str, float]) -> RuleSpec:
    """Alerts still waiting for a response beyond their owner's target, one instance per
    owner (the Alerts board's "past target" panel, counted)."""
    return RuleSpec(
        uid="finpulse-response-target",
        title="Alerts waiting past their owner's response target",
        sql=f"""SELECT owner, count() AS past_target
FROM ({triaged_sql(targets)})
WHERE {past_target_condition()}
GROUP BY owner
ORDER BY owner""",
        value_column="past_target",
        op="gt",
        threshold=0,
        severity="orange",
        domain="service",
        summary="{{ $labels.owner }} has alerts without a response beyond its target "
        "(FINPULSE_RESPONSE_TARGET_MINUTES): see the Alerts board.",
        window_s=3600,
        for_="0s",
        label_columns=("owner",),
    )


def rules(response_targets: Mapping[str, float] = DEFAULT_RESPONSE_TARGETS) -> tuple[RuleSpec, ...]:
    """Every provisioned rule, the response-target one with these targets."""
    return (*_FIXED_RULES, response_target_rule(response_targets))


RULES = rules()


def rule_json(rule: RuleSpec) -> dict[str, Any]:
    """One rule in the file-provisioning format (query A, reduce B, threshold C)."""
    query = ClickHouseQuery(rule.sql, Format.TABLE, "A").to_json()
    expr_ds = {"type": "__expr__", "uid": EXPR_UID}
    return {
        "uid": rule.uid,
        "title": rule.title,
        "condition": "C",
        "data": [
            {
                "refId": "A",
                "relativeTimeRange": {"from": rule.window_s, "to": 0},
                "datasourceUid": DATASOURCE_UID,
                "model": {**query, "intervalMs": 60000, "maxDataPoints": 43200},
            },
            {
                "refId": "B",
                "datasourceUid": EXPR_UID,
                "model": {
                    "datasource": expr_ds,
                    "expression": "A",
                    "reducer": "last",
                    "refId": "B",
                    "type": "reduce",
                },
            },
            {
                "refId": "C",
                "datasourceUid": EXPR_UID,
                "model": {
                    "conditions": [{"evaluator": {"params": [rule.threshold], "type": rule.op}}],
                    "datasource": expr_ds,
                    "expression": "B",
                    "refId": "C",
                    "type": "threshold",
                },
            },
        ],
        "noDataState": rule.no_data,
        "execErrState": "Error",
        "for": rule.for_,
        "annotations": {"summary": rule.summary},
        "labels": {"severity": rule.severity, "domain": rule.domain, "source": "finpulse"},
        "isPaused": False,
    }


def rules_file(
    response_targets: Mapping[str, float] = DEFAULT_RESPONSE_TARGETS,
) -> dict[str, Any]:
    """``provisioning/alerting/rules.yaml``."""
    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": 1,
                "name": GROUP,
                "folder": FOLDER_TITLE,
                "interval": GROUP_INTERVAL,
                "rules": [rule_json(r) for r in rules(response_targets)],
            }
        ],
    }
