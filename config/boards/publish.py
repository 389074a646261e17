"""``finpulse grafana publish``: push folder, data source, boards, alert rules, contact points
and the notification policy to a running Grafana, idempotently (upsert by uid).

Provisioning files carry ``$NAME`` references that Grafana fills from its environment; the
HTTP API does not, so :func:`publish` fills them from the settings and the given environment
first and refuses to publish a reference it cannot resolve.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from finpulse.config.boards import alert_rules, provisioning
from finpulse.config.boards.catalog import FOLDER_TITLE, FOLDER_UID, boards
from finpulse.config.boards.grafana_api import GrafanaClient
from finpulse.config.boards.render import dashboard_json
from finpulse.config.settings import Settings

log = logging.getLogger(__name__)

_REF = re.compile(r"\$(\w+)")


class PublishError(RuntimeError):
    """A provisioning value could not be resolved, or no token is set.

    (Grafana refusing a request raises :class:`~finpulse.config.boards.grafana_api.GrafanaError`.)
    """


def env_values(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """Values of the ``$NAME`` references, from the settings first, then ``environ``.

    >>> env_values(Settings(clickhouse_url="http://ch:8123"), {})["FINPULSE_CLICKHOUSE_HOST"]
    'ch'
    """
    values = dict(environ)
    values.update(
        {
            "FINPULSE_CLICKHOUSE_HOST": urlsplit(settings.clickhouse_url).hostname or "",
            "FINPULSE_CLICKHOUSE_USER": settings.clickhouse_user,
            "FINPULSE_CLICKHOUSE_PASSWORD": settings.clickhouse_password.get_secret_value(),
            "FINPULSE_CLICKHOUSE_DATABASE": settings.clickhouse_database,
        }
    )
    return values


def resolve(doc: Any, values: Mapping[str, str]) -> Any:
    """``doc`` with every ``$NAME`` in its strings replaced (``$$`` stays a literal ``$``).

    >>> resolve({"a": ["$X-1", "$$Y"]}, {"X": "v"})
    {'a': ['v-1', '$Y']}
    """
    if isinstance(doc, dict):
        return {k: resolve(v, values) for k, v in doc.items()}
    if isinstance(doc, list):
        return [resolve(v, values) for v in doc]
    if not isinstance(doc, str):
        return doc

    def sub(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise PublishError(f"${match.group(1)} is not set (settings or environment)")
        return values[match.group(1)]

    parts = doc.split("$$")
    return "$".join(_REF.sub(sub, p) for p in parts)


def client_for(settings: Settings, url: str) -> GrafanaClient:
    """The API client for ``url`` with the token and timeout from ``settings`` (no network).

    >>> client_for(Settings(grafana_token="glsa_x"), "http://grafana:3000").url("/api/health")
    'http://grafana:3000/api/health'
    """
    token = settings.grafana_token
    if token is None:
        raise PublishError("set FINPULSE_GRAFANA_TOKEN to a Grafana service-account token")
    return GrafanaClient(url, token, timeout_s=settings.grafana_timeout_s)


def publish(
    settings: Settings,
    url: str,
    environ: Mapping[str, str],
    client: GrafanaClient | None = None,
) -> dict[str, Any]:
    """Push everything; a second run overwrites the same objects and creates nothing new.

    Returns ``{"created": [...], "updated": [...]}`` as ``kind:uid`` strings. Raises
    :class:`PublishError` for an unresolved ``$NAME`` or a missing token, and
    :class:`~finpulse.config.boards.grafana_api.GrafanaError` (``GrafanaAuthError`` on 401/403) when
    Grafana refuses a request.

    >>> try:
    ...     publish(Settings(grafana_token=None), "http://grafana:3000", {})
    ... except PublishError as exc:
    ...     print(exc)
    set FINPULSE_GRAFANA_TOKEN to a Grafana service-account token
    """
    api = client or client_for(settings, url)
    values = env_values(settings, environ)
    done: dict[str, Any] = {"created": [], "updated": []}

    def mark(kind: str, uid: str, created: bool) -> None:
        done["created" if created else "updated"].append(f"{kind}:{uid}")

    # folder
    if api.get_or_none(f"/api/folders/{FOLDER_UID}") is None:
        api.post("/api/folders", {"title": FOLDER_TITLE, "uid": FOLDER_UID})
        mark("folder", FOLDER_UID, True)
    else:
        api.put(f"/api/folders/{FOLDER_UID}", {"title": FOLDER_TITLE, "overwrite": True})
        mark("folder", FOLDER_UID, False)

    # data source
    ds = resolve(provisioning.datasource_json(), values)
    if api.get_or_none(f"/api/datasources/uid/{ds['uid']}") is None:
        api.post("/api/datasources", ds)
        mark("datasource", ds["uid"], True)
    else:
        api.put(f"/api/datasources/uid/{ds['uid']}", ds)
        mark("datasource", ds["uid"], False)

    # dashboards: the endpoint upserts by uid with overwrite
    for board in boards(settings.response_target_minutes):
        api.post(
            "/api/dashboards/db",
            {
                "dashboard": {**dashboard_json(board), "id": None},
                "folderUid": FOLDER_UID,
                "overwrite": True,
                "message": "finpulse grafana publish",
            },
        )
        mark("dashboard", board.uid, False)

    # alert rules
    rules = "/api/v1/provisioning/alert-rules"
    for spec in alert_rules.rules(settings.response_target_minutes):
        rule = {
            **alert_rules.rule_json(spec),
            "folderUID": FOLDER_UID,
            "ruleGroup": alert_rules.GROUP,
            "orgID": 1,
        }
        if api.get_or_none(f"{rules}/{spec.uid}") is None:
            api.post(rules, rule)
            mark("alert-rule", spec.uid, True)
        else:
            api.put(f"{rules}/{spec.uid}", rule)
            mark("alert-rule", spec.uid, False)

    # contact points (the API takes one receiver per contact point, named like its group)
    points = "/api/v1/provisioning/contact-points"
    existing = {cp.get("uid") for cp in api.request("GET", points) or []}
    for group in resolve(provisioning.contact_points(), values):
        for receiver in group["receivers"]:
            cp = {"name": group["name"], **receiver}
            if cp["uid"] in existing:
                api.put(f"{points}/{cp['uid']}", cp)
                mark("contact-point", cp["uid"], False)
            else:
                api.post(points, cp)
                mark("contact-point", cp["uid"], True)

    # notification policy tree (always a full replace)
    api.put("/api/v1/provisioning/policies", provisioning.policy_tree())
    mark("policy", "root", False)
    log.info("published to %s: %s", url, done)
    return done
