"""A worker creates every topic it reads or writes, with the configured partitions, before it consumes."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from pipeline.kafka.broker import free_port
from pipeline.kafka.clients import ensure_topics, worker_topics
from pipeline.settings import Settings
from tests.harness import unique_settings
from tests.ready import start_ready_worker


async def describe(settings: Settings) -> dict[str, dict]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        return {t["topic"]: t for t in await admin.describe_topics()}
    finally:
        await admin.close()


def expected_topics(s: Settings) -> list[str]:
    # Spelled out from the settings, not from worker_topics(): this is the list the worker must cover.
    return [s.input_topic, s.output_topic, s.dlq_topic, s.summaries_topic, s.summary_requests_topic,
            s.windows_topic, s.windows_route_topic, s.windows_state_topic]


def test_worker_topics_cover_every_topic_and_only_the_lanes_that_run() -> None:
    s = Settings(consumer_group="g", web_port=0)
    topics = worker_topics(s)
    assert sorted(topics) == sorted(expected_topics(s))
    assert topics[s.windows_state_topic] == {"cleanup.policy": "compact"}
    assert all(not configs for name, configs in topics.items() if name != s.windows_state_topic)
    lean = worker_topics(s.model_copy(update={"summarizer_mode": "off", "windows_enabled": False}))
    assert sorted(lean) == sorted([s.input_topic, s.output_topic, s.dlq_topic])


@pytest.mark.integration
@pytest.mark.needs_model
async def test_a_ready_worker_has_created_every_topic_with_the_configured_partitions(
    kafka_bootstrap: str, default_model_dir: Path, summarizer_model_dir: Path, tmp_path: Path,
) -> None:
    # 3: neither the default (4) nor what a broker's auto-creation would pick.
    settings = unique_settings(kafka_bootstrap, tmp_path, model_dir=default_model_dir,
                               summarizer_model_dir=summarizer_model_dir, topic_partitions=3, web_port=free_port())
    wanted = expected_topics(settings)
    assert not set(wanted) & set(await describe(settings)), "the test starts from no topics"
    worker = await start_ready_worker(settings, tmp_path / "worker.log")
    try:
        topics = await describe(settings)  # nothing produced yet
    finally:
        assert worker.terminate() == 0, worker.log_tail()
    missing = [name for name in wanted if name not in topics]
    assert not missing, f"not created: {missing}"
    for name in wanted:
        partitions = topics[name]["partitions"]
        assert len(partitions) == settings.topic_partitions, (name, len(partitions))
        assert all(len(p["replicas"]) == settings.topic_replication for p in partitions), (name, partitions)
    # Faust's own internal topic (partition assignment leader election): one partition by design.
    leader = topics[f"{settings.consumer_group}-__assignor-__leader"]["partitions"]
    assert len(leader) == 1 and len(leader[0]["replicas"]) == settings.topic_replication


@pytest.mark.integration
async def test_ensure_topics_leaves_existing_topics_and_creates_the_rest(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = unique_settings(kafka_bootstrap, tmp_path, topic_partitions=2)
    await ensure_topics(settings, [settings.input_topic])
    await ensure_topics(settings.model_copy(update={"topic_partitions": 5}))
    topics = await describe(settings)
    assert len(topics[settings.input_topic]["partitions"]) == 2, "an existing topic is left as it is"
    assert len(topics[settings.windows_state_topic]["partitions"]) == 5
    assert all(name in topics for name in expected_topics(settings))
