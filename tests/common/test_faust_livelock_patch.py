"""faust-streaming 0.15's commit livelock detector crashed a worker after a rebalance (found by the distributed
``make chaos``): ``AIOKafkaConsumerThread.verify_event_path`` reads aiokafka's ``position`` of every partition faust
thinks it owns, and aiokafka asserts that a position exists. A partition being (re)positioned (just assigned, or
sought to its committed offset or its beginning after a rebalance) has none, so the ``AssertionError`` escaped the
detector's task and stopped the worker. ``pipeline_common.worker.faust_patches.no_livelock_check_without_a_position``
skips such a partition until it has a position again.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.consumer.subscription_state import Assignment
from faust import types as faust_types
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from pipeline_common import streaming

streaming.apply_faust_patches()

pytestmark = pytest.mark.unit

TP = faust_types.TP("recall.transcript.events", 4)


def consumer_thread(assignment: Assignment) -> Any:
    """What ``verify_event_path`` touches on faust's consumer thread: aiokafka's assignment, the app's monitor."""
    aiokafka_consumer = SimpleNamespace(
        _fetcher=SimpleNamespace(_subscriptions=SimpleNamespace(subscription=SimpleNamespace(assignment=assignment)))
    )
    app = SimpleNamespace(
        monitor=SimpleNamespace(stream_inbound_time={}),
        topics=SimpleNamespace(acks_enabled_for=lambda topic: True),
    )
    thread = SimpleNamespace(
        _ensure_consumer=lambda: aiokafka_consumer,
        consumer=SimpleNamespace(app=app),
        time_started=time.monotonic() - 1.0,
        tp_fetch_request_timeout_secs=300.0,
        tp_stream_timeout_secs=300.0,
        tp_commit_timeout_secs=300.0,
        tp_last_committed_at={},
        log=SimpleNamespace(error=lambda *args, **kwargs: None),
    )
    thread._verify_aiokafka_event_path = lambda now, tp: AIOKafkaConsumerThread._verify_aiokafka_event_path(
        thread, now, tp
    )
    return thread


def assigned(highwater: int) -> tuple[Assignment, Any]:
    """TP assigned and fetched before (its highwater known): the assignment and TP's state in it."""
    assignment = Assignment([TopicPartition(TP.topic, TP.partition)])
    state = assignment.state_value(TopicPartition(TP.topic, TP.partition))
    state.timestamp = int(time.time() * 1000)
    state.highwater = highwater
    return assignment, state


def being_repositioned() -> Assignment:
    """A partition fetched before, now waiting for a reset (a seek after a rebalance): aiokafka has no position."""
    assignment, state = assigned(12)
    state.await_reset(0)
    assert not state.has_valid_position
    return assignment


def consuming() -> Assignment:
    assignment, state = assigned(20)
    state.seek(12)
    return assignment


async def test_faust_alone_crashes_on_a_partition_without_a_position() -> None:
    original = AIOKafkaConsumerThread.verify_event_path.__wrapped__
    thread = consumer_thread(being_repositioned())
    with pytest.raises(AssertionError):
        original(thread, time.monotonic(), TP)


async def test_a_partition_without_a_position_is_skipped() -> None:
    assert AIOKafkaConsumerThread.verify_event_path(consumer_thread(being_repositioned()), time.monotonic(), TP) is None


async def test_a_partition_aiokafka_no_longer_holds_is_skipped() -> None:
    other = Assignment([TopicPartition(TP.topic, TP.partition + 1)])
    assert AIOKafkaConsumerThread.verify_event_path(consumer_thread(other), time.monotonic(), TP) is None


async def test_a_consuming_partition_is_still_checked() -> None:
    # The detector still runs where there is a position: a stream idle for longer than its timeout is reported.
    thread = consumer_thread(consuming())
    thread.tp_stream_timeout_secs = 0.0
    logged: list[Any] = []
    thread._log_slow_processing_stream = lambda *args: logged.append(args)
    thread.consumer.app.monitor.stream_inbound_time[TP] = time.monotonic() - 5.0
    AIOKafkaConsumerThread.verify_event_path(thread, time.monotonic(), TP)
    assert logged and logged[0][1] == TP


def test_the_wrapper_is_installed_once() -> None:
    installed = AIOKafkaConsumerThread.verify_event_path
    streaming.apply_faust_patches()
    assert AIOKafkaConsumerThread.verify_event_path is installed
