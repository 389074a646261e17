"""What the console reads from and writes to ClickHouse (blocking calls: the web handlers
run them in threads). Every value from a request is a bound query parameter.

>>> print(InboxFilter(severity="red", max_age_h=24).where())
severity = {severity:String} AND first_seen >= now64(3) - toIntervalHour({max_age_h:UInt32})
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from finpulse.config.settings import Settings
from finpulse.models.actions import AlertAction, action_row
from finpulse.sinks.clickhouse import make_client
from finpulse.sinks.tables import ALERT_ACTIONS_TABLE

STATES = ("open", "acknowledged", "assigned", "resolved")

# Each alert with its triage state: the latest state any action left, and the assignee.
_ALERTS = """
SELECT a.alert_id AS alert_id, a.status AS status, a.rule_id AS rule_id, a.domain AS domain,
       a.severity AS severity, a.severity_rank AS severity_rank, a.subject_type AS subject_type,
       a.subject_id AS subject_id, a.owner AS owner, a.route AS route,
       a.first_seen AS first_seen, a.last_seen AS last_seen, a.occurrences AS occurrences,
       a.source_event_id AS source_event_id, a.score AS score, a.reason_codes AS reason_codes,
       a.evidence AS evidence, a.model_version AS model_version, a.report_due AS report_due,
       a.context AS context, a.customer_id AS customer_id, a.segment AS segment,
       a.channel AS channel,
       if(t.state = '', 'open', t.state) AS state, t.assignee AS assignee
FROM {db}.alerts AS a FINAL
LEFT JOIN (
    SELECT alert_id, argMaxIf(state, ts, state != '') AS state,
           argMaxIf(assignee, ts, action = 'assign') AS assignee
    FROM {db}.alert_actions FINAL GROUP BY alert_id
) AS t ON t.alert_id = a.alert_id
"""


@dataclass(frozen=True)
class InboxFilter:
    """The inbox's filters ('' = any) and order (``severity`` or ``newest`` first)."""

    severity: str = ""
    domain: str = ""
    owner: str = ""
    state: str = ""
    max_age_h: int = 0
    order: str = "severity"

    def where(self) -> str:
        chosen = {"severity": self.severity, "domain": self.domain, "owner": self.owner}
        parts = [f"{name} = {{{name}:String}}" for name, value in chosen.items() if value]
        if self.state:
            parts.append("state = {state:String}")
        if self.max_age_h:
            parts.append("first_seen >= now64(3) - toIntervalHour({max_age_h:UInt32})")
        return " AND ".join(parts) or "1"

    def order_by(self) -> str:
        if self.order == "newest":
            return "last_seen DESC, severity_rank DESC"
        return "severity_rank DESC, last_seen DESC"


class ConsoleStore:
    """ClickHouse reads and writes of the console; :meth:`connect` before use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = settings.clickhouse_database
        self._client: Any = None

    def connect(self) -> None:
        self._client = make_client(self.settings)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def _rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        result = self._client.query(sql.replace("{db}", self.db), parameters=params)
        return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]

    def inbox(self, f: InboxFilter, limit: int = 200) -> list[dict[str, Any]]:
        sql = (
            f"SELECT * FROM ({_ALERTS}) WHERE {f.where()} "
            f"ORDER BY {f.order_by()} LIMIT {{limit:UInt32}}"
        )
        return self._rows(sql, **asdict(f), limit=limit)

    def owners(self) -> list[str]:
        return [r["owner"] for r in self._rows("SELECT DISTINCT owner FROM {db}.alerts ORDER BY 1")]

    def alert(self, alert_id: str) -> dict[str, Any] | None:
        rows = self._rows(f"{_ALERTS} WHERE a.alert_id = {{id:String}} LIMIT 1", id=alert_id)
        if not rows:
            return None
        alert = rows[0]
        alert["evidence"] = json.loads(alert["evidence"] or "{}")
        alert["context"] = json.loads(alert["context"] or "{}")
        return alert

    def actions(self, alert_id: str) -> list[dict[str, Any]]:
        return self._rows(
            "SELECT ts, actor, action, assignee, reason, silence_until, subject_id "
            "FROM {db}.alert_actions FINAL WHERE alert_id = {id:String} ORDER BY ts",
            id=alert_id,
        )

    def related(self, alert: dict[str, Any], limit: int = 20) -> list[dict[str, Any]]:
        """Other alerts on the same subject or customer."""
        return self._rows(
            f"SELECT * FROM ({_ALERTS}) WHERE alert_id != {{id:String}} AND "
            "(subject_id = {subject:String} OR customer_id = {customer:String}) "
            "ORDER BY last_seen DESC LIMIT {limit:UInt32}",
            id=alert["alert_id"],
            subject=alert["subject_id"],
            customer=alert["customer_id"] or "",
            limit=limit,
        )

    def customer_alerts(self, customer_id: str, limit: int = 50) -> list[dict[str, Any]]:
        return self._rows(
            f"SELECT * FROM ({_ALERTS}) WHERE customer_id = {{c:String}} OR "
            "(subject_type = 'customer' AND subject_id = {c:String}) "
            "ORDER BY last_seen DESC LIMIT {limit:UInt32}",
            c=customer_id,
            limit=limit,
        )

    def transactions(self, customer_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """Recent transactions with their risk scores (no account or card fields)."""
        return self._rows(
            "SELECT t.event_id AS event_id, t.ts AS ts, t.amount AS amount, "
            "t.currency AS currency, t.direction AS direction, t.txn_type AS txn_type, "
            "t.channel AS channel, t.counterparty_country AS counterparty_country, "
            "r.score AS score, r.label AS label "
            "FROM {db}.transactions AS t FINAL "
            "LEFT JOIN (SELECT event_id, score, label FROM {db}.risk_scores FINAL "
            "WHERE customer_id = {c:String}) AS r ON r.event_id = t.event_id "
            "WHERE t.customer_id = {c:String} ORDER BY t.ts DESC LIMIT {limit:UInt32}",
            c=customer_id,
            limit=limit,
        )

    def interactions(self, customer_id: str, limit: int = 20) -> list[dict[str, Any]]:
        return self._rows(
            "SELECT event_id, ts, channel, interaction_type, wait_seconds, handle_seconds, "
            "resolved, sentiment, complaint_id FROM {db}.interactions FINAL "
            "WHERE customer_id = {c:String} ORDER BY ts DESC LIMIT {limit:UInt32}",
            c=customer_id,
            limit=limit,
        )

    def record(self, action: AlertAction) -> None:
        """Insert the action's row (idempotent: one row per action id, read with FINAL)."""
        row = action_row(action)
        columns = list(ALERT_ACTIONS_TABLE.columns)
        self._client.insert(
            f"{self.db}.{ALERT_ACTIONS_TABLE.name}",
            [[row[c] for c in columns]],
            column_names=columns,
        )
