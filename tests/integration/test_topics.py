"""Topic creation against the real broker: explicit partitions, idempotent, mismatch caught."""

from __future__ import annotations

import pytest

from finpulse.streams.core.topics import ALL_TOPICS, LEARNING_TOPICS, create_topics

pytestmark = pytest.mark.integration


def test_create_topics_is_idempotent_with_explicit_partitions(env):
    # the env fixture already created them with 2 partitions
    assert create_topics(env.settings) == dict.fromkeys(ALL_TOPICS, "exists")
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=env.settings.broker_bootstrap)
    try:
        described = admin.describe_topics(list(ALL_TOPICS))
    finally:
        admin.close()
    # every topic with the settings' 2 partitions, but a learning stream has one: one order
    wanted = {name: 1 if name in LEARNING_TOPICS else 2 for name in ALL_TOPICS}
    assert {t["name"]: len(t["partitions"]) for t in described} == wanted


def test_partition_mismatch_is_an_error(env):
    wrong = env.settings.model_copy(update={"topic_partitions": 3})
    with pytest.raises(RuntimeError, match="has 2 partitions, finpulse wants 3"):
        create_topics(wrong)


# Tansu keeps no topic configs (it reports none back; its storage has no retention)
@pytest.mark.parametrize("broker_kind", ["kafka"], indirect=True)
def test_a_learning_stream_is_kept_for_the_learning_retention(env):
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=env.settings.broker_bootstrap)
    try:
        resources = [ConfigResource(ConfigResourceType.TOPIC, t) for t in LEARNING_TOPICS]
        described = admin.describe_configs(resources)
    finally:
        admin.close()
    (topics,) = described.values()
    retention = {name: configs["retention.ms"]["value"] for name, configs in topics.items()}
    wanted = str(env.settings.learning_retention_ms)
    assert retention == dict.fromkeys(LEARNING_TOPICS, wanted)
