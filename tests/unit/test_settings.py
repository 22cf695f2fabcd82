from __future__ import annotations

import pytest

from pipeline.settings import ConfigError, Settings, env_name, load_settings, setting_env_names, unknown_env_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("STREAMNLP_") or key == "KAFKA_BOOTSTRAP_SERVERS":
            monkeypatch.delenv(key)


def test_defaults_name_the_documented_topics() -> None:
    settings = load_settings()
    assert (settings.input_topic, settings.output_topic, settings.dlq_topic) == ("texts", "texts.enriched", "texts.dlq")
    assert settings.max_text_chars == 20_000
    assert settings.dlq_payload_cap_bytes == 256 * 1024


def test_kafka_bootstrap_servers_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092, kafka-2:9092")
    settings = load_settings()
    assert settings.bootstrap_servers == "kafka-1:9092,kafka-2:9092"
    assert settings.broker_urls == ["kafka://kafka-1:9092", "kafka://kafka-2:9092"]


def test_prefixed_bootstrap_wins_over_generic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "generic:9092")
    monkeypatch.setenv("STREAMNLP_BOOTSTRAP_SERVERS", "specific:9092")
    assert load_settings().bootstrap_servers == "specific:9092"


def test_topics_and_partitions_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMNLP_INPUT_TOPIC", "reviews")
    monkeypatch.setenv("STREAMNLP_TOPIC_PARTITIONS", "12")
    settings = load_settings()
    assert settings.input_topic == "reviews"
    assert settings.topic_partitions == 12


def test_unknown_setting_fails_with_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMNLP_BATCH_SIZE_MAX", "10")
    with pytest.raises(ConfigError, match="STREAMNLP_BATCH_SIZE_MAX"):
        load_settings()


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("KAFKA_BOOTSTRAP_SERVERS", "no-port", "KAFKA_BOOTSTRAP_SERVERS"),
        ("STREAMNLP_BATCH_MAX_SIZE", "zero", "STREAMNLP_BATCH_MAX_SIZE"),
        ("STREAMNLP_BATCH_MAX_SIZE", "0", "STREAMNLP_BATCH_MAX_SIZE"),
        ("STREAMNLP_MODEL_PRECISION", "int3", "STREAMNLP_MODEL_PRECISION"),
        ("STREAMNLP_OUTPUT_TOPIC", "texts", "must differ"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=fragment):
        load_settings()


def test_every_field_has_an_env_name_and_description() -> None:
    names = setting_env_names()
    assert {"KAFKA_BOOTSTRAP_SERVERS", "STREAMNLP_BOOTSTRAP_SERVERS"} <= names
    for field_name, field in Settings.model_fields.items():
        assert env_name(field_name) in names
        assert field.description, f"{field_name} needs a description for `streamnlp config` and the README"
    assert unknown_env_settings({"STREAMNLP_INPUT_TOPIC": "x", "OTHER": "y"}) == []


def test_env_name_is_the_prefixed_field_except_the_broker_list() -> None:
    assert env_name("batch_max_size") == "STREAMNLP_BATCH_MAX_SIZE"
    assert env_name("bootstrap_servers") == "KAFKA_BOOTSTRAP_SERVERS"
