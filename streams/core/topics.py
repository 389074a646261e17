"""Topic names (the contract) and idempotent topic creation.

>>> TRANSACTIONS, DEADLETTER
('finpulse.transactions', 'finpulse.deadletter')
>>> INPUT_TOPICS[FEEDBACK]
'feedback'
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from finpulse.config.settings import Settings

log = logging.getLogger(__name__)

TRANSACTIONS = "finpulse.transactions"
INTERACTIONS = "finpulse.interactions"
FEEDBACK = "finpulse.feedback"
ALERTS = "finpulse.alerts"
DEADLETTER = "finpulse.deadletter"
# what on-call staff do with alerts (the console writes it; every worker reads its silences)
ALERT_ACTIONS = "finpulse.alert_actions"

# input topic -> event kind (the key of finpulse.models.events.EVENT_MODELS)
INPUT_TOPICS: dict[str, str] = {
    TRANSACTIONS: "transaction",
    INTERACTIONS: "interaction",
    FEEDBACK: "feedback",
}
OUTPUT_TOPICS: tuple[str, ...] = (ALERTS, DEADLETTER, ALERT_ACTIONS)
# Learning streams: each online model's labelled examples, read in full by every worker
# (finpulse.models.learning). One partition each: one order in which every worker learns.
RISK_EXAMPLES = "finpulse.learning.risk"
SATISFACTION_EXAMPLES = "finpulse.learning.satisfaction"
LEARNING_TOPICS: tuple[str, ...] = (RISK_EXAMPLES, SATISFACTION_EXAMPLES)

# Written and read by the workers themselves: per-channel minute counts re-keyed by channel,
# so that one owner judges each channel's pooled service level (streams/stages/service).
CHANNEL_MINUTES = "finpulse.channel_minutes"
# A shared model's drift detections, keyed by model, so one owner raises each once
# (streams/stages/model_health.py).
MODEL_HEALTH = "finpulse.model_health"
# Each partition's minute sums of a model's inputs, keyed by model, so one owner runs the
# input-drift detectors on all of them (streams/stages/input_drift.py).
MODEL_INPUTS = "finpulse.model_inputs"
INTERNAL_TOPICS: dict[str, str] = {  # topic -> event kind
    CHANNEL_MINUTES: "channel_minute",
    MODEL_HEALTH: "model_detection",
    MODEL_INPUTS: "model_input_minute",
}
CONSUMED_TOPICS: dict[str, str] = {**INPUT_TOPICS, **INTERNAL_TOPICS}
ALL_TOPICS: tuple[str, ...] = (*INPUT_TOPICS, *OUTPUT_TOPICS, *INTERNAL_TOPICS, *LEARNING_TOPICS)


def partitions_of(name: str, settings: Settings) -> int:
    """The partition count of topic ``name``: one for a learning stream, else the setting.

    >>> s = Settings(topic_partitions=6)
    >>> partitions_of(RISK_EXAMPLES, s), partitions_of(TRANSACTIONS, s)
    (1, 6)
    """
    return 1 if name in LEARNING_TOPICS else settings.topic_partitions


def _topic_configs(name: str, settings: Settings) -> dict[str, str]:
    """A learning stream is kept ``learning_retention_ms`` (checkpoints replay from it)."""
    if name in LEARNING_TOPICS:
        return {"retention.ms": str(settings.learning_retention_ms)}
    return {}


def create_topics(settings: Settings, names: Iterable[str] = ALL_TOPICS) -> dict[str, str]:
    """Create each topic with its partitions (:func:`partitions_of`); existing ones are kept.

    Returns ``{topic: "created" | "exists"}``. Raises if an existing topic has a different
    partition count, since Faust would then fail with ``PartitionsMismatch``.
    """
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(
        bootstrap_servers=settings.broker_bootstrap,
        client_id=f"{settings.app_id}-admin",
        **settings.kafka_client_kwargs(),
    )
    try:
        wanted = list(names)
        existing = set(admin.list_topics())
        result: dict[str, str] = {}
        missing = [n for n in wanted if n not in existing]
        for name in missing:
            topic = NewTopic(
                name,
                partitions_of(name, settings),
                settings.topic_replication,
                topic_configs=_topic_configs(name, settings),
            )
            try:
                admin.create_topics([topic])
                result[name] = "created"
            except TopicAlreadyExistsError:  # raced with another creator
                result[name] = "exists"
        for name in wanted:
            result.setdefault(name, "exists")
        _check_partitions(admin, [n for n in wanted if result[n] == "exists"], settings)
        log.info("topics: %s", result)
        return result
    finally:
        admin.close()


def _check_partitions(admin: object, names: list[str], settings: Settings) -> None:
    if not names:
        return
    for meta in admin.describe_topics(names):  # type: ignore[attr-defined]
        count = len(meta.get("partitions") or [])
        wanted = partitions_of(meta["name"], settings)
        if count != wanted:
            raise RuntimeError(
                f"topic {meta['name']} has {count} partitions, finpulse wants "
                f"{wanted} (FINPULSE_TOPIC_PARTITIONS for all but the learning streams)"
            )
