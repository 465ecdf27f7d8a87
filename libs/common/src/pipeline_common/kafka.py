"""Kafka plumbing shared by the services: the durable producer and topic creation from the registry."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, Final

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from pipeline_common.logging import get_logger
from pipeline_common.settings import KafkaSettings, load_settings
from pipeline_common.topics import REGISTRY, TopicSpec

_log = get_logger(__name__)
_NO_ERROR: Final = 0
_TOPIC_ALREADY_EXISTS: Final = 36


class TopicCreationError(RuntimeError):
    """The broker refused to create one or more topics."""


def durable_producer(settings: KafkaSettings, **overrides: Any) -> AIOKafkaProducer:
    """An idempotent producer that waits for every in-sync replica (``acks=all``): a send that returns is durable.

    Not started: the caller owns ``await producer.start()`` and ``await producer.stop()``.
    """
    options: dict[str, Any] = {
        **settings.aiokafka_connection_kwargs(),
        "acks": "all",
        "enable_idempotence": True,
        # Each caller waits for its own acknowledgement (a webhook's 2xx): lingering would add latency to every one,
        # and concurrent sends still share batches while a request is in flight.
        "linger_ms": 0,
        "request_timeout_ms": 10_000,
        **overrides,
    }
    return AIOKafkaProducer(**options)


def new_topic(spec: TopicSpec, replication_factor: int) -> NewTopic:
    return NewTopic(
        name=spec.name,
        num_partitions=spec.partitions,
        replication_factor=replication_factor,
        topic_configs=spec.config(),
    )


async def ensure_topics(
    settings: KafkaSettings,
    specs: Iterable[TopicSpec] = REGISTRY,
    *,
    replication_factor: int | None = None,
) -> list[str]:
    """Create the topics of ``specs`` that do not exist yet; return the names created.

    Existing topics are left as they are (a topic's partition count is an operator decision once it holds data).
    Safe to run from several processes at once: losing a creation race is not an error.
    """
    wanted = {spec.name: spec for spec in specs}
    replicas = replication_factor or settings.kafka_topic_replication_factor
    admin = AIOKafkaAdminClient(**settings.aiokafka_connection_kwargs(), request_timeout_ms=15_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for name, spec in wanted.items() if name not in existing]
        if not missing:
            return []
        response = await admin.create_topics([new_topic(spec, replicas) for spec in missing])
        created: list[str] = []
        failures: list[str] = []
        for topic_error in response.topic_errors:
            name, code = topic_error[0], topic_error[1]
            message = topic_error[2] if len(topic_error) > 2 else None
            if code == _NO_ERROR:
                created.append(name)
            elif code != _TOPIC_ALREADY_EXISTS:
                failures.append(f"{name}: error {code} {message or ''}".strip())
        if failures:
            raise TopicCreationError("could not create topics: " + "; ".join(failures))
        if created:
            _log.info("topics created", topics=sorted(created), replication_factor=replicas)
        return sorted(created)
    finally:
        await admin.close()


async def ensure_topics_when_reachable(
    settings: KafkaSettings, specs: Iterable[TopicSpec] = REGISTRY, *, max_wait_seconds: float = 300.0
) -> list[str]:
    """:func:`ensure_topics`, retried with backoff while the cluster cannot be reached (start-up ordering)."""
    wanted = list(specs)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_wait_seconds
    delay = 0.5
    while True:
        try:
            return await ensure_topics(settings, wanted)
        except TopicCreationError:
            raise
        except Exception as error:
            if loop.time() + delay > deadline:
                raise
            _log.warning("kafka not reachable yet; retrying topic creation", error=repr(error), retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


def connection_kwargs(bootstrap_servers: str | None = None) -> dict[str, Any]:
    """The one connection configuration for a tool or harness that is told where Kafka is: ``bootstrap_servers``
    (else ``KAFKA_BOOTSTRAP_SERVERS``) with the ``KAFKA_*`` security settings of the environment (TLS, SASL).
    Raises :class:`~pipeline_common.settings.ConfigError` naming a bad variable."""
    overrides = {"kafka_bootstrap_servers": bootstrap_servers} if bootstrap_servers else {}
    return load_settings(KafkaSettings, **overrides).aiokafka_connection_kwargs()


def connection_settings(bootstrap_servers: str | None = None) -> KafkaSettings:
    """:func:`connection_kwargs` as settings, for what takes a :class:`KafkaSettings` (``ensure_topics``)."""
    overrides = {"kafka_bootstrap_servers": bootstrap_servers} if bootstrap_servers else {}
    return load_settings(KafkaSettings, **overrides)
