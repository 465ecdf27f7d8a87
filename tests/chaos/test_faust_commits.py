"""Found by ``make chaos``: faust-streaming committed a partition's offset past a transcript.done the fetcher was
still processing (agent concurrency 2: a slow transcript next to fast ones), so a SIGKILL lost it for good.
``pipeline_common.streaming.never_commit_past_in_flight`` wraps faust's offset computation; these pin both faust's
behaviour (so an upgrade that fixes it upstream shows here, and the wrapper can go) and the wrapper's."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.consumer import Consumer
from intervaltree import IntervalTree

from pipeline_common import streaming

pytestmark = pytest.mark.unit

TP = ("recall.transcript.events", 2)
OTHER_TP = ("recall.transcript.events", 3)


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
