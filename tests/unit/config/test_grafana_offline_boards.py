"""Offline substitutes for Grafana loading the boards: drift, SDK round trip, layout, uids."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from finpulse.config.boards import query
from finpulse.config.boards.build import generated_files, repo_root
from finpulse.config.boards.catalog import BOARDS
from finpulse.config.boards.macros import MacroError, expand
from finpulse.config.boards.provisioning import datasource_json
from finpulse.config.boards.query import DATASOURCE_TYPE, DATASOURCE_UID
from finpulse.config.boards.spec import SEVERITY_COLOURS, VARIABLES

BOARD_FILES = {b.uid: repo_root() / f"config/grafana/dashboards/{b.uid}.json" for b in BOARDS}


def test_grafana_offline_generated_files_equal_committed_ones():
    for rel, text in generated_files().items():
        path = repo_root() / rel
        assert path.exists(), f"{rel} missing: run `finpulse grafana build`"
        assert path.read_text() == text, f"{rel} drifted: run `finpulse grafana build`"
    on_disk = {p.name for p in (repo_root() / "config/grafana/dashboards").glob("*.json")}
    assert on_disk == {p.name for p in BOARD_FILES.values()}, "stale board files"


@pytest.mark.parametrize("uid", list(BOARD_FILES))
def test_grafana_offline_board_survives_sdk_decode_and_reencode(uid):
    register_default_plugins()
    query.register()
    data = json.loads(BOARD_FILES[uid].read_text())
    decoded = Dashboard.from_json(data)
    assert json.loads(json.dumps(decoded, cls=JSONEncoder)) == data
    assert data["schemaVersion"] >= 41  # a Grafana 11 build of the SDK


@pytest.mark.parametrize("uid", list(BOARD_FILES))
def test_grafana_offline_panels_ids_grid_and_datasource(uid):
    data = json.loads(BOARD_FILES[uid].read_text())
    panels = data["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], int] = {}
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24 and g["h"] > 0
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"panel {p['id']} overlaps panel {cells[(x, y)]}"
                cells[(x, y)] = p["id"]
    ds = datasource_json()
    for p in panels:
        assert p["datasource"] == {"type": DATASOURCE_TYPE, "uid": ds["uid"]}
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == DATASOURCE_UID == ds["uid"]
            assert t["datasource"]["type"] == DATASOURCE_TYPE
            assert t["editorType"] == "sql" and t["format"] in (0, 1, 2)
            assert t["format"] == (0 if p["type"] == "timeseries" else 1)
            assert t["rawSql"].strip()


@pytest.mark.parametrize("uid", list(BOARD_FILES))
def test_grafana_offline_template_variables_and_all(uid):
    data = json.loads(BOARD_FILES[uid].read_text())
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert set(variables) == {"segment", "channel"}
    for name, v in variables.items():
        assert v["includeAll"] and v["multi"] and v["current"]["value"] == ["$__all"]
        assert "allValue" not in v  # All expands to every value: `IN (...)` stays right
        assert v["query"].split(",") == list(VARIABLES[name])


def test_grafana_offline_severity_colours_are_the_same_everywhere():
    seen: dict[str, set[str]] = {}
    for path in BOARD_FILES.values():
        for p in json.loads(path.read_text())["panels"]:
            for o in p["fieldConfig"]["overrides"]:
                name = o["matcher"]["options"]
                for prop in o["properties"]:
                    if prop["id"] == "color" and name in SEVERITY_COLOURS:
                        seen.setdefault(name, set()).add(prop["value"]["fixedColor"])
            for m in p["fieldConfig"]["defaults"].get("mappings", []):
                for name, res in m["options"].items():
                    seen.setdefault(name, set()).add(res["color"])
            for step in p["fieldConfig"]["defaults"].get("thresholds", {}).get("steps", []):
                assert step["color"] in SEVERITY_COLOURS.values() or step["color"] == "green"
    assert seen == {k: {v} for k, v in SEVERITY_COLOURS.items()}


def test_grafana_offline_every_query_expands_without_leftovers():
    t1 = datetime(2026, 1, 5, 12, tzinfo=UTC)
    for b in BOARDS:
        for p in b.panels:
            sql = expand(p.sql, t1 - timedelta(hours=1), t1, 30, VARIABLES)
            assert "$" not in sql, (b.uid, p.title)


def test_grafana_offline_macro_expansion_matches_the_plugin_table():
    t0, t1 = datetime(2026, 1, 5, 10, tzinfo=UTC), datetime(2026, 1, 5, 11, tzinfo=UTC)
    f, t = int(t0.timestamp()), int(t1.timestamp())
    assert expand("$__timeFilter_ms(c)", t0, t1, 0.5) == (
        f"c >= fromUnixTimestamp64Milli({f * 1000}) AND c <= fromUnixTimestamp64Milli({t * 1000})"
    )
    assert expand("$__fromTime/$__toTime", t0, t1, 1) == f"toDateTime({f})/toDateTime({t})"
    assert expand("$__interval_s", t0, t1, 0.2) == "1"
    assert expand("$__timeInterval_ms(c)", t0, t1, 0.25) == (
        "toStartOfInterval(toDateTime64(c, 3), INTERVAL 250 millisecond)"
    )
    assert expand("$__timeFilter(toDate(f(x)))", t0, t1, 1).startswith("toDate(f(x)) >= ")
    with pytest.raises(MacroError):
        expand("$__unknownMacro", t0, t1, 1)
    with pytest.raises(MacroError):
        expand("x IN (${nope:singlequote})", t0, t1, 1)
    assert expand("${s:singlequote}", t0, t1, 1, {"s": ["o'x"]}) == "'o\\'x'"


def test_grafana_offline_every_table_read_is_migrated_or_pending():
    """Without ClickHouse: each table a panel or alert rule reads is created by a migration or
    listed as pending (the integration test checks the same against the real server)."""
    import re

    from finpulse.config.boards.alert_rules import RULES
    from finpulse.config.boards.catalog import PENDING_TABLES
    from finpulse.config.boards.spec import tables_of
    from finpulse.sinks.migrate import discover

    created = {
        m.group(1)
        for mig in discover()
        for m in re.finditer(
            r"CREATE (?:TABLE|VIEW|MATERIALIZED VIEW) IF NOT EXISTS \{db\}\.(\w+)", mig.sql
        )
    }
    read = {t for b in BOARDS for t in b.tables} | {t for r in RULES for t in tables_of(r.sql)}
    assert read - created <= PENDING_TABLES, read - created - PENDING_TABLES
    assert not (PENDING_TABLES & created), "a pending table has landed: drop it from the list"
