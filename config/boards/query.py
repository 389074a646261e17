"""The ClickHouse data-source query type the SDK lacks (plugin ``grafana-clickhouse-datasource``).

>>> q = ClickHouseQuery(raw_sql="SELECT 1", format_val=Format.TABLE, ref_id="A")
>>> q.to_json()["datasource"]["type"], q.to_json()["editorType"], q.to_json()["format"]
('grafana-clickhouse-datasource', 'sql', 1)
>>> ClickHouseQuery.from_json(q.to_json()).to_json() == q.to_json()
True
"""

from __future__ import annotations

import enum
import typing

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard

DATASOURCE_TYPE = "grafana-clickhouse-datasource"
# The one provisioned data source; boards, alert rules and provisioning all use this uid.
DATASOURCE_UID = "finpulse-clickhouse"
DATASOURCE_NAME = "finpulse ClickHouse"


class Format(enum.IntEnum):
    """The plugin's result formats."""

    TIME_SERIES = 0
    TABLE = 1
    LOGS = 2


def datasource_ref() -> dashboard.DataSourceRef:
    return dashboard.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)


class ClickHouseQuery(cogvariants.Dataquery):
    """A raw-SQL query of the ClickHouse plugin (``editorType: sql``)."""

    def __init__(
        self,
        raw_sql: str = "",
        format_val: Format = Format.TABLE,
        ref_id: str = "A",
        hide: bool | None = None,
    ) -> None:
        self.raw_sql = raw_sql
        self.format_val = Format(format_val)
        self.ref_id = ref_id
        self.hide = hide

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "datasource": {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID},
            "editorType": "sql",
            "format": int(self.format_val),
            "queryType": "timeseries" if self.format_val == Format.TIME_SERIES else "table",
            "rawSql": self.raw_sql,
            "refId": self.ref_id,
        }
        if self.hide is not None:
            payload["hide"] = self.hide
        return payload

    @classmethod
    def from_json(cls, data: dict[str, typing.Any]) -> ClickHouseQuery:
        return cls(
            raw_sql=data.get("rawSql", ""),
            format_val=Format(data.get("format", 1)),
            ref_id=data.get("refId", "A"),
            hide=data.get("hide"),
        )


class ClickHouseQueryBuilder(cogbuilder.Builder[ClickHouseQuery]):
    """SDK-style builder so panels take the query like any other target."""

    def __init__(self, raw_sql: str, format_val: Format, ref_id: str = "A") -> None:
        self._internal = ClickHouseQuery(raw_sql, format_val, ref_id)

    def build(self) -> ClickHouseQuery:
        return self._internal


def register() -> None:
    """Teach the SDK's decoder our query type (idempotent)."""
    cogruntime.register_dataquery_variant(
        cogruntime.DataqueryConfig(
            identifier=DATASOURCE_TYPE, from_json_hook=ClickHouseQuery.from_json
        )
    )
