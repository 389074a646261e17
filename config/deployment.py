"""The production stack in one place: service names, images, ports, paths.

``docker-compose.yml`` is generated from this module (``finpulse grafana build``); the
Grafana data-source provisioning, the settings' Grafana URL default, the docs and the
tests read the same constants.

>>> SERVICES["kafka"].ports["kafka"], SERVICES["clickhouse"].ports["http"]
(9092, 8123)
>>> host_broker_url()
'kafka://localhost:29092'
>>> internal_url("clickhouse", "http")
'http://clickhouse:8123'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Service:
    name: str
    image: str | None  # None: built from the Dockerfile
    ports: dict[str, int] = field(default_factory=dict)
    published: tuple[str, ...] = ()  # port names published on the host (same number)


# The Apache Kafka the tests and the local stack run (Maven Central) and compose deploys.
KAFKA_VERSION = "4.1.2"
FINPULSE_IMAGE = "finpulse:0.1.0"
PYTHON_BASE_IMAGE = "python:3.11.11-slim-bookworm"
CLICKHOUSE_PLUGIN = "grafana-clickhouse-datasource"
CLICKHOUSE_PLUGIN_VERSION = "4.4.0"

SERVICES: dict[str, Service] = {
    s.name: s
    for s in (
        Service(
            "kafka",
            f"apache/kafka:{KAFKA_VERSION}",
            {"kafka": 9092, "controller": 9093, "external": 29092},
            ("external",),
        ),
        Service(
            "clickhouse",
            "clickhouse/clickhouse-server:25.3",
            {"http": 8123, "native": 9000},
            ("http",),
        ),
        Service("grafana", "grafana/grafana:11.6.0", {"http": 3000}, ("http",)),
        Service("init", None),
        Service("worker", None, {"web": 6066}),
        Service("simulator", None),
    )
}

WORKER_REPLICAS = 2
WORKER_STATS_PATH = "/tmp/finpulse-worker-stats.json"
SIM_PROFILE = "sim"
GRAFANA_PROVISIONING_DIR = "/etc/grafana/provisioning"
GRAFANA_DASHBOARDS_DIR = "/var/lib/grafana/dashboards/finpulse"


def internal_url(service: str, port: str, scheme: str = "http") -> str:
    """URL of a service inside the compose network."""
    return f"{scheme}://{service}:{SERVICES[service].ports[port]}"


def host_broker_url() -> str:
    """The compose Kafka as a producer on the host reaches it."""
    return f"kafka://localhost:{SERVICES['kafka'].ports['external']}"


def grafana_local_url() -> str:
    """Grafana as a user of ``docker compose up`` reaches it."""
    return f"http://localhost:{SERVICES['grafana'].ports['http']}"


def _required(name: str) -> str:
    """A compose interpolation that stops `docker compose up` when ``name`` is unset."""
    return "${" + name + ":?set " + name + "}"


def finpulse_environment() -> dict[str, str]:
    """``FINPULSE_*`` settings of every finpulse container (secrets from the host env)."""
    return {
        "FINPULSE_BROKER_URL": internal_url("kafka", "kafka", "kafka"),
        "FINPULSE_CLICKHOUSE_URL": internal_url("clickhouse", "http"),
        "FINPULSE_CLICKHOUSE_USER": "${FINPULSE_CLICKHOUSE_USER:-finpulse}",
        "FINPULSE_CLICKHOUSE_PASSWORD": _required("FINPULSE_CLICKHOUSE_PASSWORD"),
        "FINPULSE_CLICKHOUSE_DATABASE": "${FINPULSE_CLICKHOUSE_DATABASE:-finpulse}",
        "FINPULSE_TOPIC_PARTITIONS": "${FINPULSE_TOPIC_PARTITIONS:-4}",
        "FINPULSE_WEBHOOK_URL": "${FINPULSE_WEBHOOK_URL:-}",
        "FINPULSE_DATA_DIR": "/var/lib/finpulse",
    }


def _healthy(*names: str) -> dict[str, dict[str, str]]:
    return {n: {"condition": "service_healthy"} for n in names}


def compose_spec() -> dict[str, Any]:
    """The ``docker-compose.yml`` document."""
    kafka, ch, graf = SERVICES["kafka"], SERVICES["clickhouse"], SERVICES["grafana"]
    kp, cp, ep = kafka.ports["kafka"], kafka.ports["controller"], kafka.ports["external"]
    finpulse_build = {"context": ".", "dockerfile": "Dockerfile"}
    env = finpulse_environment()
    services: dict[str, Any] = {
        "kafka": {
            "image": kafka.image,
            "environment": {
                "KAFKA_NODE_ID": "1",
                "KAFKA_PROCESS_ROLES": "broker,controller",
                # PLAINTEXT inside the compose network, EXTERNAL for producers on the host
                "KAFKA_LISTENERS": f"PLAINTEXT://:{kp},CONTROLLER://:{cp},EXTERNAL://:{ep}",
                "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://kafka:{kp},EXTERNAL://localhost:{ep}",
                "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": (
                    "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT"
                ),
                "KAFKA_CONTROLLER_QUORUM_VOTERS": f"1@kafka:{cp}",
                "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
                "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
                "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
                "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
                "KAFKA_LOG_DIRS": "/var/lib/kafka/data",
                "CLUSTER_ID": "${FINPULSE_KAFKA_CLUSTER_ID:-4L6g3nShT-eMCtK--X86sw}",
            },
            "ports": [f"{ep}:{ep}"],
            "volumes": ["kafka-data:/var/lib/kafka/data"],
            "healthcheck": {
                "test": [
                    "CMD-SHELL",
                    f"/opt/kafka/bin/kafka-broker-api-versions.sh --bootstrap-server "
                    f"localhost:{kp} > /dev/null 2>&1",
                ],
                "interval": "10s",
                "timeout": "10s",
                "retries": 12,
                "start_period": "20s",
            },
        },
        "clickhouse": {
            "image": ch.image,
            "environment": {
                "CLICKHOUSE_USER": "${FINPULSE_CLICKHOUSE_USER:-finpulse}",
                "CLICKHOUSE_PASSWORD": env["FINPULSE_CLICKHOUSE_PASSWORD"],
                "CLICKHOUSE_DB": "${FINPULSE_CLICKHOUSE_DATABASE:-finpulse}",
                "CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT": "1",
            },
            "ports": [f"{ch.ports['http']}:{ch.ports['http']}"],
            "volumes": ["clickhouse-data:/var/lib/clickhouse"],
            "ulimits": {"nofile": {"soft": 262144, "hard": 262144}},
            "healthcheck": {
                "test": [
                    "CMD-SHELL",
                    f"wget -qO- http://127.0.0.1:{ch.ports['http']}/ping | grep -q Ok",
                ],
                "interval": "5s",
                "timeout": "5s",
                "retries": 20,
                "start_period": "10s",
            },
        },
        "init": {
            "build": finpulse_build,
            "image": FINPULSE_IMAGE,
            "command": ["sh", "-c", "finpulse topics create && finpulse migrate"],
            "environment": env,
            "depends_on": _healthy("kafka", "clickhouse"),
            "restart": "no",
        },
        "worker": {
            "build": finpulse_build,
            "image": FINPULSE_IMAGE,
            "command": ["finpulse", "worker", "--loglevel", "info"],
            "environment": {**env, "FINPULSE_STATS_PATH": WORKER_STATS_PATH},
            "depends_on": {
                **_healthy("kafka", "clickhouse"),
                "init": {"condition": "service_completed_successfully"},
            },
            "deploy": {"replicas": WORKER_REPLICAS},
            "restart": "unless-stopped",
            # the worker rewrites its stats file every stats_interval_s: stale = stuck or dead
            "healthcheck": {
                "test": [
                    "CMD",
                    "python",
                    "-c",
                    "import os, sys, time; sys.exit(time.time() - os.path.getmtime("
                    f"'{WORKER_STATS_PATH}') > 30)",
                ],
                "interval": "15s",
                "timeout": "5s",
                "retries": 5,
                "start_period": "30s",
            },
        },
        "simulator": {
            "build": finpulse_build,
            "image": FINPULSE_IMAGE,
            "profiles": [SIM_PROFILE],
            "command": [
                "finpulse",
                "simulate",
                "--rate",
                "${FINPULSE_SIM_RATE:-200}",
                "--duration",
                "${FINPULSE_SIM_DURATION:-3600}",
            ],
            "environment": env,
            "depends_on": {
                "init": {"condition": "service_completed_successfully"},
                "worker": {"condition": "service_healthy"},
            },
            "restart": "no",
        },
        "grafana": {
            "image": graf.image,
            "environment": {
                "GF_INSTALL_PLUGINS": f"{CLICKHOUSE_PLUGIN} {CLICKHOUSE_PLUGIN_VERSION}",
                "GF_SECURITY_ADMIN_PASSWORD": _required("FINPULSE_GRAFANA_ADMIN_PASSWORD"),
                "GF_USERS_ALLOW_SIGN_UP": "false",
                "GF_SMTP_ENABLED": "${FINPULSE_SMTP_ENABLED:-false}",
                "GF_SMTP_HOST": "${FINPULSE_SMTP_HOST:-}",
                "GF_SMTP_FROM_ADDRESS": "${FINPULSE_SMTP_FROM:-finpulse@localhost}",
                # read by the provisioning files ($NAME references)
                "FINPULSE_CLICKHOUSE_HOST": "clickhouse",
                "FINPULSE_CLICKHOUSE_USER": "${FINPULSE_CLICKHOUSE_USER:-finpulse}",
                "FINPULSE_CLICKHOUSE_PASSWORD": env["FINPULSE_CLICKHOUSE_PASSWORD"],
                "FINPULSE_CLICKHOUSE_DATABASE": "${FINPULSE_CLICKHOUSE_DATABASE:-finpulse}",
                # Grafana posts its own alert JSON: a receiver apart from finpulse's webhook
                "FINPULSE_GRAFANA_WEBHOOK_URL": (
                    "${FINPULSE_GRAFANA_WEBHOOK_URL:-http://localhost:9/webhook-not-configured}"
                ),
                "FINPULSE_ALERT_EMAIL": "${FINPULSE_ALERT_EMAIL:-risk-oncall@example.com}",
            },
            "ports": [f"{graf.ports['http']}:{graf.ports['http']}"],
            "volumes": [
                f"./config/grafana/provisioning:{GRAFANA_PROVISIONING_DIR}:ro",
                f"./config/grafana/dashboards:{GRAFANA_DASHBOARDS_DIR}:ro",
                "grafana-data:/var/lib/grafana",
            ],
            "depends_on": _healthy("clickhouse"),
            "healthcheck": {
                "test": [
                    "CMD-SHELL",
                    f"wget -qO- http://127.0.0.1:{graf.ports['http']}/api/health | grep -q ok",
                ],
                "interval": "10s",
                "timeout": "5s",
                "retries": 12,
                "start_period": "30s",
            },
        },
    }
    return {
        "name": "finpulse",
        "services": services,
        "volumes": {"kafka-data": {}, "clickhouse-data": {}, "grafana-data": {}},
    }
