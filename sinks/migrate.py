"""Versioned, idempotent ClickHouse schema migrations.

Migrations are the ``sinks/migrations/NNNN_name.sql`` files, applied in order and
recorded in ``{db}.schema_migrations``; running ``migrate`` twice applies nothing
the second time. Statements use ``IF NOT EXISTS`` so a half-applied migration can
be re-run. Placeholders: ``{db}``, ``{raw_ttl_days}``, ``{rollup_ttl_days}``.

>>> [m.version for m in discover()][:1]
[1]
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from finpulse.config.settings import Settings

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self, settings: Settings) -> list[str]:
        """The migration's statements with placeholders filled in."""
        text = self.sql.format(
            db=settings.clickhouse_database,
            raw_ttl_days=settings.raw_ttl_days,
            rollup_ttl_days=settings.rollup_ttl_days,
        )
        text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
        return [s.strip() for s in text.split(";") if s.strip()]


def discover() -> list[Migration]:
    """All packaged migrations, sorted by version; duplicate versions are an error."""
    found: dict[int, Migration] = {}
    for entry in resources.files("finpulse.sinks.migrations").iterdir():
        match = _NAME.match(entry.name)
        if not match:
            continue
        version = int(match.group(1))
        if version in found:
            raise ValueError(f"two migrations with version {version}: {entry.name}")
        found[version] = Migration(version, match.group(2), entry.read_text())
    return [found[v] for v in sorted(found)]


def migrate(settings: Settings, client: Any = None) -> list[int]:
    """Create the database and apply pending migrations; returns the versions applied."""
    from finpulse.sinks.clickhouse import make_client

    own = client is None
    client = client or make_client(settings, database="")
    db = settings.clickhouse_database
    try:
        client.command(f"CREATE DATABASE IF NOT EXISTS {db}")
        client.command(
            f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations "
            "(version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
            "ENGINE = ReplacingMergeTree ORDER BY version"
        )
        done = {
            row[0]
            for row in client.query(f"SELECT version FROM {db}.schema_migrations FINAL").result_rows
        }
        applied = []
        for m in discover():
            if m.version in done:
                continue
            for statement in m.statements(settings):
                client.command(statement)
            client.insert(
                f"{db}.schema_migrations", [(m.version, m.name)], column_names=["version", "name"]
            )
            log.info("applied migration %04d_%s", m.version, m.name)
            applied.append(m.version)
        return applied
    finally:
        if own:
            client.close()
