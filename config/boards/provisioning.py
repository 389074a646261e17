"""Grafana provisioning documents: data source, dashboards provider, contact points, policy.

Credentials are ``$NAME`` references that Grafana fills from its environment (set by
docker-compose from the same ``FINPULSE_*`` variables the workers read).

>>> datasource_file()["datasources"][0]["secureJsonData"]
{'password': '$FINPULSE_CLICKHOUSE_PASSWORD'}
>>> [r["receiver"] for r in policies_file()["policies"][0]["routes"]][:2]
['finpulse-oncall-webhook', 'finpulse-oncall-webhook']
"""

from __future__ import annotations

from typing import Any

from finpulse.config.boards.catalog import FOLDER_TITLE, FOLDER_UID
from finpulse.config.boards.query import DATASOURCE_NAME, DATASOURCE_TYPE, DATASOURCE_UID
from finpulse.config.deployment import GRAFANA_DASHBOARDS_DIR, SERVICES

WEBHOOK_RECEIVER = "finpulse-oncall-webhook"
EMAIL_RECEIVER = "finpulse-risk-email"

# severity -> (receiver, group_wait, repeat_interval); red and orange page on-call and are
# also mailed (continue), yellow and blue are mailed only, blue once a day.
SEVERITY_ROUTES: dict[str, tuple[str, str, str]] = {
    "red": (WEBHOOK_RECEIVER, "10s", "15m"),
    "orange": (WEBHOOK_RECEIVER, "30s", "1h"),
    "yellow": (EMAIL_RECEIVER, "1m", "4h"),
    "blue": (EMAIL_RECEIVER, "5m", "24h"),
}


def datasource_json() -> dict[str, Any]:
    """The ClickHouse data source (plugin v4 settings)."""
    return {
        "name": DATASOURCE_NAME,
        "uid": DATASOURCE_UID,
        "type": DATASOURCE_TYPE,
        "access": "proxy",
        "isDefault": True,
        "editable": False,
        "jsonData": {
            "host": "$FINPULSE_CLICKHOUSE_HOST",
            "port": SERVICES["clickhouse"].ports["http"],
            "protocol": "http",
            "secure": False,
            "username": "$FINPULSE_CLICKHOUSE_USER",
            "defaultDatabase": "$FINPULSE_CLICKHOUSE_DATABASE",
        },
        "secureJsonData": {"password": "$FINPULSE_CLICKHOUSE_PASSWORD"},
    }


def datasource_file() -> dict[str, Any]:
    return {"apiVersion": 1, "datasources": [datasource_json()]}


def dashboards_file() -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "finpulse",
                "orgId": 1,
                "folder": FOLDER_TITLE,
                "folderUid": FOLDER_UID,
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 30,
                "options": {"path": GRAFANA_DASHBOARDS_DIR, "foldersFromFilesStructure": False},
            }
        ],
    }


def contact_points() -> list[dict[str, Any]]:
    return [
        {
            "orgId": 1,
            "name": WEBHOOK_RECEIVER,
            "receivers": [
                {
                    "uid": "finpulse-webhook",
                    "type": "webhook",
                    "settings": {"url": "$FINPULSE_GRAFANA_WEBHOOK_URL", "httpMethod": "POST"},
                    "disableResolveMessage": False,
                }
            ],
        },
        {
            "orgId": 1,
            "name": EMAIL_RECEIVER,
            "receivers": [
                {
                    "uid": "finpulse-email",
                    "type": "email",
                    "settings": {"addresses": "$FINPULSE_ALERT_EMAIL", "singleEmail": True},
                    "disableResolveMessage": False,
                }
            ],
        },
    ]


def contact_points_file() -> dict[str, Any]:
    return {"apiVersion": 1, "contactPoints": contact_points()}


def policy_tree() -> dict[str, Any]:
    """The notification policy tree: one route per severity label value."""
    routes = []
    for severity, (receiver, wait, repeat) in SEVERITY_ROUTES.items():
        routes.append(
            {
                "receiver": receiver,
                "object_matchers": [["severity", "=", severity]],
                "group_wait": wait,
                "repeat_interval": repeat,
                "continue": receiver == WEBHOOK_RECEIVER,
            }
        )
    # Paged severities fall through to the e-mail route too (continue: true above).
    routes.insert(
        2, {"receiver": EMAIL_RECEIVER, "object_matchers": [["severity", "=~", "red|orange"]]}
    )
    return {
        "receiver": EMAIL_RECEIVER,
        "group_by": ["grafana_folder", "alertname"],
        "group_wait": "30s",
        "group_interval": "5m",
        "repeat_interval": "4h",
        "routes": routes,
    }


def policies_file() -> dict[str, Any]:
    return {"apiVersion": 1, "policies": [{"orgId": 1, **policy_tree()}]}
