"""Two faust-streaming 0.15 bugs found by ``make chaos``, each fixed by a wrapper in
``pipeline_common.worker.faust_patches``.

1. ``never_commit_past_in_flight``: faust committed a partition's offset past a transcript.done the fetcher was still
   processing (agent concurrency 2: a slow transcript next to fast ones), so a SIGKILL lost it for good. These tests
   pin both faust's behaviour (so an upgrade that fixes it upstream shows here, and the wrapper can go) and the
   wrapper's.
2. ``no_stale_records_across_a_seek``: a restarted worker handed records to its agents while it sought back to the
   committed offsets, acked the offsets it took for a gap and dropped the records fetched again: a recording.done
   was never handled. The wrapper stops the consumer's flow for the duration of the seek, and seeks the partitions
   aiokafka leaves in place (never committed) to their beginning, so what the stopped flow discarded is read again.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from faust import types as faust_types
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from intervaltree import IntervalTree

from pipeline_common import streaming

# The app factory applies the patches (create_faust_app); the classes below capture the patched methods.
streaming.apply_faust_patches()

pytestmark = pytest.mark.unit

TP = ("recall.transcript.events", 2)
OTHER_TP = ("recall.transcript.events", 3)
SEEK_TP = faust_types.TP("recall.recording.events", 3)


@dataclass(eq=False)
class InFlight:
    tp: tuple[str, int]
    offset: int
    acked: bool = False


def consumer(committed: int | None, acked: list[int], in_flight: tuple[InFlight, ...] = ()) -> Any:
    return SimpleNamespace(
        _acked=defaultdict(list, {TP: list(acked)}),
        _acked_index=defaultdict(set, {TP: set(acked)}),
        _gap=defaultdict(IntervalTree),
        _committed_offset=defaultdict(lambda: None, {TP: committed}),
        _unacked_messages=set(in_flight),
    )


def test_the_wrapper_is_installed_once() -> None:
    installed = Consumer._new_offset
    streaming.never_commit_past_in_flight()
    assert Consumer._new_offset is installed
    assert getattr(installed, "_never_past_in_flight", False)


def test_faust_alone_commits_past_the_message_in_flight() -> None:
    faust_new_offset = Consumer._new_offset.__wrapped__
    # Offset 11 is the next to read and still being processed; 12 and 13 are done: faust commits 14.
    assert faust_new_offset(consumer(11, [12, 13]), TP) == 14
    assert faust_new_offset(consumer(0, [1, 2]), TP) == 3


def test_nothing_is_committed_past_a_message_in_flight() -> None:
    slow = InFlight(TP, 11)
    state = consumer(11, [12, 13], (slow,))
    assert Consumer._new_offset(state, TP) is None
    assert state._acked[TP] == [12, 13]  # nothing forgotten: committed once 11 is done
    slow.acked = True
    state._acked[TP].insert(0, 11)
    assert Consumer._new_offset(state, TP) == 14


@pytest.mark.parametrize("committed", [None, 0])
def test_a_fresh_partition_is_protected_too(committed: int | None) -> None:
    assert Consumer._new_offset(consumer(committed, [1, 2], (InFlight(TP, 0),)), TP) is None


def test_other_partitions_and_done_messages_do_not_hold_commits_back() -> None:
    in_flight = (InFlight(OTHER_TP, 3), InFlight(TP, 11, acked=True), InFlight(TP, 20), InFlight(TP, 5))
    # 20 is beyond the acked run; 5 is below the committed offset (already committed, e.g. before a seek).
    assert Consumer._new_offset(consumer(11, [11, 12, 13], in_flight), TP) == 14


class SeekingConsumer:
    """What faust's ``perform_seek`` touches, with the real flow switches; records the flow seen during the seek."""

    def __init__(self, committed: Mapping[Any, int], *, flowing: bool = True) -> None:
        self.flow_active = flowing
        self.committed = dict(committed)
        self._read_offset: dict[Any, int | None] = defaultdict(lambda: None)
        self._committed_offset: dict[Any, int | None] = defaultdict(lambda: None)
        self.flow_during_seek: list[bool] = []
        self.rebalance_during_seek = False
        self.can_resume_flow = asyncio.Event()
        self.suspend_flow = asyncio.Event()

    stop_flow = Consumer.stop_flow
    resume_flow = Consumer.resume_flow
    perform_seek = Consumer.perform_seek

    async def seek_to_committed(self) -> Mapping[Any, int]:
        self.flow_during_seek.append(self.flow_active)
        await asyncio.sleep(0)  # the fetcher thread answers later; records could flow meanwhile
        if self.rebalance_during_seek:
            self.stop_flow()  # what on_partitions_revoked does
        return self.committed


def test_the_seek_wrapper_is_installed_once() -> None:
    installed = Consumer.perform_seek
    streaming.no_stale_records_across_a_seek()
    assert Consumer.perform_seek is installed
    assert getattr(installed, "_stops_the_flow", False)


async def test_no_record_flows_while_the_consumer_seeks_and_the_flow_resumes_after() -> None:
    state = SeekingConsumer({SEEK_TP: 20})
    await state.perform_seek()
    assert state.flow_during_seek == [False]
    assert state.flow_active and state.can_resume_flow.is_set() and not state.suspend_flow.is_set()
    assert state._read_offset[SEEK_TP] == 20 and state._committed_offset[SEEK_TP] == 20  # faust's own seek still ran


async def test_faust_alone_keeps_the_flow_running_during_the_seek() -> None:
    state = SeekingConsumer({SEEK_TP: 20})
    await Consumer.perform_seek.__wrapped__(state)
    assert state.flow_during_seek == [True]


async def test_a_rebalance_during_the_seek_keeps_the_flow_stopped() -> None:
    state = SeekingConsumer({SEEK_TP: 20})
    state.rebalance_during_seek = True
    await state.perform_seek()
    assert not state.flow_active and not state.can_resume_flow.is_set()


async def test_a_stopped_flow_stays_stopped_after_the_seek() -> None:
    state = SeekingConsumer({SEEK_TP: 20}, flowing=False)
    await state.perform_seek()
    assert state.flow_during_seek == [False] and not state.flow_active


class ThreadConsumer:
    """What the seek_to_committed wrapper touches on faust's aiokafka consumer thread."""

    def __init__(self, committed: Mapping[Any, int | None], reset: str = "earliest") -> None:
        self.committed = committed
        self.app = SimpleNamespace(
            conf=SimpleNamespace(consumer_auto_offset_reset=reset),
            tables=SimpleNamespace(changelog_topics={"transcriber-recordings-changelog"}),
        )
        self.sought_to_beginning: list[Any] = []

    def _ensure_consumer(self) -> Any:
        committed = self.committed

        async def seek_to_committed() -> Mapping[Any, int | None]:
            return committed

        return SimpleNamespace(seek_to_committed=seek_to_committed)

    async def call_thread(self, fun: Any, *args: Any) -> Any:
        return await fun(*args)

    async def seek_to_beginning(self, *partitions: Any) -> None:
        self.sought_to_beginning.extend(partitions)


NEVER_COMMITTED = faust_types.TP("recall.recording.events", 0)
COMMITTED_ZERO = faust_types.TP("recall.recording.events", 1)
COMMITTED = faust_types.TP("recall.recording.events", 2)
CHANGELOG = faust_types.TP("transcriber-recordings-changelog", 0)
OFFSETS = {NEVER_COMMITTED: None, COMMITTED_ZERO: 0, COMMITTED: 7, CHANGELOG: None}


async def test_partitions_aiokafka_leaves_in_place_are_sought_to_their_beginning() -> None:
    thread = ThreadConsumer(OFFSETS)
    assert await AIOKafkaConsumerThread.seek_to_committed(thread) == OFFSETS
    # A record fetched there and discarded while the flow was stopped is read again; the changelog is left to recovery.
    assert thread.sought_to_beginning == [NEVER_COMMITTED, COMMITTED_ZERO]


async def test_aiokafka_alone_leaves_never_committed_partitions_where_they_are() -> None:
    thread = ThreadConsumer(OFFSETS)
    await AIOKafkaConsumerThread.seek_to_committed.__wrapped__(thread)
    assert thread.sought_to_beginning == []


async def test_a_worker_reading_from_the_latest_offset_is_left_alone() -> None:
    thread = ThreadConsumer(OFFSETS, reset="latest")
    await AIOKafkaConsumerThread.seek_to_committed(thread)
    assert thread.sought_to_beginning == []
