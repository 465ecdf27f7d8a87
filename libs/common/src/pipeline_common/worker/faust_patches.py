"""The fixes this project needs in faust-streaming, written against one faust version and applied explicitly.

:func:`apply_faust_patches` is called by :func:`pipeline_common.streaming.create_faust_app` before it builds an app;
it refuses to run on a faust version the patches were not written for (they replace private methods whose shape
changes between releases), naming the version found and what to do. ``tests/common/test_streaming_faust_fixes.py``
pins both faust's behaviour and the patches'.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Final

import faust
from aiokafka import TopicPartition
from faust.transport.consumer import Consumer as FaustConsumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Producer as FaustProducer

#: The faust-streaming releases these patches were written for and tested against (``major.minor.patch`` prefixes).
SUPPORTED_FAUST_VERSIONS: Final = ("0.15.",)


class UnsupportedFaustVersion(RuntimeError):
    pass


def check_faust_version(version: str | None = None) -> None:
    found = version if version is not None else str(getattr(faust, "__version__", "unknown"))
    if not found.startswith(SUPPORTED_FAUST_VERSIONS):
        raise UnsupportedFaustVersion(
            f"faust-streaming {found} is installed, but pipeline_common.worker.faust_patches was written for "
            f"{', '.join(v + 'x' for v in SUPPORTED_FAUST_VERSIONS)}: its fixes replace private faust methods. Pin "
            "faust-streaming to a supported version, or re-check each patch against the new release (the tests in "
            "tests/common/test_streaming_faust_fixes.py say whether it is still needed) and add the version here."
        )


def apply_faust_patches() -> None:
    """Check the faust version, then apply every patch (each is idempotent)."""
    check_faust_version()
    never_commit_past_in_flight()
    no_stale_records_across_a_seek()
    no_livelock_check_without_a_position()
    idempotent_producer()


def idempotent_producer() -> None:
    """Make every producer faust creates idempotent (``enable_idempotence``, with ``acks=all``, which it requires).

    faust-streaming 0.15 enables idempotence only inside transactions; with ``producer_acks=-1`` alone, a produce
    retried after a lost acknowledgement writes a second copy of ``transcripts.ready`` / ``transcripts.failed``. The
    idempotent producer's sequence numbers let the broker drop the copy. Idempotent.
    """
    original = FaustProducer._settings_extra
    if getattr(original, "_idempotent", False):
        return

    @functools.wraps(original)
    def _settings_extra(self: Any) -> Mapping[str, Any]:
        return {**original(self), "acks": "all", "enable_idempotence": True}

    _settings_extra._idempotent = True  # type: ignore[attr-defined]
    FaustProducer._settings_extra = _settings_extra  # type: ignore[method-assign]


def never_commit_past_in_flight() -> None:
    """Make faust never commit a partition's offset past a message an agent is still processing.

    faust-streaming 0.15's ``Consumer._new_offset`` (upstream issue faust-streaming/faust#606, fix proposed in #707)
    computes the offset to commit from the acked offsets, and lets one missing offset at their head through: with the
    committed offset N (the next to read) and N+1, N+2 acked while N is still being processed (agent concurrency > 1:
    a slow transcript next to fast ones), it commits N+3. A crash before N is done then loses N for good: it is never
    redelivered. Found by ``make chaos`` (a fetcher SIGKILL lost a transcript.done). The wrapper commits nothing for
    the partition while one of its messages at or after the committed offset, below the acked ones, is in flight.
    Idempotent.
    """
    original = FaustConsumer._new_offset
    if getattr(original, "_never_past_in_flight", False):
        return

    @functools.wraps(original)
    def _new_offset(self: Any, tp: Any) -> int | None:
        acked = self._acked[tp]
        if acked:
            head = min(acked)
            committed = self._committed_offset[tp]
            for message in list(self._unacked_messages):
                if (
                    message.tp == tp
                    and not message.acked
                    and message.offset < head
                    and (committed is None or message.offset >= committed)
                ):
                    return None
        offset: int | None = original(self, tp)
        return offset

    _new_offset._never_past_in_flight = True  # type: ignore[attr-defined]
    FaustConsumer._new_offset = _new_offset  # type: ignore[method-assign]


def no_stale_records_across_a_seek() -> None:
    """Stop faust's consumer flow while it seeks its partitions back to their committed offsets.

    A restarted faust-streaming 0.15 worker resumes its stream partitions, then seeks them to the committed offsets
    (``Recovery.on_recovery_completed``), with the flow already running for the table recovery. Records fetched in
    between keep flowing into the agents while the seek runs, and the consumer's read-offset bookkeeping then goes
    wrong: a stale record above the new read offset is taken for a gap and the offsets below it are acked unprocessed
    (``Consumer._add_gap``), and the records fetched again from the committed offset are dropped as already read
    ("DROPPED MESSAGE ROFF"). Found by ``make chaos``: a SIGKILLed transcriber, restarted while webhooks were arriving,
    never handled one ``recording.done``. With the flow stopped no record is handed over during the seek, so the
    agents see every record from the committed offset on, each once more at most. The flow is resumed only when
    nothing else (a rebalance) stopped it in the meantime.

    Records the stopped flow discards are read again only if the seek moves the partition back to them, and
    aiokafka's ``seek_to_committed`` leaves a partition with no committed offset (or 0) where it is: such a partition
    is sought to its beginning too (with ``auto_offset_reset=earliest``, ours; with ``latest`` the worker has chosen
    not to read what it did not see). Idempotent.
    """
    original_seek = FaustConsumer.perform_seek
    if getattr(original_seek, "_stops_the_flow", False):
        return
    original_stop = FaustConsumer.stop_flow
    original_seek_to_committed = AIOKafkaConsumerThread.seek_to_committed

    @functools.wraps(original_seek_to_committed)
    async def seek_to_committed(self: Any) -> Mapping[Any, int]:
        committed: Mapping[Any, int] = await original_seek_to_committed(self)
        if self.app.conf.consumer_auto_offset_reset == "earliest":
            changelogs = self.app.tables.changelog_topics
            unmoved = [tp for tp, offset in committed.items() if not offset or offset < 0]
            unmoved = [tp for tp in unmoved if tp.topic not in changelogs]  # recovery positions those itself
            if unmoved:
                await self.seek_to_beginning(*unmoved)
        return committed

    @functools.wraps(original_stop)
    def stop_flow(self: Any) -> None:
        self._flow_stops = getattr(self, "_flow_stops", 0) + 1
        original_stop(self)

    @functools.wraps(original_seek)
    async def perform_seek(self: Any) -> None:
        was_flowing = self.flow_active
        self.stop_flow()
        stops = self._flow_stops
        try:
            await original_seek(self)
        finally:
            if was_flowing and self._flow_stops == stops:
                self.resume_flow()

    perform_seek._stops_the_flow = True  # type: ignore[attr-defined]
    FaustConsumer.stop_flow = stop_flow  # type: ignore[method-assign]
    FaustConsumer.perform_seek = perform_seek  # type: ignore[method-assign]
    AIOKafkaConsumerThread.seek_to_committed = seek_to_committed  # type: ignore[method-assign]


def no_livelock_check_without_a_position() -> None:
    """Make faust's commit livelock detector skip a partition aiokafka has no position for.

    faust-streaming 0.15's ``AIOKafkaConsumerThread.verify_event_path`` (run every few commit intervals outside a
    rebalance) reads aiokafka's ``position`` of each partition, which asserts that one exists. Right after a rebalance
    a partition is being positioned (assigned and awaiting its committed offset, or sought to it or to its beginning),
    so the ``AssertionError`` escaped the detector's task and stopped the worker: found by the distributed
    ``make chaos`` (a transcriber replica crashed after a rebalance). Such a partition has nothing to verify yet; the
    next round checks it. Idempotent.
    """
    original = AIOKafkaConsumerThread.verify_event_path
    if getattr(original, "_needs_a_position", False):
        return

    @functools.wraps(original)
    def verify_event_path(self: Any, now: float, tp: Any) -> None:
        assignment = self._ensure_consumer()._fetcher._subscriptions.subscription.assignment
        state = assignment.state_value(TopicPartition(tp.topic, tp.partition)) if assignment is not None else None
        if state is None or not state.has_valid_position:
            return None
        original(self, now, tp)
        return None

    verify_event_path._needs_a_position = True  # type: ignore[attr-defined]
    AIOKafkaConsumerThread.verify_event_path = verify_event_path  # type: ignore[method-assign]
