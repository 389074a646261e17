"""finpulse.streams.local.kafka without a JVM: configuration, Maven errors, the fetch cache and
lock.

A fake ``mvn`` on PATH stands in for Maven; its error outputs are copied from real Maven 3.8.7
runs against Maven Central.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from finpulse.config.settings import Settings
from finpulse.streams.local import kafka as kb
from finpulse.streams.local.stack import StackError, free_port

# Real Maven 3.8.7 outputs (with its colour codes, which -Dstyle.color=never does not remove).
MVN_NO_VERSION = (
    "\x1b[0m\x1b[0m[ERROR] Failed to execute goal on project probe: Could not resolve "
    "dependencies for project local.probe:probe:pom:1: Could not find artifact "
    "org.apache.kafka:kafka_2.13:jar:4.1.3 in central (https://repo.maven.apache.org/maven2)"
    " -> [Help 1]\n[ERROR] \n[ERROR] To see the full stack trace of the errors, re-run Maven "
    "with the -e switch.\n"
)
MVN_TWO_MISSING = (
    "[ERROR] Failed to execute goal on project probe: Could not resolve dependencies for project"
    " local.probe:probe:pom:1: The following artifacts could not be resolved: "
    "org.apache.logging.log4j:log4j-slf4j-impl:jar:2.99.1, "
    "org.apache.logging.log4j:log4j-core:jar:2.99.1: Could not find artifact "
    "org.apache.logging.log4j:log4j-slf4j-impl:jar:2.99.1 in central "
    "(https://repo.maven.apache.org/maven2) -> [Help 1]\n"
)
MVN_OFFLINE_PLUGIN = (
    "[ERROR] Plugin org.apache.maven.plugins:maven-dependency-plugin:3.8.1 or one of its "
    "dependencies could not be resolved: Cannot access central "
    "(https://repo.maven.apache.org/maven2) in offline mode and the artifact "
    "org.apache.maven.plugins:maven-dependency-plugin:jar:3.8.1 has not been downloaded from "
    "it before. -> [Help 1]\n"
)

# Stands in for mvn: counts its runs, fails while FAKE_MVN_FAIL names a file that exists,
# otherwise writes a few jars (slowly, so that a concurrent fetch would overlap).
FAKE_MVN = """#!/bin/sh
echo run >> "$FAKE_MVN_RUNS"
if [ -n "$FAKE_MVN_FAIL" ] && [ -e "$FAKE_MVN_FAIL" ]; then
  printf '%s' "$FAKE_MVN_OUTPUT"
  exit 1
fi
for arg in "$@"; do
  case "$arg" in -DoutputDirectory=*) out="${arg#-DoutputDirectory=}";; esac
done
mkdir -p "$out"
sleep 0.5
touch "$out/kafka_2.13-$FAKE_MVN_VERSION.jar" "$out/kafka-clients-$FAKE_MVN_VERSION.jar"
"""


@pytest.fixture
def fake_mvn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH holding only the fake ``mvn``; returns the file counting its runs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    mvn = bin_dir / "mvn"
    mvn.write_text(FAKE_MVN)
    mvn.chmod(0o755)
    runs = tmp_path / "runs"
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")  # the fake mvn comes first
    monkeypatch.setenv("FAKE_MVN_RUNS", str(runs))
    monkeypatch.setenv("FAKE_MVN_VERSION", "9.9.9")
    return runs


def _runs(counter: Path) -> int:
    return len(counter.read_text().splitlines()) if counter.exists() else 0


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (MVN_NO_VERSION, ["org.apache.kafka:kafka_2.13:jar:4.1.3"]),
        (
            MVN_TWO_MISSING,
            [
                "org.apache.logging.log4j:log4j-slf4j-impl:jar:2.99.1",
                "org.apache.logging.log4j:log4j-core:jar:2.99.1",
            ],
        ),
        (
            MVN_OFFLINE_PLUGIN,
            [
                "org.apache.maven.plugins:maven-dependency-plugin:3.8.1",
                "org.apache.maven.plugins:maven-dependency-plugin:jar:3.8.1",
            ],
        ),
        ("[ERROR] something else entirely\n", []),
    ],
)
def test_maven_failures_name_the_artifact(output: str, expected: list[str]) -> None:
    assert kb.mvn_failed_artifacts(output) == expected


def test_missing_tools_say_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # neither java nor mvn
    with pytest.raises(StackError, match=r"`mvn` on PATH: install Apache Maven") as mvn_err:
        kb.fetch_kafka("9.9.9", cache_dir=tmp_path / "cache")
    broker = kb.KafkaBroker(tmp_path / "kafka", tmp_path / "libs", port=1, controller_port=2)
    with pytest.raises(StackError, match=r"`java` on PATH: install a Java 17") as java_err:
        broker.start()
    assert "\n" not in str(mvn_err.value) and "\n" not in str(java_err.value)


def test_fetch_once_then_cached(tmp_path: Path, fake_mvn: Path) -> None:
    libs = kb.fetch_kafka("9.9.9", cache_dir=tmp_path / "cache")
    assert libs == (tmp_path / "cache" / "kafka-9.9.9" / "libs").resolve()
    assert (libs / "kafka_2.13-9.9.9.jar").exists()
    assert "<version>9.9.9</version>" in (libs.parent / "pom.xml").read_text()
    assert kb.fetch_kafka("9.9.9", cache_dir=tmp_path / "cache") == libs
    assert _runs(fake_mvn) == 1


def test_failed_fetch_names_artifact_and_is_redone(
    tmp_path: Path, fake_mvn: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_flag = tmp_path / "fail"
    fail_flag.touch()
    monkeypatch.setenv("FAKE_MVN_FAIL", str(fail_flag))
    monkeypatch.setenv("FAKE_MVN_OUTPUT", MVN_NO_VERSION)
    with pytest.raises(StackError) as err:
        kb.fetch_kafka("9.9.9", cache_dir=tmp_path / "cache")
    assert str(err.value) == (
        "Maven failed (exit 1) fetching Apache Kafka 9.9.9: "
        "could not fetch org.apache.kafka:kafka_2.13:jar:4.1.3"
    )
    home = tmp_path / "cache" / "kafka-9.9.9"
    assert not (home / kb.MARKER).exists()
    # a half download left behind is redone, not trusted
    (home / "libs").mkdir(parents=True, exist_ok=True)
    (home / "libs" / "half.jar").touch()
    fail_flag.unlink()
    libs = kb.fetch_kafka("9.9.9", cache_dir=tmp_path / "cache")
    assert sorted(p.name for p in libs.iterdir()) == [
        "kafka-clients-9.9.9.jar",
        "kafka_2.13-9.9.9.jar",
    ]
    assert (home / kb.MARKER).exists() and _runs(fake_mvn) == 2


def test_maven_without_the_core_jar_is_an_error(
    tmp_path: Path, fake_mvn: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_MVN_VERSION", "other")
    with pytest.raises(StackError, match=r"holds no kafka_2.13-9.9.9.jar"):
        kb.fetch_kafka("9.9.9", cache_dir=tmp_path / "cache")


def test_concurrent_fetches_run_maven_once(tmp_path: Path, fake_mvn: Path) -> None:
    results: list[Path] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(kb.fetch_kafka("9.9.9", cache_dir=tmp_path / "c"))
        )
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 3 and len(set(results)) == 1
    assert _runs(fake_mvn) == 1


def test_concurrent_fetch_from_another_process_waits_for_the_lock(
    tmp_path: Path, fake_mvn: Path
) -> None:
    code = (
        "import sys; from pathlib import Path; "
        "from finpulse.streams.local.kafka import fetch_kafka; "
        "fetch_kafka('9.9.9', cache_dir=Path(sys.argv[1]))"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[4])}  # checkout
    other = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "c")], env=env)
    kb.fetch_kafka("9.9.9", cache_dir=tmp_path / "c")
    assert other.wait(timeout=60) == 0
    assert _runs(fake_mvn) == 1


def test_server_properties_single_node() -> None:
    broker = kb.KafkaBroker(Path("/tmp/k"), Path("/tmp/libs"), port=9092, controller_port=9093)
    props = dict(line.split("=", 1) for line in broker.server_properties().splitlines() if line)
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["advertised.listeners"] == props["listeners"]
    assert props["listener.security.protocol.map"] == "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:9093"
    assert props["log.dirs"] == str(Path("/tmp/k/kraft").resolve())
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["offsets.topic.num.partitions"] == "1"
    assert props["log.cleaner.dedupe.buffer.size"] == "16777216"
    assert "sasl.enabled.mechanisms" not in props
    assert broker.sasl_bootstrap is None


def test_server_properties_with_sasl_listener() -> None:
    broker = kb.KafkaBroker(
        Path("/tmp/k"), Path("/tmp/libs"), 9092, 9093, sasl_port=9094, sasl_users={"app": "pw"}
    )
    props = dict(line.split("=", 1) for line in broker.server_properties().splitlines() if line)
    assert props["listeners"].endswith(",SASL_PLAINTEXT://127.0.0.1:9094")
    assert "SASL_PLAINTEXT:SASL_PLAINTEXT" in props["listener.security.protocol.map"]
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert props["sasl.enabled.mechanisms"] == "PLAIN"
    assert props["listener.name.sasl_plaintext.plain.sasl.jaas.config"] == (
        'org.apache.kafka.common.security.plain.PlainLoginModule required user_app="pw";'
    )
    assert broker.sasl_bootstrap == "127.0.0.1:9094"


@pytest.mark.parametrize(("user", "password"), [("a b", "pw"), ("app", 'p"w'), ("app", "")])
def test_sasl_users_that_would_break_the_jaas_line_are_refused(user: str, password: str) -> None:
    broker = kb.KafkaBroker(Path("/tmp/k"), Path("/tmp/l"), 1, 2, 3, sasl_users={user: password})
    with pytest.raises(StackError, match="unsupported SASL user"):
        broker.server_properties()


def test_from_settings_takes_ports_dir_and_sasl_user(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        local_broker_port=29092,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_username="finpulse",
        kafka_sasl_password="s3cret",  # type: ignore[arg-type]
    )
    broker = kb.KafkaBroker.from_settings(settings, libs=tmp_path / "libs")
    assert broker.root == (tmp_path / "kafka").resolve()
    assert broker.bootstrap == "127.0.0.1:29092"
    assert broker.sasl_users == {"finpulse": "s3cret"} and broker.sasl_port


def test_settings_cache_dir_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINPULSE_KAFKA_CACHE_DIR", "/srv/cache")
    assert Settings().kafka_cache_dir == Path("/srv/cache")


def test_stop_recorded_leaves_other_programs_alone(tmp_path: Path) -> None:
    assert kb.stop_recorded(tmp_path) is False
    other = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        (tmp_path / kb.STATE_FILE).write_text(f'{{"pid": {other.pid}}}')
        assert kb.stop_recorded(tmp_path) is False
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


# Stands in for java: 30 numbered lines, an ERROR at line 5, then hangs or exits.
FAKE_JAVA = """#!/bin/sh
i=1
while [ $i -le 30 ]; do
  if [ $i -eq 5 ]; then echo "[t] ERROR line $i: bind failed"; else echo "[t] INFO line $i"; fi
  i=$((i + 1))
done
[ -n "$FAKE_JAVA_EXIT" ] && exit 3
exec sleep 60
"""


@pytest.fixture
def fake_java(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A broker folder whose log dir looks formatted, with a fake ``java`` first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "java").write_text(FAKE_JAVA)
    (bin_dir / "java").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    (tmp_path / "libs").mkdir()
    (tmp_path / "libs" / "kafka_2.13-9.9.9.jar").touch()
    (tmp_path / "kafka" / "kraft").mkdir(parents=True)
    (tmp_path / "kafka" / "kraft" / "meta.properties").write_text("cluster.id=x\n")
    (tmp_path / "kafka" / "logs").mkdir()
    (tmp_path / "kafka" / "logs" / "kafka.out").write_text("[old] ERROR from an earlier run\n")
    return tmp_path


def _broker(root: Path) -> kb.KafkaBroker:
    return kb.KafkaBroker(root / "kafka", root / "libs", port=free_port(), controller_port=1)


def test_not_serving_within_the_bound_gives_log_tail_and_kills(fake_java: Path) -> None:
    broker = _broker(fake_java)
    started = time.monotonic()
    with pytest.raises(StackError) as err:
        broker.start(timeout_s=1.0)
    assert time.monotonic() - started < 10
    message = str(err.value)
    assert message.startswith(f"Apache Kafka did not answer on {broker.bootstrap} within 1s")
    assert "INFO line 30" in message and "INFO line 11" in message
    assert "INFO line 10" not in message  # only the last 20 lines...
    assert "ERROR line 5: bind failed" in message  # ...after this run's first error
    assert "earlier run" not in message
    assert broker.pid is None and not (fake_java / "kafka" / kb.STATE_FILE).exists()


def test_exiting_broker_gives_log_tail_at_once(
    fake_java: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_JAVA_EXIT", "1")
    started = time.monotonic()
    with pytest.raises(StackError, match=r"exited with 3 before it served") as err:
        _broker(fake_java).start(timeout_s=60)
    assert time.monotonic() - started < 5
    assert "first error in kafka.out\n[t] ERROR line 5" in str(err.value)
