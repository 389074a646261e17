"""`finpulse grafana publish` against a local HTTP server that records requests and keeps
state like Grafana's API would: a contract test (paths, methods, payloads, idempotency), not a
test against a real Grafana (none can run here, INFRA.md)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import SecretStr

from finpulse.config.boards.alert_rules import RULES
from finpulse.config.boards.catalog import BOARDS, FOLDER_UID
from finpulse.config.boards.grafana_api import GrafanaAuthError, GrafanaError
from finpulse.config.boards.publish import PublishError, publish
from finpulse.config.boards.query import DATASOURCE_UID
from finpulse.config.settings import Settings
from finpulse.streams.cli import main
from finpulse.streams.local.stack import free_port

TOKEN = "glsa_test_token"
WRONG = "glsa_wrong_Zq9"


class FakeGrafana:
    """The slice of Grafana's HTTP API that publish uses, with in-memory state."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any]] = []
        self.folders: dict[str, dict] = {}
        self.datasources: dict[str, dict] = {}
        self.dashboards: dict[str, dict] = {}
        self.rules: dict[str, dict] = {}
        self.contact_points: dict[str, dict] = {}
        self.policy: dict | None = None
        self.fail: tuple[int, str] | None = None  # answer every request with this
        self.release = threading.Event()  # set: requests are answered; clear: they hang

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        self.requests.append((method, path, body))
        if self.fail is not None:
            return self.fail[0], {"message": self.fail[1]}
        routes: list[tuple[str, str, Any]] = [
            ("GET", r"/api/folders/([\w-]+)", lambda m: self._get(self.folders, m[1])),
            ("POST", r"/api/folders", lambda m: self._create(self.folders, body["uid"], body)),
            (
                "PUT",
                r"/api/folders/([\w-]+)",
                lambda m: self._update(self.folders, m[1], {"uid": m[1], "title": body["title"]}),
            ),
            ("GET", r"/api/datasources/uid/([\w-]+)", lambda m: self._get(self.datasources, m[1])),
            (
                "POST",
                r"/api/datasources",
                lambda m: self._create(self.datasources, body["uid"], body),
            ),
            (
                "PUT",
                r"/api/datasources/uid/([\w-]+)",
                lambda m: self._update(self.datasources, m[1], body),
            ),
            ("POST", r"/api/dashboards/db", lambda m: self._dashboard(body)),
            (
                "GET",
                r"/api/v1/provisioning/alert-rules/([\w-]+)",
                lambda m: self._get(self.rules, m[1]),
            ),
            (
                "POST",
                r"/api/v1/provisioning/alert-rules",
                lambda m: self._create(self.rules, body["uid"], body, 201),
            ),
            (
                "PUT",
                r"/api/v1/provisioning/alert-rules/([\w-]+)",
                lambda m: self._update(self.rules, m[1], body),
            ),
            (
                "GET",
                r"/api/v1/provisioning/contact-points",
                lambda m: (200, list(self.contact_points.values())),
            ),
            (
                "POST",
                r"/api/v1/provisioning/contact-points",
                lambda m: self._create(self.contact_points, body["uid"], body, 202),
            ),
            (
                "PUT",
                r"/api/v1/provisioning/contact-points/([\w-]+)",
                lambda m: self._update(self.contact_points, m[1], body, 202),
            ),
            ("PUT", r"/api/v1/provisioning/policies", lambda m: self._policy(body)),
        ]
        for verb, pattern, fn in routes:
            m = re.fullmatch(pattern, path.split("?")[0])
            if verb == method and m:
                return fn(m)
        return 404, {"message": f"no route {method} {path}"}

    def _get(self, store: dict, uid: str) -> tuple[int, Any]:
        return (200, store[uid]) if uid in store else (404, {"message": "not found"})

    def _create(self, store: dict, uid: str, body: dict, ok: int = 200) -> tuple[int, Any]:
        if uid in store:
            return 409, {"message": "already exists"}
        store[uid] = body
        return ok, body

    def _update(self, store: dict, uid: str, body: dict, ok: int = 200) -> tuple[int, Any]:
        if uid not in store:
            return 404, {"message": "not found"}
        store[uid] = body
        return ok, body

    def _dashboard(self, body: dict) -> tuple[int, Any]:
        uid = body["dashboard"]["uid"]
        if uid in self.dashboards and not body.get("overwrite"):
            return 412, {"message": "version-mismatch"}
        self.dashboards[uid] = body
        return 200, {"uid": uid, "status": "success"}

    def _policy(self, body: dict) -> tuple[int, Any]:
        self.policy = body
        return 202, {"message": "policies updated"}


@pytest.fixture
def grafana() -> Iterator[tuple[str, FakeGrafana]]:
    state = FakeGrafana()
    state.release.set()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            state.release.wait(10)
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                code, payload = 401, {"message": "unauthorized"}
            else:
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n)) if n else None
                code, payload = state.handle(self.command, self.path, body)
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _serve

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    state.release.set()
    server.shutdown()
    server.server_close()


SETTINGS = Settings(
    grafana_token=SecretStr(TOKEN),
    clickhouse_url="http://clickhouse:8123",
    clickhouse_user="board_reader",
    clickhouse_password=SecretStr("s3cret"),
)
ENV = {
    "FINPULSE_GRAFANA_WEBHOOK_URL": "https://hooks.example/finpulse",
    "FINPULSE_ALERT_EMAIL": "risk@example.com",
}


def test_grafana_publish_contract_first_run_creates_second_run_overwrites(grafana):
    url, state = grafana
    first = publish(SETTINGS, url, ENV)
    calls = [(m, p) for m, p, _ in state.requests]
    posts = sorted(p for m, p in calls if m == "POST")
    assert posts == sorted(
        ["/api/folders", "/api/datasources"]
        + ["/api/dashboards/db"] * len(BOARDS)
        + ["/api/v1/provisioning/alert-rules"] * len(RULES)
        + ["/api/v1/provisioning/contact-points"] * 2
    )
    assert ("PUT", "/api/v1/provisioning/policies") in calls
    assert set(state.folders) == {FOLDER_UID}
    assert set(state.dashboards) == {b.uid for b in BOARDS}
    assert all(d["folderUid"] == FOLDER_UID and d["overwrite"] for d in state.dashboards.values())
    assert set(state.rules) == {r.uid for r in RULES}
    for rule in state.rules.values():
        assert rule["folderUID"] == FOLDER_UID and rule["ruleGroup"] == "finpulse"
        assert rule["data"][0]["datasourceUid"] == DATASOURCE_UID
    ds = state.datasources[DATASOURCE_UID]
    assert ds["jsonData"]["host"] == "clickhouse" and ds["jsonData"]["username"] == "board_reader"
    assert ds["secureJsonData"] == {"password": "s3cret"}  # resolved; the API does not expand $
    assert (
        state.contact_points["finpulse-webhook"]["settings"]["url"]
        == ENV["FINPULSE_GRAFANA_WEBHOOK_URL"]
    )
    assert state.policy and {r["object_matchers"][0][2] for r in state.policy["routes"]} >= {
        "red",
        "orange",
        "yellow",
        "blue",
    }
    assert len(first["created"]) == 2 + len(RULES) + 2

    snapshot = json.dumps(
        [
            state.folders,
            state.datasources,
            state.dashboards,
            state.rules,
            state.contact_points,
            state.policy,
        ],
        sort_keys=True,
    )
    n = len(state.requests)
    second = publish(SETTINGS, url, ENV)
    again = [(m, p) for m, p, _ in state.requests[n:]]
    assert second["created"] == []
    assert [p for m, p in again if m == "POST"] == ["/api/dashboards/db"] * len(BOARDS)
    assert ("PUT", f"/api/datasources/uid/{DATASOURCE_UID}") in again
    assert ("PUT", f"/api/folders/{FOLDER_UID}") in again
    assert sum(1 for m, p in again if m == "PUT" and "/alert-rules/" in p) == len(RULES)
    assert (
        json.dumps(
            [
                state.folders,
                state.datasources,
                state.dashboards,
                state.rules,
                state.contact_points,
                state.policy,
            ],
            sort_keys=True,
        )
        == snapshot
    )


def test_grafana_publish_contract_refuses_unresolved_references(grafana):
    url, _ = grafana
    with pytest.raises(PublishError, match="FINPULSE_GRAFANA_WEBHOOK_URL"):
        publish(SETTINGS, url, {"FINPULSE_ALERT_EMAIL": "x@example.com"})


def test_grafana_publish_contract_cli_reads_token_from_env(grafana, monkeypatch, capsys):
    url, _ = grafana
    monkeypatch.setenv("FINPULSE_GRAFANA_TOKEN", TOKEN)
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    assert main(["grafana", "publish", "--url", url]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["created"]
    assert TOKEN not in repr(Settings())  # SecretStr: never printed in clear
    monkeypatch.setenv("FINPULSE_GRAFANA_TOKEN", WRONG)
    assert main(["grafana", "publish", "--url", url]) == 2
    err = capsys.readouterr().err
    assert "HTTP 401: unauthorized" in err and "FINPULSE_GRAFANA_TOKEN" in err
    assert WRONG not in err


def test_grafana_publish_contract_wrong_token_raises_auth_error_without_the_token(grafana, caplog):
    url, _ = grafana
    caplog.set_level("DEBUG")
    with pytest.raises(GrafanaAuthError) as info:
        publish(SETTINGS.model_copy(update={"grafana_token": SecretStr(WRONG)}), url, ENV)
    assert info.value.status == 401 and info.value.path == f"/api/folders/{FOLDER_UID}"
    assert WRONG not in str(info.value) and WRONG not in caplog.text and TOKEN not in caplog.text


@pytest.mark.parametrize(
    ("status", "kind"), [(403, GrafanaAuthError), (500, GrafanaError), (409, GrafanaError)]
)
def test_grafana_publish_contract_http_errors_carry_status_and_grafana_message(
    grafana, status, kind
):
    url, state = grafana
    state.fail = (status, f"grafana says no ({status})")
    with pytest.raises(kind) as info:
        publish(SETTINGS, url, ENV)
    assert info.value.status == status
    assert f"HTTP {status}: grafana says no ({status})" in str(info.value)
    assert (status == 403) == isinstance(info.value, GrafanaAuthError)


def test_grafana_publish_contract_times_out_on_a_silent_grafana(grafana):
    url, state = grafana
    state.release.clear()  # the server accepts the connection but does not answer
    with pytest.raises(GrafanaError, match="timed out") as info:
        publish(SETTINGS.model_copy(update={"grafana_timeout_s": 0.3}), url, ENV)
    assert info.value.status is None


def test_grafana_publish_contract_unreachable_grafana_is_a_clear_error():
    port = free_port()
    with pytest.raises(GrafanaError, match=f"cannot reach http://127.0.0.1:{port}"):
        publish(SETTINGS, f"http://127.0.0.1:{port}", ENV)
