"""Runtime settings, read once from ``FINPULSE_*`` environment variables.

Build one :class:`Settings` in ``main()`` and pass it down; nothing reads the
environment at import time.

>>> s = Settings(broker_url="kafka://127.0.0.1:9092")
>>> s.broker_url
'kafka://127.0.0.1:9092'
>>> s.clickhouse_password  # secrets never print in clear
SecretStr('')
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ConsoleRole = Literal["viewer", "analyst"]
# Minutes an owner team has to respond to (acknowledge, assign or resolve) an alert; '*' for
# every team not listed. The Alerts board and its alert rule are built from this mapping.
DEFAULT_RESPONSE_TARGETS: dict[str, float] = {"*": 60.0}


class ConsoleAccount(BaseModel):
    """A console login: its role and an argon2 hash of its password (never the password).

    Make a hash with ``finpulse console hash-password``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: ConsoleRole
    password_hash: SecretStr

    @field_validator("password_hash")
    @classmethod
    def _argon2(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("$argon2id$", "$argon2i$", "$argon2d$")):
            raise ValueError("an argon2 hash is expected (finpulse console hash-password)")
        return value


SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class Settings(BaseSettings):
    """Every knob of a finpulse process; frozen once built."""

    model_config = SettingsConfigDict(env_prefix="FINPULSE_", frozen=True, extra="forbid")

    app_id: str = "finpulse"

    # --- Kafka -------------------------------------------------------------------------------
    broker_url: str = Field(
        "kafka://127.0.0.1:19092", description="Faust broker URL(s), e.g. kafka://h1:9092;h2:9092"
    )
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    topic_partitions: int = Field(4, ge=1, description="partitions of every finpulse topic")
    topic_replication: int = Field(1, ge=1)
    learning_retention_ms: int = Field(
        30 * 86400 * 1000,
        ge=-1,
        description="retention of the learning streams (-1 = forever); a checkpoint older "
        "than this cannot be replayed up to date",
    )
    # Real Kafka rejects sessions under group.min.session.timeout.ms (6 s by default);
    # the local stack wants short ones per broker, see LOCAL_GROUP_TIMEOUTS below.
    broker_session_timeout_s: float = Field(10.0, gt=0)
    broker_heartbeat_interval_s: float = Field(3.0, gt=0)
    broker_rebalance_timeout_s: float = Field(60.0, gt=0)
    # Faust's defaults (no linger, 16 KiB batches) turn every changelog write of a
    # state record into its own produce request: a socket write per few messages.
    producer_linger_s: float = Field(0.005, ge=0, description="producer batching delay")
    producer_max_batch_bytes: int = Field(
        512 * 1024, ge=16384, description="producer batch size per partition (bytes)"
    )
    producer_compression: Literal["lz4", "zstd", "gzip"] | None = Field(
        None, description="compression of produced batches (changelogs, alerts)"
    )
    # Faust hard-codes 1,500 ms. A broker that holds a fetch until this timeout even when
    # data has arrived (Tansu) then delays every event (docs/benchmarks.md); Kafka answers as
    # soon as data is there, so a short wait only adds idle fetch requests (1 per wait per broker).
    consumer_fetch_max_wait_ms: int = Field(
        25, ge=1, le=1500, description="longest a fetch request waits at the broker (ms)"
    )

    # --- stream processing ---------------------------------------------------------------------
    stream_batch_max: int = Field(2000, ge=1, description="events per processing batch")
    # Natural batching: a batch is what has arrived, plus at most this wait. At 1,000 ev/s
    # a 50 ms wait raised the median produce -> alert latency (docs/benchmarks.md) and no
    # saturation throughput was seen to depend on it (make bench, 0.005 / 0.02 / 0.05).
    stream_batch_within_s: float = Field(0.005, gt=0, description="max wait to fill a batch")
    stream_intake_buffer_max: int = Field(
        4096, ge=1, description="fetched events per input topic not yet taken (backpressure)"
    )
    # Counted in events, not batches: at 1,000 events/s a batch is a few dozen events, and a
    # bound of 8 batches paused the intake whenever a flush was slow (docs/benchmarks.md).
    state_store: Literal["rocksdb", "memory"] = Field(
        "rocksdb",
        description="where keyed state lives: RocksDB on local disk (memory bounded by the "
        "cache settings; a restart reads only the changelog's tail) or memory (grows with "
        "customers; a restart replays the whole changelog)",
    )
    state_dir: Path | None = Field(
        None, description="RocksDB state of this worker (one per worker); unset = data_dir/state"
    )
    state_cache_keys: int = Field(
        20000, ge=1, description="decoded records kept in memory per table (RocksDB store)"
    )
    state_rocksdb_block_cache_bytes: int = Field(
        8 * 1024 * 1024, ge=0, description="RocksDB block cache per table and partition"
    )
    state_rocksdb_write_buffer_bytes: int = Field(
        4 * 1024 * 1024,
        ge=64 * 1024,
        description="RocksDB memtable size per table and partition (two at most)",
    )
    stream_unstored_events_max: int = Field(
        10000, ge=1, description="processed events per agent not yet stored (backpressure)"
    )
    max_event_bytes: int = Field(65536, ge=256, description="larger payloads are dead-lettered")
    max_future_skew_s: float | None = Field(
        86400.0, ge=0, description="events dated later than now + this are dead-lettered"
    )
    web_port: int = Field(6066, ge=0, le=65535, description="Faust web server port")
    stats_path: Path | None = Field(None, description="worker writes its counters here (JSON)")
    stats_interval_s: float = Field(1.0, gt=0)
    lag_interval_s: float = Field(
        5.0, gt=0, description="the worker records its consumer lag (table consumer_lag) this often"
    )
    worker_id: str | None = Field(
        None, description="the worker's name in consumer_lag; unset = host:pid"
    )

    # --- service quality (issue 4) --------------------------------------------------------------
    service_level_thresholds_s: dict[str, float] = Field(
        default_factory=lambda: {
            "call_center": 20.0,
            "chat": 30.0,
            "app": 20.0,
            "web": 20.0,
            "branch": 900.0,
            "email": 86400.0,
        },
        description="per channel: a contact counts as answered in service level if it waited at "
        "most this long (seconds); 80/20 is the contact-centre convention",
    )
    service_level_target: float = Field(0.8, gt=0, le=1, description="service-level target share")
    service_window_minutes: int = Field(
        2, ge=1, le=60, description="trailing minutes pooled for each service-level check"
    )
    service_min_contacts: int = Field(
        3, ge=1, description="contacts a window needs before its service level is judged"
    )
    service_confidence_z: float = Field(
        2.33,
        ge=0,
        description="a window breaches when the Wilson upper bound at this z is "
        "below target (0 = plain point estimate)",
    )
    service_grace_s: float = Field(
        20.0,
        ge=0,
        description="a minute closes when the partition's event time passes its end "
        "plus this grace; later events still update its ClickHouse row",
    )
    service_pool_wait_s: float = Field(
        60.0,
        ge=0,
        description="a channel's pooled minute is judged once every partition has closed it, "
        "or once the leading partition has closed a minute this much event time later (an "
        "idle or lagging partition's counts then join later windows only)",
    )
    complaint_deadline_days: float = Field(15.0, gt=0, description="complaint decision deadline")
    complaint_due_soon_days: float = Field(
        3.0, ge=0, description="status due_soon this many days before the deadline"
    )
    satisfaction_pending_ttl_s: float = Field(
        3 * 86400.0, gt=0, description="how long an interaction waits for its CSAT survey"
    )
    satisfaction_warmup: int = Field(
        300, ge=0, description="surveys learned before MAE/AUC count as after warm-up"
    )
    satisfaction_checkpoint_every: int = Field(
        1000, ge=0, description="checkpoint the satisfaction model every N surveys (0 = never)"
    )

    # --- ClickHouse -------------------------------------------------------------------------
    clickhouse_url: str = "http://127.0.0.1:18123"
    clickhouse_user: str = "default"
    clickhouse_password: SecretStr = SecretStr("")
    clickhouse_database: str = Field("finpulse", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    raw_ttl_days: int = Field(90, ge=1, description="retention of raw event tables")
    rollup_ttl_days: int = Field(730, ge=1, description="retention of rollup tables")
    sink_max_rows: int = Field(10000, ge=1, description="rows per ClickHouse insert")
    # ClickHouse writes one part per insert (server CPU even for a few rows, then merges):
    # flushing each table about once a second keeps the server's share of the cores small.
    sink_flush_interval_s: float = Field(
        1.0, ge=0, description="least time between the starts of two flushes (group commit)"
    )
    sink_retry_initial_s: float = Field(0.2, gt=0)
    sink_retry_max_s: float = Field(5.0, gt=0)

    # --- risk models -----------------------------------------------------------------------
    risk_anomaly_model: Literal["deviation", "hst"] = Field(
        "deviation", description="unsupervised part: fast deviation scorer or River HST"
    )
    risk_checkpoint_every_labels: int = Field(
        200, ge=0, description="checkpoint the risk model after this many labels (0 = never)"
    )
    risk_checkpoint_every_events: int = Field(
        50000, ge=0, description="...or after this many scored transactions (0 = never)"
    )
    drift_grace_s: float = Field(
        20.0,
        ge=0,
        description="a partition closes a minute of scored transactions for the input-drift "
        "detectors when its event time passes the minute's end plus this grace",
    )
    drift_pool_wait_s: float = Field(
        60.0,
        ge=0,
        description="the model's owner feeds a pooled minute to the input-drift detectors once "
        "every partition has closed it, or once the leading partition is this much event "
        "time past it (a lagging partition's later transactions of it are then not counted)",
    )
    restore_model_checkpoints: bool = Field(
        True,
        description="restore each online model (risk, satisfaction) from its latest "
        "checkpoint in ClickHouse before the worker processes its first batch",
    )
    risk_pending_ttl_s: float = Field(
        7 * 86400.0, gt=0, description="how long scored features wait for a fraud label"
    )
    risk_pending_max: int = Field(32, ge=1, description="pending scored txns kept per customer")
    gc_threshold0: int = Field(
        100_000, ge=0, description="worker GC gen-0 threshold (0 = Python's default)"
    )
    # The event loop shares the GIL with Faust's consumer thread (aiokafka runs there), and a
    # hand-off can wait a whole switch interval. Shorter intervals did not measurably help
    # here (docs/benchmarks.md; 0.5 ms was worse): the default is Python's.
    gil_switch_interval_s: float = Field(
        0.005, gt=0, le=0.1, description="worker sys.setswitchinterval (Python's default 0.005)"
    )

    # --- Grafana ----------------------------------------------------------------------------
    grafana_url: str = Field(
        default_factory=lambda: _grafana_default_url(),
        description="Grafana base URL for `finpulse grafana publish`",
    )
    grafana_token: SecretStr | None = Field(
        None, description="Grafana service-account token (FINPULSE_GRAFANA_TOKEN)"
    )
    grafana_timeout_s: float = Field(
        10.0, gt=0, description="timeout of each Grafana API request (`grafana publish`)"
    )
    board_range_s: int = Field(
        6 * 3600, ge=60, description="time range of the HTML board (`finpulse board --html`)"
    )

    # --- policy and alert notification -----------------------------------------------------
    policy_path: Path | None = Field(None, description="policy YAML; default config/policy.yaml")
    holidays_file: Path | None = Field(
        None,
        description="days off ('YYYY-MM-DD') and adjusted working days ('YYYY-MM-DD workday') "
        "for report deadlines in years the official calendar package does not list yet",
    )
    webhook_url: str | None = Field(None, description="alerts are POSTed here; unset = off")
    webhook_secret: SecretStr | None = Field(None, description="HMAC key for the signature")
    webhook_timeout_s: float = Field(5.0, gt=0)
    webhook_max_attempts: int = Field(5, ge=1)
    webhook_retry_initial_s: float = Field(0.5, gt=0)
    webhook_retry_max_s: float = Field(8.0, gt=0)
    webhook_concurrency: int = Field(8, ge=1)

    # --- PII (PCI DSS masking, finpulse.models.masking)
    # -----------------------------------------------
    pii_key: SecretStr | None = Field(
        None, description="HMAC key for card/account tokens; unset = public development key"
    )

    # --- alert console (finpulse console) ------------------------------------------------------
    console_host: str = Field("127.0.0.1", description="the console listens here (loopback)")
    console_port: int = Field(18080, ge=0, le=65535)
    console_accounts: dict[str, ConsoleAccount] = Field(
        default_factory=dict,
        description="logins as JSON: "
        '{"ana": {"role": "analyst", "password_hash": "$argon2id$..."}}',
    )
    console_secret: SecretStr | None = Field(
        None, description="signs session cookies; unset = a random key (sessions end on restart)"
    )
    console_session_max_age_s: int = Field(8 * 3600, ge=60, description="a login lasts this long")
    console_secure_cookies: bool = Field(
        False, description="send the session cookie over HTTPS only (behind a TLS proxy)"
    )
    console_login_attempts: int = Field(
        5, ge=1, description="failed logins per account and per client in the window, then 429"
    )
    console_login_window_s: float = Field(300.0, gt=0)
    console_refresh_s: int = Field(15, ge=0, description="the inbox reloads itself (0 = never)")
    response_target_minutes: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_RESPONSE_TARGETS),
        description="per owner team: minutes to respond to an alert (acknowledge, assign or "
        "resolve; '*' for the rest); alerts waiting longer are past target on the Alerts board",
    )

    # --- local embedded stack (make demo, tests) ------------------------------------------------
    data_dir: Path = Path(".finpulse")
    local_broker: Literal["tansu", "kafka"] = Field(
        "tansu",
        description="the local stack's broker: Tansu (embedded, instant start, memory storage) "
        "or Apache Kafka (a JVM fetched from Maven Central once, disk storage)",
    )
    local_broker_port: int = Field(19092, ge=1, le=65535)
    local_clickhouse_http_port: int = Field(18123, ge=1, le=65535)
    local_clickhouse_tcp_port: int = Field(19000, ge=1, le=65535)
    kafka_cache_dir: Path | None = Field(
        None, description="Apache Kafka's jars are fetched here once; unset = ~/.cache/finpulse"
    )

    @property
    def broker_bootstrap(self) -> list[str]:
        """``host:port`` list for kafka-python, from the Faust URL.

        >>> Settings(broker_url="kafka://a:1;b:2").broker_bootstrap
        ['a:1', 'b:2']
        """
        return [part.split("://", 1)[-1] for part in self.broker_url.split(";") if part]

    def kafka_client_kwargs(self) -> dict[str, object]:
        """Security keyword arguments shared by kafka-python clients."""
        kwargs: dict[str, object] = {"security_protocol": self.kafka_security_protocol}
        if self.kafka_security_protocol.startswith("SASL"):
            kwargs["sasl_mechanism"] = self.kafka_sasl_mechanism
            kwargs["sasl_plain_username"] = self.kafka_sasl_username
            pw = self.kafka_sasl_password
            kwargs["sasl_plain_password"] = pw.get_secret_value() if pw else None
        if self.kafka_ssl_cafile is not None:
            kwargs["ssl_cafile"] = str(self.kafka_ssl_cafile)
        return kwargs


def _grafana_default_url() -> str:
    from finpulse.config.deployment import grafana_local_url

    return grafana_local_url()


# Consumer-group timeouts for each local broker. Tansu holds a group join until half the
# session timeout has passed (checked once a second), so short timeouts start a worker in
# seconds; Apache Kafka refuses sessions under its group.min.session.timeout.ms (6 s).
LOCAL_GROUP_TIMEOUTS: dict[str, dict[str, float]] = {
    "tansu": {
        "broker_session_timeout_s": 2.0,
        "broker_heartbeat_interval_s": 0.5,
        "broker_rebalance_timeout_s": 5.0,
    },
    "kafka": {
        "broker_session_timeout_s": 6.0,
        "broker_heartbeat_interval_s": 1.0,
        "broker_rebalance_timeout_s": 10.0,
    },
}


def local_stack_settings(**overrides: object) -> Settings:
    """Settings tuned for the local broker (``local_broker``, Tansu unless overridden): the
    group timeouts of :data:`LOCAL_GROUP_TIMEOUTS`.

    >>> local_stack_settings().broker_session_timeout_s
    2.0
    >>> local_stack_settings(local_broker="kafka").broker_session_timeout_s
    6.0
    """
    broker = str(overrides.get("local_broker") or Settings().local_broker)
    values: dict[str, object] = {**LOCAL_GROUP_TIMEOUTS[broker], "local_broker": broker}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]
