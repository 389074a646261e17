"""Real Apache Kafka as a child process: fetch its jars from Maven Central, format, start, stop.

There is no release tarball here, but the broker is on Maven Central and Java 17 is installed
(INFRA.md). :func:`fetch_kafka` resolves ``org.apache.kafka:kafka_2.13`` plus a log4j2 binding
with Maven, once, into ``<cache>/kafka-<version>/libs`` (a marker file is written only after
a complete download, and a file lock keeps two processes from fetching at once).
:class:`KafkaBroker` runs one combined KRaft broker+controller on 127.0.0.1: it formats the
log dir only when it holds no ``meta.properties`` yet (a restart keeps topics, records and
committed offsets), waits until the broker answers a Kafka request, and stops it with
SIGTERM, then SIGKILL. Everything it writes lives under one folder: ``server.properties``,
``log4j2.properties``, ``kraft/`` (the log), ``logs/kafka.log`` (the broker log),
``logs/kafka.out`` (the JVM's own output) and ``kafka.json`` (pid, for :func:`stop_recorded`).

Real Kafka rejects group session timeouts under ``group.min.session.timeout.ms`` (6 s): use
the production timeouts (``Settings`` defaults 10 s / 3 s) against it, not Tansu's short ones.

Example (needs ``java`` and ``mvn``; the first call downloads the jars)::

    libs = fetch_kafka()
    with KafkaBroker(Path(".finpulse/kafka"), libs, port=free_port()) as broker:
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap)

The broker configuration alone:

>>> broker = KafkaBroker(Path("/tmp/fp-kafka"), Path("/tmp/libs"), port=9092, controller_port=9093)
>>> broker.broker_url
'kafka://127.0.0.1:9092'
>>> "process.roles=broker,controller" in broker.server_properties()
True
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

from finpulse.config.deployment import KAFKA_VERSION
from finpulse.config.settings import Settings
from finpulse.streams.local.processes import StackError, free_port, terminate

log = logging.getLogger(__name__)

LOG4J_VERSION = "2.24.3"  # Kafka 4.1 logs through slf4j-api 1.7.36: the log4j-slf4j-impl binding
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
MARKER = ".complete"
STATE_FILE = "kafka.json"
READY_LINE = "Kafka Server started"

_POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.finpulse</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""

# shutdownHook=disable: log4j's own hook would otherwise close the log while Kafka shuts down.
_LOG4J2 = """status = warn
shutdownHook = disable
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {path}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
"""

# Maven 3.8 names what it could not get in one of these phrases.
_MVN_FAILURE = re.compile(
    r"(?:Could not find artifact|Could not transfer artifact|Failure to find|the artifact|Plugin)"
    r"\s+([\w.\-]+(?::[\w.\-]+){2,4})"
)
_MVN_MISSING_LIST = re.compile(r"following artifacts could not be resolved: ([^\n]+?):\s")


def _require(tool: str, install: str) -> str:
    """Absolute path of ``tool`` on PATH, or a one-line :class:`StackError` naming the fix."""
    found = shutil.which(tool)
    if found is None:
        raise StackError(f"Apache Kafka needs `{tool}` on PATH: install {install}")
    return found


def require_java() -> str:
    """Path of ``java``; the error says what to install."""
    return _require("java", "a Java 17 runtime (apt-get install openjdk-17-jre-headless)")


def require_mvn() -> str:
    """Path of ``mvn``; the error says what to install."""
    return _require("mvn", "Apache Maven (apt-get install maven)")


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/finpulse`` or ``~/.cache/finpulse``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "finpulse"


def kafka_pom(version: str = KAFKA_VERSION, log4j_version: str = LOG4J_VERSION) -> str:
    """The throwaway POM whose runtime dependencies are Kafka's broker classpath.

    >>> "<version>4.1.2</version>" in kafka_pom("4.1.2")
    True
    """
    return _POM.format(kafka=version, log4j=log4j_version)


def mvn_failed_artifacts(output: str) -> list[str]:
    """The artifacts Maven's output says it could not fetch (``group:artifact:...``), in order.

    >>> mvn_failed_artifacts("[ERROR] Could not find artifact org.apache.kafka:kafka_2.13:jar:9.9")
    ['org.apache.kafka:kafka_2.13:jar:9.9']
    """
    found: list[str] = []
    for match in _MVN_MISSING_LIST.finditer(output):
        found.extend(part.strip() for part in match.group(1).split(","))
    found.extend(m.group(1) for m in _MVN_FAILURE.finditer(output))
    return list(dict.fromkeys(found))


def _mvn_error(version: str, returncode: int, output: str) -> StackError:
    clean = re.sub(r"\x1b\[[0-9;]*m", "", output)
    artifacts = mvn_failed_artifacts(clean)
    if artifacts:
        what = "could not fetch " + ", ".join(artifacts)
    else:
        errors = [ln for ln in clean.splitlines() if ln.startswith("[ERROR]") and ln[8:].strip()]
        what = errors[0][8:].strip() if errors else " ".join(clean.split())[-300:] or "no output"
    return StackError(f"Maven failed (exit {returncode}) fetching Apache Kafka {version}: {what}")


@contextlib.contextmanager
def _file_lock(path: Path, timeout_s: float) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path``; :class:`StackError` after ``timeout_s``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StackError(f"{path} stayed locked for {timeout_s:.0f}s") from None
                time.sleep(0.2)  # poll the lock inside a deadline
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def fetch_kafka(
    version: str = KAFKA_VERSION, cache_dir: Path | None = None, timeout_s: float = 900.0
) -> Path:
    """Folder of Kafka's jars, downloaded with Maven the first time (one process at a time).

    ``cache_dir`` defaults to :func:`default_cache_dir`; the jars land in
    ``<cache_dir>/kafka-<version>/libs``. A download that did not finish (no marker) is
    redone. Raises :class:`StackError` naming the artifact Maven could not fetch.
    """
    home = (cache_dir or default_cache_dir()).expanduser().resolve() / f"kafka-{version}"
    libs = home / "libs"

    def complete() -> bool:
        return (home / MARKER).exists() and (libs / f"kafka_2.13-{version}.jar").exists()

    if complete():
        return libs
    mvn = require_mvn()
    with _file_lock(home.with_name(home.name + ".lock"), timeout_s):
        if complete():  # another process finished while we waited
            return libs
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        (home / "pom.xml").write_text(kafka_pom(version))
        argv = [mvn, "-B", "-q", "-U", "-Dstyle.color=never", "-f", str(home / "pom.xml")]
        argv += [f"{DEPENDENCY_PLUGIN}:copy-dependencies", "-DincludeScope=runtime"]
        argv += [f"-DoutputDirectory={libs}"]
        log.info("fetching Apache Kafka %s with Maven into %s", version, libs)
        started = time.monotonic()
        try:
            done = _run(argv, timeout_s, cwd=home)
        except subprocess.TimeoutExpired:
            raise StackError(f"Maven did not fetch Kafka {version} in {timeout_s:.0f}s") from None
        if done.returncode != 0:
            raise _mvn_error(version, done.returncode, done.stdout + done.stderr)
        if not (libs / f"kafka_2.13-{version}.jar").exists():
            raise StackError(f"Maven finished but {libs} holds no kafka_2.13-{version}.jar")
        jars = sorted(p.name for p in libs.glob("*.jar"))
        (home / MARKER).write_text(json.dumps({"version": version, "jars": jars}))
        log.info("fetched %d jars in %.1fs", len(jars), time.monotonic() - started)
    return libs


def new_cluster_id() -> str:
    """A random KRaft cluster id: 22 url-safe base64 characters, never starting with ``-``.

    >>> cid = new_cluster_id()
    >>> len(cid), cid[0] != "-"
    (22, True)
    """
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


_JAAS_SAFE = re.compile(r"[A-Za-z0-9_.@+\-]+")


def _plain_jaas(users: Mapping[str, str]) -> str:
    """Broker-side JAAS line accepting ``users`` over SASL/PLAIN.

    >>> _plain_jaas({"app": "pw"})
    'org.apache.kafka.common.security.plain.PlainLoginModule required user_app="pw";'
    """
    for name, password in users.items():
        if not _JAAS_SAFE.fullmatch(name) or not password or re.search(r'["\\\s]', password):
            raise StackError(f"unsupported SASL user or password for {name!r}")
    entries = " ".join(f'user_{name}="{password}"' for name, password in users.items())
    return f"org.apache.kafka.common.security.plain.PlainLoginModule required {entries};"


class KafkaBroker:
    """One combined KRaft broker+controller on 127.0.0.1, with its files under ``root``.

    ``port`` serves PLAINTEXT; with ``sasl_users`` a second listener on ``sasl_port``
    (a free port by default) serves SASL_PLAINTEXT with mechanism PLAIN. The controller
    port may change between restarts.
    """

    def __init__(
        self,
        root: Path,
        libs: Path,
        port: int,
        controller_port: int | None = None,
        sasl_port: int | None = None,
        sasl_users: Mapping[str, str] | None = None,
        heap_mb: int = 256,
    ) -> None:
        self.root = root.resolve()
        self.libs = libs
        self.port = port
        self.controller_port = controller_port or free_port()
        self.sasl_users = dict(sasl_users or {})
        self.sasl_port = (sasl_port or free_port()) if self.sasl_users else None
        self.heap_mb = heap_mb
        self.log_dir = self.root / "kraft"
        self.log_path = self.root / "logs" / "kafka.log"
        self.out_path = self.root / "logs" / "kafka.out"
        self.formatted_now = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offsets: dict[Path, int] = {}

    @classmethod
    def from_settings(cls, settings: Settings, libs: Path | None = None) -> KafkaBroker:
        """A broker under ``<data_dir>/kafka`` on ``local_broker_port``.

        With ``kafka_security_protocol`` SASL_PLAINTEXT (PLAIN) it also accepts the
        configured user on a SASL listener (:attr:`sasl_bootstrap`).
        """
        users: dict[str, str] = {}
        if settings.kafka_security_protocol == "SASL_PLAINTEXT" and settings.kafka_sasl_username:
            if settings.kafka_sasl_mechanism != "PLAIN" or settings.kafka_sasl_password is None:
                raise StackError("the local Kafka serves SASL/PLAIN with a password only")
            users[settings.kafka_sasl_username] = settings.kafka_sasl_password.get_secret_value()
        return cls(
            settings.data_dir / "kafka",
            libs or fetch_kafka(cache_dir=settings.kafka_cache_dir),
            port=settings.local_broker_port,
            sasl_users=users,
        )

    @property
    def bootstrap(self) -> str:
        """``host:port`` of the PLAINTEXT listener."""
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_bootstrap(self) -> str | None:
        """``host:port`` of the SASL_PLAINTEXT listener, if any."""
        return f"127.0.0.1:{self.sasl_port}" if self.sasl_port else None

    @property
    def broker_url(self) -> str:
        """Faust broker URL of the PLAINTEXT listener."""
        return f"kafka://{self.bootstrap}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def server_properties(self) -> str:
        """The broker's ``server.properties`` (single node, small thread pools)."""
        names = {"PLAINTEXT": self.port, "CONTROLLER": self.controller_port}
        if self.sasl_port:
            names["SASL_PLAINTEXT"] = self.sasl_port
        listeners = ",".join(f"{name}://127.0.0.1:{port}" for name, port in names.items())
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
            "listeners": listeners,
            "advertised.listeners": listeners,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": ",".join(
                f"{name}:{'PLAINTEXT' if name == 'CONTROLLER' else name}" for name in names
            ),
            "log.dirs": str(self.log_dir),
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": "2",
            "num.io.threads": "2",
            # the log cleaner's default 128 MiB buffer would take half the heap (and its RSS)
            "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
        }
        if self.sasl_users:
            props["sasl.enabled.mechanisms"] = "PLAIN"  # Kafka's default is GSSAPI
            props["listener.name.sasl_plaintext.plain.sasl.jaas.config"] = _plain_jaas(
                self.sasl_users
            )
        return "".join(f"{key}={value}\n" for key, value in props.items())

    def java_argv(self, main: str, *args: str) -> list[str]:
        """``java`` with small-heap flags running ``main`` from the Kafka jars.

        Native compression libraries unpack under ``root/tmp``, not a /tmp mounted noexec.
        """
        flags = ["-Xms64m", f"-Xmx{self.heap_mb}m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]
        flags += ["-XX:+ExitOnOutOfMemoryError", f"-Djava.io.tmpdir={self.root / 'tmp'}"]
        flags += [f"-Dlog4j2.configurationFile={self.root / 'log4j2.properties'}"]
        return [require_java(), *flags, "-cp", str(self.libs / "*"), main, *args]

    def _write_config(self) -> None:
        for folder in (self.root / "logs", self.root / "tmp"):
            folder.mkdir(parents=True, exist_ok=True)
        props = self.root / "server.properties"
        props.touch(mode=0o600)  # may hold SASL passwords
        props.write_text(self.server_properties())
        (self.root / "log4j2.properties").write_text(_LOG4J2.format(path=self.log_path))

    def format_storage(self, timeout_s: float = 60.0) -> bool:
        """Format the KRaft log dir unless it already holds ``meta.properties``; True if it did."""
        if (self.log_dir / "meta.properties").exists():
            return False
        shutil.rmtree(self.log_dir, ignore_errors=True)  # a half-formatted dir holds no data
        self._write_config()
        props = str(self.root / "server.properties")
        argv = self.java_argv("kafka.tools.StorageTool", "format", "-t", new_cluster_id())
        try:
            done = _run([*argv, "-c", props, "--standalone"], timeout_s)
        except subprocess.TimeoutExpired:
            raise StackError(f"formatting {self.log_dir} took over {timeout_s:.0f}s") from None
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
            raise StackError(f"formatting {self.log_dir} failed:\n{tail}")
        return True

    def start(self, timeout_s: float = 60.0) -> KafkaBroker:
        """Format if needed, start the JVM and wait until the broker answers a Kafka request.

        Raises :class:`StackError` with the last lines of the broker log if it exits or does
        not answer within ``timeout_s``; the process is then stopped.
        """
        if self._proc is not None:
            return self
        argv = self.java_argv("kafka.Kafka", str(self.root / "server.properties"))
        if not any(self.libs.glob("kafka_2.13-*.jar")):
            raise StackError(f"no Kafka jars in {self.libs}: run fetch_kafka() first")
        self.formatted_now = self.format_storage()
        self._write_config()
        self._log_offsets = {
            p: p.stat().st_size for p in (self.out_path, self.log_path) if p.exists()
        }
        with open(self.out_path, "ab") as out:
            self._proc = subprocess.Popen(
                argv,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        (self.root / STATE_FILE).write_text(
            json.dumps({"pid": self._proc.pid, "bootstrap": self.bootstrap})
        )
        log.info("started Apache Kafka pid=%d on %s", self._proc.pid, self.bootstrap)
        try:
            self._wait_ready(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        """Poll until the broker answers; ask it only once its log says it started (or half
        the bound has passed), since its port accepts connections before it answers."""
        started = time.monotonic()
        deadline = started + timeout_s
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise StackError(
                    f"Apache Kafka exited with {self._proc.returncode} before it served; "
                    f"its log:\n{self.log_tail()}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StackError(
                    f"Apache Kafka did not answer on {self.bootstrap} within {timeout_s:.0f}s; "
                    f"its log:\n{self.log_tail()}"
                )
            said_started = READY_LINE in self._new_log(self.log_path)
            if (said_started or time.monotonic() - started > timeout_s / 2) and _answers(
                self.bootstrap, min(remaining, 2.0)
            ):
                return
            time.sleep(0.1)  # poll inside the deadline

    def _new_log(self, path: Path) -> str:
        """What ``path`` gained since this run started."""
        if not path.exists():
            return ""
        with open(path, "rb") as handle:
            handle.seek(self._log_offsets.get(path, 0))
            return handle.read().decode(errors="replace")

    def log_tail(self, lines: int = 20) -> str:
        """This run's last ``lines`` of the JVM output and of the broker log, each preceded
        by its first ERROR (with the two lines after it) when that is not among them."""
        parts = []
        for path in (self.out_path, self.log_path):
            text = self._new_log(path).rstrip().splitlines()
            if not text:
                continue
            head = text[:-lines]
            errors = [i for i, line in enumerate(head) if " ERROR " in line or " FATAL " in line]
            if errors:
                first = head[errors[0] : errors[0] + 3]
                parts.append(f"--- first error in {path.name}\n" + "\n".join(first))
            parts.append(f"--- last lines of {path.name}\n" + "\n".join(text[-lines:]))
        return "\n".join(parts) or "(no output)"

    def rss_bytes(self) -> int:
        """Resident memory of the broker JVM (0 when not running)."""
        if self._proc is None or self._proc.poll() is not None:
            return 0
        status = Path(f"/proc/{self._proc.pid}/status").read_text()
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        return int(match.group(1)) * 1024 if match else 0

    def stop(self, grace_s: float = 20.0) -> None:
        """SIGTERM (controlled shutdown), then SIGKILL after ``grace_s``."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        terminate(proc.pid, lambda: proc.poll() is not None, grace_s)
        proc.wait(timeout=5)
        (self.root / STATE_FILE).unlink(missing_ok=True)
        log.info("stopped Apache Kafka pid=%d (exit %s)", proc.pid, proc.returncode)

    def __enter__(self) -> KafkaBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _answers(bootstrap: str, timeout_s: float) -> bool:
    """True when the broker at ``bootstrap`` lists itself in a DescribeCluster answer."""
    host, port = bootstrap.rsplit(":", 1)
    try:  # cheap check first: kafka-python would log every refused connection
        with socket.create_connection((host, int(port)), timeout=0.5):
            pass
    except OSError:
        return False
    from kafka import KafkaAdminClient

    timeout_ms = max(int(timeout_s * 1000), 500)
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            bootstrap_timeout_ms=timeout_ms,
            request_timeout_ms=timeout_ms,
            client_id="finpulse-kafka-ready",
        )
    except Exception:  # not answering yet
        return False
    try:
        return bool(admin.describe_cluster().get("brokers"))
    except Exception:
        return False
    finally:
        admin.close()


def _run(
    argv: list[str], timeout_s: float, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a tool to completion, output captured; ``TimeoutExpired`` past ``timeout_s``."""
    return subprocess.run(
        argv, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout_s
    )


def stop_recorded(root: Path, grace_s: float = 20.0) -> bool:
    """Stop the broker recorded in ``root/kafka.json`` by another process; True if one ran."""
    path = root.resolve() / STATE_FILE
    if not path.exists():
        return False
    pid = int(json.loads(path.read_text())["pid"])
    path.unlink()

    def gone() -> bool:  # exited, or a zombie its parent has not reaped yet
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        except (FileNotFoundError, IndexError):
            return True

    cmdline = Path(f"/proc/{pid}/cmdline")
    if gone() or not cmdline.exists() or b"kafka.Kafka" not in cmdline.read_bytes():
        return False  # gone, or the pid now belongs to another program
    terminate(pid, gone, grace_s)
    return True
