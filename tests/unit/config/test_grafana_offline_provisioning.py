"""Offline substitutes for Grafana reading its provisioning and for `docker compose config`:
parse the committed YAML, check the keys Grafana knows, env references, images, healthchecks."""

from __future__ import annotations

import re

import pytest
import yaml

from finpulse.config.boards.alert_rules import RULES
from finpulse.config.boards.build import repo_root
from finpulse.config.boards.catalog import BOARDS, FOLDER_TITLE, FOLDER_UID
from finpulse.config.boards.query import DATASOURCE_TYPE, DATASOURCE_UID
from finpulse.config.deployment import (
    CLICKHOUSE_PLUGIN,
    CLICKHOUSE_PLUGIN_VERSION,
    GRAFANA_DASHBOARDS_DIR,
    GRAFANA_PROVISIONING_DIR,
    PYTHON_BASE_IMAGE,
    SERVICES,
    SIM_PROFILE,
)
from finpulse.config.settings import Settings
from finpulse.models.alerts import Severity

PROV = repo_root() / "config/grafana/provisioning"


def load(rel: str) -> dict:
    return yaml.safe_load((PROV / rel).read_text())


def keys_ok(obj: dict, allowed: set[str], where: str) -> None:
    unknown = set(obj) - allowed
    assert not unknown, f"{where}: keys Grafana would silently ignore: {unknown}"


ENV_REF = re.compile(r"^\$[A-Z][A-Z0-9_]*$")


def test_grafana_offline_datasource_provisioning():
    doc = load("datasources/finpulse.yaml")
    keys_ok(doc, {"apiVersion", "datasources", "deleteDatasources", "prune"}, "datasources")
    [ds] = doc["datasources"]
    keys_ok(
        ds,
        {
            "name",
            "uid",
            "type",
            "access",
            "orgId",
            "url",
            "isDefault",
            "editable",
            "jsonData",
            "secureJsonData",
            "version",
            "user",
            "database",
            "basicAuth",
        },
        "ds",
    )
    assert ds["uid"] == DATASOURCE_UID and ds["type"] == DATASOURCE_TYPE
    keys_ok(
        ds["jsonData"],
        {
            "host",
            "port",
            "protocol",
            "secure",
            "username",
            "defaultDatabase",
            "tlsSkipVerify",
            "dialTimeout",
            "queryTimeout",
        },
        "jsonData",
    )
    assert ds["jsonData"]["port"] == SERVICES["clickhouse"].ports["http"]
    # credentials only as environment references, never literal
    for key in ("host", "username", "defaultDatabase"):
        assert ENV_REF.match(ds["jsonData"][key]), key
    assert ENV_REF.match(ds["secureJsonData"]["password"])
    compose_grafana_env = compose()["services"]["grafana"]["environment"]
    for ref in (
        ds["jsonData"]["host"],
        ds["jsonData"]["username"],
        ds["secureJsonData"]["password"],
    ):
        assert ref[1:] in compose_grafana_env, f"{ref} not given to the grafana container"


def test_grafana_offline_dashboards_provider():
    doc = load("dashboards/finpulse.yaml")
    keys_ok(doc, {"apiVersion", "providers"}, "dashboards")
    [p] = doc["providers"]
    keys_ok(
        p,
        {
            "name",
            "orgId",
            "folder",
            "folderUid",
            "type",
            "disableDeletion",
            "allowUiUpdates",
            "updateIntervalSeconds",
            "options",
        },
        "provider",
    )
    assert p["options"]["path"] == GRAFANA_DASHBOARDS_DIR
    assert (p["folder"], p["folderUid"]) == (FOLDER_TITLE, FOLDER_UID)


RULE_KEYS = {
    "uid",
    "title",
    "condition",
    "data",
    "dashboardUid",
    "panelId",
    "noDataState",
    "execErrState",
    "for",
    "annotations",
    "labels",
    "isPaused",
    "notification_settings",
}


def test_grafana_offline_alert_rules_file():
    doc = load("alerting/rules.yaml")
    keys_ok(doc, {"apiVersion", "groups", "deleteRules"}, "rules")
    [group] = doc["groups"]
    keys_ok(group, {"orgId", "name", "folder", "interval", "rules"}, "group")
    assert group["folder"] == FOLDER_TITLE
    uids = [r["uid"] for r in group["rules"]]
    assert uids == [r.uid for r in RULES] and len(set(uids)) == len(uids)
    for r in group["rules"]:
        keys_ok(r, RULE_KEYS, r["uid"])
        assert r["noDataState"] in ("OK", "NoData", "Alerting")
        assert r["execErrState"] in ("OK", "Error", "Alerting")
        refs = {d["refId"]: d for d in r["data"]}
        assert r["condition"] in refs
        a = refs["A"]
        assert a["datasourceUid"] == DATASOURCE_UID
        assert a["model"]["datasource"]["uid"] == DATASOURCE_UID
        assert a["model"]["editorType"] == "sql" and "$__" in a["model"]["rawSql"]
        assert a["relativeTimeRange"]["from"] > 0
        for d in r["data"][1:]:
            assert d["datasourceUid"] == "__expr__"
            assert d["model"]["expression"] in refs
        assert r["labels"]["severity"] in {s.value for s in Severity}


def test_grafana_offline_contact_points_and_policy_route_every_severity():
    cps = load("alerting/contact-points.yaml")
    keys_ok(cps, {"apiVersion", "contactPoints", "deleteContactPoints"}, "contact points")
    names = {}
    for cp in cps["contactPoints"]:
        keys_ok(cp, {"orgId", "name", "receivers"}, cp["name"])
        for rcv in cp["receivers"]:
            keys_ok(rcv, {"uid", "type", "settings", "disableResolveMessage"}, rcv["uid"])
            names[cp["name"]] = rcv["type"]
            for v in rcv["settings"].values():
                if isinstance(v, str) and v.startswith("$"):
                    assert ENV_REF.match(v)
    assert sorted(names.values()) == ["email", "webhook"]
    pol = load("alerting/policies.yaml")
    keys_ok(pol, {"apiVersion", "policies", "resetPolicies"}, "policies")
    [root] = pol["policies"]
    route_keys = {
        "receiver",
        "group_by",
        "group_wait",
        "group_interval",
        "repeat_interval",
        "routes",
        "object_matchers",
        "continue",
        "mute_time_intervals",
        "orgId",
    }
    keys_ok(root, route_keys, "root")
    assert root["receiver"] in names
    first_match: dict[str, str] = {}
    for route in root["routes"]:
        keys_ok(route, route_keys, "route")
        assert route["receiver"] in names
        [(label, op, value)] = route["object_matchers"]
        assert label == "severity"
        values = value.split("|") if op == "=~" else [value]
        for sev in values:
            first_match.setdefault(sev, route["receiver"])
    assert first_match == {
        "red": "finpulse-oncall-webhook",
        "orange": "finpulse-oncall-webhook",
        "yellow": "finpulse-risk-email",
        "blue": "finpulse-risk-email",
    }


def compose() -> dict:
    return yaml.safe_load((repo_root() / "docker-compose.yml").read_text())


PINNED = re.compile(r"^[a-z0-9./-]+:\d+(\.\d+)+$")


def test_grafana_offline_compose_file():
    doc = compose()
    services = doc["services"]
    assert set(services) == set(SERVICES)
    for name, svc in services.items():
        keys_ok(
            svc,
            {
                "image",
                "build",
                "command",
                "environment",
                "ports",
                "volumes",
                "healthcheck",
                "depends_on",
                "deploy",
                "restart",
                "profiles",
                "ulimits",
            },
            name,
        )
        if SERVICES[name].image:
            assert svc["image"] == SERVICES[name].image and PINNED.match(svc["image"]), name
        else:
            assert svc["build"]["dockerfile"] == "Dockerfile"
            assert PINNED.match(svc["image"].replace("finpulse:", "x/finpulse:"))
        for port_name in SERVICES[name].published:
            port = SERVICES[name].ports[port_name]
            assert f"{port}:{port}" in svc["ports"]
        for dep, cond in svc.get("depends_on", {}).items():
            assert dep in services
            assert cond["condition"] in ("service_healthy", "service_completed_successfully")
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits on {dep}'s health"
    for name in ("kafka", "clickhouse", "grafana", "worker"):
        hc = services[name]["healthcheck"]
        assert hc["test"][0] in ("CMD", "CMD-SHELL") and hc["retries"] > 0
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["init"]["command"][-1] == "finpulse topics create && finpulse migrate"
    assert services["worker"]["depends_on"]["init"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert services["simulator"]["profiles"] == [SIM_PROFILE]
    graf = services["grafana"]
    assert graf["environment"]["GF_INSTALL_PLUGINS"] == (
        f"{CLICKHOUSE_PLUGIN} {CLICKHOUSE_PLUGIN_VERSION}"
    )
    mounts = {v.split(":")[1]: v.split(":")[0] for v in graf["volumes"]}
    assert mounts[GRAFANA_PROVISIONING_DIR] == "./config/grafana/provisioning"
    assert mounts[GRAFANA_DASHBOARDS_DIR] == "./config/grafana/dashboards"
    for src in mounts.values():
        if src.startswith("./"):
            assert (repo_root() / src).is_dir()
    # every FINPULSE_* variable a container gets is a real setting
    fields = {f"FINPULSE_{n.upper()}" for n in Settings.model_fields}
    for name in ("init", "worker", "simulator"):
        env = services[name]["environment"]
        assert set(env) <= fields, set(env) - fields
        assert env["FINPULSE_CLICKHOUSE_URL"] == "http://clickhouse:8123"
        assert env["FINPULSE_BROKER_URL"] == "kafka://kafka:9092"
        assert env["FINPULSE_CLICKHOUSE_PASSWORD"].startswith("${")  # never a literal


@pytest.mark.parametrize("path", ["Dockerfile"])
def test_grafana_offline_dockerfile(path):
    text = (repo_root() / path).read_text()
    assert f"FROM {PYTHON_BASE_IMAGE}\n" in text
    assert "USER finpulse" in text and "pip install ." in text


def test_grafana_offline_every_board_is_provisioned_from_the_mounted_folder():
    files = {p.stem for p in (repo_root() / "config/grafana/dashboards").glob("*.json")}
    assert files == {b.uid for b in BOARDS}


def test_grafana_offline_operations_doc_lists_every_board_url_and_compose_commands():
    from finpulse.config.deployment import grafana_local_url, host_broker_url

    readme = (repo_root() / "docs/operations.md").read_text()
    for board in BOARDS:
        assert f"{grafana_local_url()}/d/{board.uid}" in readme, board.uid
    assert "docker compose up" in readme and f"--profile {SIM_PROFILE}" in readme
    assert host_broker_url() in readme


def test_grafana_offline_no_env_interpolation_accidents_in_rules():
    """Grafana expands $NAME in rule fields (labels, title, ...) but not in annotations or query
    models: a `$` anywhere else would be eaten at load time."""
    for r in load("alerting/rules.yaml")["groups"][0]["rules"]:
        for key, value in r.items():
            if key in ("annotations", "data"):
                continue
            assert "$" not in yaml.safe_dump(value), (r["uid"], key)
