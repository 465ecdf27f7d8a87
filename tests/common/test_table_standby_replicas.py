"""KAFKA_TABLE_STANDBY_REPLICAS: the faust workers' warm copies of their Tables on other replicas."""

from __future__ import annotations

import pytest

from pipeline_common.settings import ConfigError, KafkaSettings, load_settings
from pipeline_common.streaming import create_faust_app
from pipeline_common.worker_settings import FaustWorker

pytestmark = pytest.mark.unit

WORKER = FaustWorker("standby-app", "/tmp/standby-app", 6, "earliest", "127.0.0.1", 6066, 10.0)


def test_none_by_default_one_when_asked() -> None:
    assert create_faust_app(load_settings(KafkaSettings), WORKER).conf.table_standby_replicas == 0
    settings = load_settings(KafkaSettings, kafka_table_standby_replicas=1)
    assert create_faust_app(settings, WORKER).conf.table_standby_replicas == 1


def test_a_negative_count_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="KAFKA_TABLE_STANDBY_REPLICAS"):
        load_settings(KafkaSettings, kafka_table_standby_replicas=-1)
