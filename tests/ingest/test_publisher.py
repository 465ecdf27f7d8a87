"""The publisher's bounded wait for Kafka's acknowledgement, against a stand-in producer (no broker)."""

from __future__ import annotations

import asyncio
import time
import zlib
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, OutOfOrderSequenceNumber

from ingest.publisher import KafkaPublisher, PublishFailed
from pipeline_common.settings import KafkaSettings
from tests.support.waiting import wait_for

pytestmark = pytest.mark.unit


class StandInProducer:
    """``send_and_wait`` acknowledges after ``delay`` seconds (never, with None), or raises ``error``."""

    def __init__(self, delay: float | None = 0.0, error: Exception | None = None) -> None:
        self.delay = delay
        self.error = error
        self.sent: list[tuple[str, bytes, bytes | None]] = []
        self.cancelled = False

    async def send_and_wait(self, topic: str, *, value: bytes, key: bytes | None, headers: Any) -> object:
        try:
            if self.delay is None:
                await asyncio.Event().wait()
            await asyncio.sleep(self.delay or 0)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        if self.error is not None:
            raise self.error
        self.sent.append((topic, value, key))
        return object()


def publisher(producer: StandInProducer, produce_timeout: float = 0.2) -> KafkaPublisher:
    under_test = KafkaPublisher(
        KafkaSettings(), required_topics=["t"], produce_timeout=produce_timeout, check_interval=1.0
    )
    under_test._producers = (producer,)  # type: ignore[assignment]
    under_test._ready = True
    return under_test


async def test_an_acknowledged_write_returns_its_latency() -> None:
    producer = StandInProducer(delay=0.01)
    latency = await publisher(producer).publish("t", b"k", b"v", [("h", b"1")])
    assert producer.sent == [("t", b"v", b"k")]
    assert 0.01 <= latency < 0.2


async def test_no_acknowledgement_in_time_fails_the_publish_and_cancels_the_wait() -> None:
    producer = StandInProducer(delay=None)
    under_test = publisher(producer, produce_timeout=0.2)
    started = time.monotonic()
    with pytest.raises(PublishFailed, match=r"no acknowledgement from Kafka within 0\.2s"):
        await under_test.publish("t", b"k", b"v", [])
    assert 0.2 <= time.monotonic() - started < 2.0
    assert producer.cancelled
    assert not under_test.ready
    assert under_test.reason == "produce timed out"
    # The task that published is not left cancelled: it carries on (the endpoint answers 503).
    current = asyncio.current_task()
    assert current is not None and current.cancelling() == 0
    await asyncio.sleep(0)


async def test_a_refused_write_fails_the_publish() -> None:
    under_test = publisher(StandInProducer(error=KafkaConnectionError("gone")))
    with pytest.raises(PublishFailed, match="Kafka refused the write: KafkaConnectionError"):
        await under_test.publish("t", None, b"v", [])
    assert under_test.reason == "produce failed: KafkaConnectionError"


async def test_the_caller_being_cancelled_is_not_a_timeout() -> None:
    under_test = publisher(StandInProducer(delay=None), produce_timeout=30)
    task = asyncio.create_task(under_test.publish("t", None, b"v", []))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert under_test.ready


class ClosableStandIn(StandInProducer):
    def __init__(self, error: Exception) -> None:
        super().__init__(error=error)
        self.stopped = False

    async def stop(self) -> None:
        self.stopped = True


async def test_a_producer_whose_idempotence_state_broke_is_replaced_not_reused() -> None:
    """Seen in chaos after a broker restart: every write failed with OutOfOrderSequenceNumber for minutes, since the
    same producer (its sequence numbers out of step with the broker's) was reused for every write. It is a fatal
    state for that producer: drop it, so the maintenance loop connects a fresh one (a new producer id)."""
    producer = ClosableStandIn(OutOfOrderSequenceNumber())
    under_test = publisher(producer)
    with pytest.raises(PublishFailed, match="OutOfOrderSequenceNumber"):
        await under_test.publish("t", None, b"v", [])
    assert under_test._producers == () and not under_test.ready
    assert await wait_for(lambda: producer.stopped, timeout=2, interval=0.01)


def publisher_of(producers: list[StandInProducer]) -> KafkaPublisher:
    under_test = publisher(producers[0])
    under_test._producers = tuple(producers)  # type: ignore[assignment]
    return under_test


async def test_with_several_producers_one_key_always_goes_through_the_same_one() -> None:
    # Per key order: the events of one recording must not overtake each other through two producers.
    producers = [StandInProducer() for _ in range(4)]
    under_test = publisher_of(producers)
    keys = [f"rec-{n}".encode() for n in range(40)]
    for _ in range(3):
        for key in keys:
            await under_test.publish("t", key, key, [])
    carriers = {key: [n for n, p in enumerate(producers) if any(k == key for _t, _v, k in p.sent)] for key in keys}
    assert all(len(used) == 1 for used in carriers.values())
    assert all(len(p.sent) % 3 == 0 for p in producers)
    assert len({used[0] for used in carriers.values()}) == 4  # and the keys are spread over all of them
    await under_test.publish("t", None, b"no key", [])
    assert producers[0].sent[-1] == ("t", b"no key", None)


async def test_a_fatal_error_in_one_of_several_producers_replaces_them_all() -> None:
    broken = ClosableStandIn(OutOfOrderSequenceNumber())
    others = [ClosableStandIn(KafkaConnectionError("unused")) for _ in range(2)]
    producers: list[StandInProducer] = [others[0], broken, others[1]]
    under_test = publisher_of(producers)
    key = next(k for k in (f"rec-{n}".encode() for n in range(100)) if zlib.crc32(k) % 3 == 1)
    with pytest.raises(PublishFailed, match="OutOfOrderSequenceNumber"):
        await under_test.publish("t", key, b"v", [])
    assert under_test._producers == () and not under_test.ready
    assert await wait_for(lambda: broken.stopped and all(p.stopped for p in others), timeout=2, interval=0.01)
