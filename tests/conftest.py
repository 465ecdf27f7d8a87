"""Session-wide fixtures: the real broker, unique names, Kafka helpers. Every test declares its tier."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest

from tests.support.broker import Broker, session_broker
from tests.support.kafka import KafkaTestClient

TIERS = ("unit", "integration", "e2e", "container")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    untiered = [item.nodeid for item in items if not any(item.get_closest_marker(tier) for tier in TIERS)]
    if untiered:
        raise pytest.UsageError(
            "every test needs a tier marker (" + ", ".join(TIERS) + "); missing on:\n  " + "\n  ".join(untiered)
        )


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[Broker]:
    """The session's real Kafka broker, started lazily: unit-only runs never start one."""
    with session_broker() as broker:
        yield broker


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: Broker) -> str:
    return kafka_broker.bootstrap_servers


@pytest.fixture
def kafka(kafka_bootstrap: str) -> KafkaTestClient:
    return KafkaTestClient(kafka_bootstrap)


@pytest.fixture
def unique(request: pytest.FixtureRequest) -> str:
    """A name no other test (or earlier run against the same broker) uses: for topics and consumer groups."""
    slug = re.sub(r"[^a-zA-Z0-9]+", "-", request.node.name).strip("-")[:40]
    return f"{slug}-{uuid.uuid4().hex[:8]}"
