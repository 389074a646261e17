"""ClickHouse table names and the row layout of each event table (one place, read by all).

>>> TRANSACTIONS_TABLE.columns[:3]
('event_id', 'ts', 'customer_id')
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from finpulse.models.events import DeadLetter, Feedback, Interaction, Transaction


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]
    id_column: str


_POSITION = ("source_partition", "source_offset")

TRANSACTIONS_TABLE = Table(
    "transactions",
    (
        "event_id",
        "ts",
        "customer_id",
        "customer_type",
        "segment",
        "account_id",
        "amount",
        "currency",
        "direction",
        "txn_type",
        "channel",
        "counterparty_id",
        "counterparty_country",
        "cross_border",
        "merchant_category",
        "device_id",
        "ip_country",
        "schema_version",
        "cash",
        *_POSITION,
    ),
    "event_id",
)

INTERACTIONS_TABLE = Table(
    "interactions",
    (
        "event_id",
        "ts",
        "customer_id",
        "customer_type",
        "segment",
        "channel",
        "interaction_type",
        "wait_seconds",
        "handle_seconds",
        "resolved",
        "first_contact_resolution",
        "transfers",
        "agent_id",
        "sentiment",
        "complaint_id",
        "ref_event_id",
        "schema_version",
        *_POSITION,
    ),
    "event_id",
)

FEEDBACK_TABLE = Table(
    "feedback",
    (
        "event_id",
        "ts",
        "customer_id",
        "kind",
        "ref_event_id",
        "value",
        *_POSITION,
    ),
    "event_id",
)

DEADLETTERS_TABLE = Table(
    "deadletters",
    (
        "id",
        "ingested_at",
        "source_topic",
        "source_partition",
        "source_offset",
        "error_type",
        "error",
        "raw_size",
        "raw_b64",
    ),
    "id",
)

EVENT_TABLES: dict[str, Table] = {
    "transaction": TRANSACTIONS_TABLE,
    "interaction": INTERACTIONS_TABLE,
    "feedback": FEEDBACK_TABLE,
}


def _row_builder(table: Table) -> Callable[[Any, int, int], tuple[Any, ...]]:
    fields = [c for c in table.columns if c not in _POSITION]
    # One C-level lookup of all fields (a per-field generator was costly, docs/benchmarks.md).
    # The event enums are StrEnums, i.e. str: ClickHouse stores their values as they are.
    values = operator.itemgetter(*fields)

    def build(event: Any, partition: int, offset: int) -> tuple[Any, ...]:
        return (*values(event.__dict__), partition, offset)

    return build


transaction_row = _row_builder(TRANSACTIONS_TABLE)
interaction_row = _row_builder(INTERACTIONS_TABLE)
feedback_row = _row_builder(FEEDBACK_TABLE)

ROW_BUILDERS: dict[type, Callable[[Any, int, int], tuple[Any, ...]]] = {
    Transaction: transaction_row,
    Interaction: interaction_row,
    Feedback: feedback_row,
}


def deadletter_row(dl: DeadLetter) -> tuple[Any, ...]:
    """The ``deadletters`` row of a dead letter."""
    return tuple(getattr(dl, c) for c in DEADLETTERS_TABLE.columns)


ALERTS_TABLE = Table(
    "alerts",
    (
        "alert_id",
        "status",
        "rule_id",
        "domain",
        "severity",
        "severity_rank",
        "subject_type",
        "subject_id",
        "owner",
        "route",
        "first_seen",
        "last_seen",
        "occurrences",
        "suppressed",
        "source_event_id",
        "score",
        "reason_codes",
        "evidence",
        "model_version",
        "report_due",
        "context",
        "customer_id",
        "segment",
        "channel",
        "created_at",
    ),
    "alert_id",
)

# --- large-value report register (migration 0050) -----------------------------------------
LARGE_VALUE_REPORTS_TABLE = Table(
    "large_value_reports",
    (
        "report_id",
        "report_day",
        "customer_id",
        "customer_type",
        "segment",
        "criterion",
        "article",
        "direction",
        "currency_class",
        "total",
        "threshold",
        "transaction_count",
        "transaction_ids",
        "account_ids",
        "first_seen",
        "last_seen",
        "report_due",
        "calendar",
        "alert_id",
        "version",
    ),
    "report_id",
)

# What on-call staff did with alerts (migration 0051; finpulse.models.actions).
ALERT_ACTIONS_TABLE = Table(
    "alert_actions",
    (
        "action_id",
        "ts",
        "actor",
        "action",
        "state",
        "alert_id",
        "rule_id",
        "owner",
        "severity",
        "subject_type",
        "subject_id",
        "customer_id",
        "source_event_id",
        "assignee",
        "reason",
        "silence_until",
    ),
    "action_id",
)


# --- risk (migrations 0010-0012) -----------------------------------------------------------
RISK_SCORES_TABLE = Table(
    "risk_scores",
    (
        "event_id",
        "ts",
        "customer_id",
        "segment",
        "customer_type",
        "channel",
        "txn_type",
        "amount_cny",
        "txn_count_1h",
        "txn_count_24h",
        "score",
        "anomaly",
        "supervised",
        "reason_codes",
        "model_version",
        "label",
        "row_version",
    ),
    "event_id",
)

MODEL_METRICS_TABLE = Table(
    "model_metrics",
    ("metric_id", "ts", "model", "metric", "value", "n", "model_version"),
    "metric_id",
)

MODEL_CHECKPOINTS_TABLE = Table(
    "model_checkpoints_by_position",  # migration 0052; model_checkpoints before it
    ("checkpoint_id", "model", "created_at", "model_version", "n_learned", "blob", "position"),
    "checkpoint_id",
)


# --- service quality (issue 4) -----------------------------------------------------------------

SERVICE_MINUTES_TABLE = Table(
    "service_minutes",
    (
        "minute",
        "channel",
        "customer_type",
        "segment",
        "source_partition",
        "contacts",
        "answered_in_sl",
        "sl_threshold_s",
        "wait_sum",
        "handle_sum",
        "resolved",
        "fcr_known",
        "fcr",
        "transfers",
        "transferred",
        "complaints",
        "repeat_contacts",
        "version",
        "row_id",
    ),
    "row_id",
)

COMPLAINTS_TABLE = Table(
    "complaints",
    (
        "complaint_id",
        "status",
        "ts",
        "customer_id",
        "customer_type",
        "segment",
        "channel",
        "opened_at",
        "due_at",
        "closed_at",
        "days_open",
        "source_event_id",
        "source_partition",
        "row_id",
    ),
    "row_id",
)

CUSTOMER_STATUS_TABLE = Table(
    "customer_status",
    (
        "customer_id",
        "ts",
        "customer_type",
        "segment",
        "lifecycle",
        "first_seen",
        "last_seen",
        "events_30d",
        "events_prev_30d",
        "contacts_24h",
        "open_complaints",
        "last_csat",
        "dissatisfaction",
        "risk_score",
        "last_risk_rule",
        "last_risk_at",
        "health_score",
        "version",
        "source_partition",
        "row_id",
    ),
    "row_id",
)

SERVICE_FRICTION_TABLE = Table(
    "service_friction",
    (
        "event_id",
        "ts",
        "customer_id",
        "segment",
        "channel",
        "rule_id",
        "risk_severity",
        "risk_alert_at",
        "delay_s",
        "source_partition",
    ),
    "event_id",
)


# --- pipeline health (migration 0040) ----------------------------------------------------------

CONSUMER_LAG_TABLE = Table(
    "consumer_lag",
    (
        "at",
        "worker",
        "topic",
        "partition",
        "next_offset",
        "high_watermark",
        "end_offset",
        "lag_events",
        "lag_s",
        "events_per_s",
        "batch_p50_ms",
        "batch_p99_ms",
        "deadletters",
        "interval_s",
        "row_id",
    ),
    "row_id",
)
