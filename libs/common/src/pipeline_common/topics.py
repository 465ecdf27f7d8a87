"""The topic registry: every Kafka topic of the pipeline, in one place (docs/architecture.md, "Kafka contract").

Services create missing topics from it in development, and the Strimzi ``KafkaTopic`` manifests are generated from
it, so a topic's name, partition count, retention and cleanup policy are never written anywhere else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

DAY_MS: Final = 24 * 60 * 60 * 1000


class CleanupPolicy(StrEnum):
    DELETE = "delete"
    COMPACT = "compact"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic: what it is called, how it is laid out and kept, and who writes and reads it."""

    name: str
    partitions: int
    retention_ms: int
    cleanup_policy: CleanupPolicy
    key: str
    value: str
    produced_by: tuple[str, ...]
    consumed_by: tuple[str, ...]
    description: str
    extra_config: Mapping[str, str] = field(default_factory=dict)

    def config(self) -> dict[str, str]:
        """The topic-level configuration as Kafka expects it (string values)."""
        return {
            "cleanup.policy": self.cleanup_policy.value,
            "retention.ms": str(self.retention_ms),
            **self.extra_config,
        }


def recall_events_topic(
    kind: str,
    *,
    partitions: int,
    key: str,
    description: str,
    produced_by: tuple[str, ...] = ("ingest",),
    consumed_by: tuple[str, ...] = (),
) -> TopicSpec:
    """A topic of verified Recall webhooks, as ingest writes them: the body byte for byte, kept a week."""
    return TopicSpec(
        name=f"recall.{kind}.events",
        partitions=partitions,
        retention_ms=7 * DAY_MS,
        cleanup_policy=CleanupPolicy.DELETE,
        key=key,
        value="the verified Recall webhook body, byte for byte",
        produced_by=produced_by,
        consumed_by=consumed_by,
        description=description,
    )


RECORDING_EVENTS: Final = recall_events_topic(
    "recording",
    partitions=6,
    key="recording id",
    # The reconciler publishes the recording.done events a lost webhook never delivered (same body, same key).
    produced_by=("ingest", "reconciler"),
    consumed_by=("transcriber",),
    description="Recall recording artifact status events (recording.done, recording.failed, ...).",
)
TRANSCRIPT_EVENTS: Final = recall_events_topic(
    "transcript",
    partitions=6,
    key="recording id",
    produced_by=("ingest", "reconciler"),
    consumed_by=("transcriber", "fetcher"),
    description="Recall transcript artifact status events (transcript.done, transcript.failed, ...).",
)
BOT_EVENTS: Final = recall_events_topic(
    "bot", partitions=3, key="bot id", description="Recall bot status events (bot.*), for downstream services."
)
OTHER_EVENTS: Final = recall_events_topic(
    "other",
    partitions=3,
    key="recording id, else bot id, else none",
    description="Any other verified Recall event (other media artifacts, event types added later).",
)


def outcome_topic(name: str, *, value: str, produced_by: str, description: str) -> TopicSpec:
    """A topic downstream services subscribe to: one event per recording's outcome, keyed by it, kept 30 days."""
    return TopicSpec(
        name=name,
        partitions=6,
        retention_ms=30 * DAY_MS,
        cleanup_policy=CleanupPolicy.DELETE,
        key="recording id",
        value=value,
        produced_by=(produced_by,),
        consumed_by=("downstream",),
        description=description,
    )


TRANSCRIPTS_READY: Final = outcome_topic(
    "transcripts.ready",
    value="TranscriptReady JSON",
    produced_by="fetcher",
    description="A transcript is stored and verified; the event points at the store (claim check).",
)
TRANSCRIPTS_FAILED: Final = outcome_topic(
    "transcripts.failed",
    value="TranscriptFailed JSON",
    produced_by="transcriber",
    description="A recording will get no transcript: every attempt and a machine-readable reason.",
)

#: The consumers that keep a dead-letter queue, one ``<service>.dlq`` topic each.
DLQ_SERVICES: Final = ("transcriber", "fetcher")


def dlq_topic(service: str) -> TopicSpec:
    """The dead-letter topic of a consuming service: original key and value, the error in headers."""
    return TopicSpec(
        name=f"{service}.dlq",
        partitions=1,
        retention_ms=30 * DAY_MS,
        cleanup_policy=CleanupPolicy.DELETE,
        key="original key",
        value="original value",
        produced_by=(service,),
        consumed_by=("operators",),
        description=f"Messages the {service} could not process, with the error in headers; replayable.",
    )


def retries_topic(service: str, source: TopicSpec, *, wakes: str, value: str) -> TopicSpec:
    """A worker's own retries topic, co-partitioned with its input (same key, same partition)."""
    return TopicSpec(
        name=f"{service}.retries",
        partitions=source.partitions,
        retention_ms=1 * DAY_MS,
        cleanup_policy=CleanupPolicy.DELETE,
        key="recording id",
        value=f"a due retry: recording id, {value}, schedule sequence (JSON)",
        produced_by=(service,),
        consumed_by=(service,),
        description=f"Internal: wakes the {service} when {wakes} is due.",
    )


def state_topic(service: str, source: TopicSpec, *, value: str) -> TopicSpec:
    """The changelog of a worker's per-recording faust Table (``<app id>-recordings-changelog``, default app id)."""
    return TopicSpec(
        name=f"{service}-recordings-changelog",
        partitions=source.partitions,
        retention_ms=30 * DAY_MS,
        cleanup_policy=CleanupPolicy.COMPACT,
        key="recording id",
        value=f"{value} (faust Table changelog)",
        produced_by=(service,),
        consumed_by=(service,),
        description=f"Internal: changelog of the {service}'s per-recording state; compacted, survives restarts.",
    )


TRANSCRIBER_RETRIES: Final = retries_topic(
    "transcriber", RECORDING_EVENTS, wakes="a recording's scheduled retry", value="attempt number"
)
TRANSCRIBER_STATE: Final = state_topic("transcriber", RECORDING_EVENTS, value="the recording's transcription state")
FETCHER_RETRIES: Final = retries_topic(
    "fetcher", TRANSCRIPT_EVENTS, wakes="a transcript's scheduled download retry", value="transcript id"
)
FETCHER_STATE: Final = state_topic(
    "fetcher",
    TRANSCRIPT_EVENTS,
    value="the recording's transcripts: fetch status, retry schedule, where the event went",
)

RECONCILER_STATE: Final = TopicSpec(
    name="recall.reconciler.state",
    partitions=1,
    retention_ms=30 * DAY_MS,
    cleanup_policy=CleanupPolicy.COMPACT,
    key="the reconciler's scope (its metadata filter)",
    value="ReconcilerWatermark JSON: the created_at below which every recording is settled",
    produced_by=("reconciler",),
    consumed_by=("reconciler",),
    description="Internal: the reconciler's watermark per scope; compacted, so the latest one is kept.",
)

REGISTRY: Final[tuple[TopicSpec, ...]] = (
    RECORDING_EVENTS,
    TRANSCRIPT_EVENTS,
    BOT_EVENTS,
    OTHER_EVENTS,
    TRANSCRIPTS_READY,
    TRANSCRIPTS_FAILED,
    TRANSCRIBER_RETRIES,
    TRANSCRIBER_STATE,
    *(dlq_topic(service) for service in DLQ_SERVICES),
    FETCHER_RETRIES,
    FETCHER_STATE,
    RECONCILER_STATE,
)


def by_name(name: str, registry: Iterable[TopicSpec] = REGISTRY) -> TopicSpec:
    for spec in registry:
        if spec.name == name:
            return spec
    raise KeyError(f"no topic named {name!r} in the registry")
