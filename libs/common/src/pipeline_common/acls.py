"""Least-privilege Kafka ACLs per service, derived from the topic registry (``pipeline_common.topics``).

A service may write the topics it produces and read the topics it consumes (``TopicSpec.produced_by`` /
``consumed_by``); a faust worker also uses its consumer group (the app id) and faust's leader-election topic
``<app id>-__assignor-__leader``. The reconciler (``recall-pipeline reconcile``, a CronJob) is a Kafka client too: it
writes the events it synthesises and its watermark, and reads the pipeline's topics without a consumer group. KEDA's
lag scaler (:data:`LAG_SCALER`) may only *describe* the consumer groups and the input topics it measures. Nothing
else: no topic creation, no cluster rights, no wildcard. Both the secured local broker (scripts/kafka-local) and the
Strimzi ``KafkaUser`` manifests (deploy/users) are generated from :func:`service_acls`, so the ACLs a test proves are
the ACLs production gets.

Standard library only: scripts/kafka-local runs ``python -m pipeline_common.acls`` before any virtualenv exists.

    python -m pipeline_common.acls                    # one line per ACL: principal resource pattern name operation
    python -m pipeline_common.acls --topics           # the topics to create: name partitions key=value...
    python -m pipeline_common.acls --users            # the Kafka users, one a line
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from pipeline_common.topics import (
    RECORDING_EVENTS,
    REGISTRY,
    TRANSCRIPT_EVENTS,
    TRANSCRIPTS_FAILED,
    TRANSCRIPTS_READY,
    TopicSpec,
)

#: The services (long-running Deployments) that get a Kafka identity (a KafkaUser), in pipeline order.
SERVICES: Final = ("ingest", "transcriber", "fetcher")
#: The reconciler CronJob (tools/cli: ``recall-pipeline reconcile``); the topic registry names it as a producer.
RECONCILER: Final = "reconciler"
#: KEDA's Kafka lag scaler (deploy/components/keda): reads consumer-group offsets and end offsets, nothing else.
LAG_SCALER: Final = "lag-scaler"
#: Every Kafka identity (a KafkaUser each; the principal ``User:<name>``).
USERS: Final = (*SERVICES, RECONCILER, LAG_SCALER)
#: The faust workers and their default app id (consumer group, prefix of their internal topics).
FAUST_APP_IDS: Final[Mapping[str, str]] = {"transcriber": "transcriber", "fetcher": "fetcher"}
#: Topics a client reads without being a consumer of record, always without a consumer group: the fetcher reads back
#: ``transcripts.ready`` to find out whether an announcement already went out before a crash (fetcher/announce.py);
#: the reconciler reads what the pipeline has seen (tools/cli pipeline_cli/reconcile/view.py) to find what it missed.
READS_BACK: Final[Mapping[str, tuple[str, ...]]] = {
    "fetcher": (TRANSCRIPTS_READY.name,),
    RECONCILER: (RECORDING_EVENTS.name, TRANSCRIPT_EVENTS.name, TRANSCRIPTS_READY.name, TRANSCRIPTS_FAILED.name),
}

#: The fetcher sends ``transcripts.ready`` in Kafka transactions, one transactional id per partition of its input
#: (fetcher/fence.py: the new owner of a partition fences the replica that lost it).
TRANSACTIONAL: Final[Mapping[str, str]] = {"fetcher": TRANSCRIPT_EVENTS.name}

READ: Final = ("Read", "Describe")
WRITE: Final = ("Write", "Describe")
#: What a lag measurement needs: metadata and end offsets (topic) and the committed offsets (group, OffsetFetch).
DESCRIBE: Final = ("Describe",)


@dataclass(frozen=True, order=True)
class Acl:
    """One allow rule for one service, in Kafka's vocabulary (resource type, pattern type, operation)."""

    resource_type: str  # "topic", "group" or "transactionalId"
    name: str
    operation: str  # Read, Write, Describe
    pattern_type: str = "literal"


def ready_transactional_id(app_id: str, partition: int) -> str:
    """The fetcher's transactional id for the transcripts of one input partition (fetcher/fence.py)."""
    return f"{app_id}-ready-{partition}"


def faust_leader_topic(app_id: str) -> str:
    """faust's leader-election topic (faust.assignor.leader_assignor): subscribed to by every faust worker."""
    return f"{app_id}-__assignor-__leader"


def service_acls(
    service: str,
    registry: Iterable[TopicSpec] = REGISTRY,
    app_ids: Mapping[str, str] = FAUST_APP_IDS,
) -> list[Acl]:
    """Every ACL ``service`` needs, sorted; an unknown service gets none (and a KafkaUser of its own is refused)."""
    if service not in USERS:
        raise ValueError(f"{service!r} is not a service with a Kafka identity ({', '.join(USERS)})")
    if service == LAG_SCALER:
        return lag_scaler_acls(registry, app_ids)
    acls: set[Acl] = set()
    registry_list = list(registry)
    for spec in registry_list:
        if service in spec.produced_by:
            acls.update(Acl("topic", spec.name, operation) for operation in WRITE)
        if service in spec.consumed_by or spec.name in READS_BACK.get(service, ()):
            acls.update(Acl("topic", spec.name, operation) for operation in READ)
    app_id = app_ids.get(service)
    if app_id is not None:
        acls.update(Acl("group", app_id, operation) for operation in READ)
        leader = faust_leader_topic(app_id)
        acls.update(Acl("topic", leader, operation) for operation in (*READ, "Write"))
    source = TRANSACTIONAL.get(service)
    if app_id is not None and source is not None:
        partitions = next((spec.partitions for spec in registry_list if spec.name == source), 0)
        acls.update(
            Acl("transactionalId", ready_transactional_id(app_id, partition), operation)
            for partition in range(partitions)
            for operation in WRITE
        )
    return sorted(acls)


def lag_inputs(
    registry: Iterable[TopicSpec] = REGISTRY, app_ids: Mapping[str, str] = FAUST_APP_IDS
) -> dict[str, tuple[str, ...]]:
    """Consumer group -> the topics whose lag scales it: what the worker consumes and does not write itself (its
    retries and changelog topics follow the input, so their lag says nothing new)."""
    specs = list(registry)
    return {
        app_id: tuple(s.name for s in specs if service in s.consumed_by and service not in s.produced_by)
        for service, app_id in app_ids.items()
    }


def lag_scaler_acls(registry: Iterable[TopicSpec] = REGISTRY, app_ids: Mapping[str, str] = FAUST_APP_IDS) -> list[Acl]:
    """Describe only, on each faust worker's group and input topics: KEDA's kafka scaler reads the group's committed
    offsets (OffsetFetch) and the topics' end offsets (ListOffsets, Metadata); it can read no record."""
    acls: set[Acl] = set()
    for group, topics in lag_inputs(registry, app_ids).items():
        acls.update(Acl("group", group, operation) for operation in DESCRIBE)
        acls.update(Acl("topic", topic, operation) for topic in topics for operation in DESCRIBE)
    return sorted(acls)


def all_acls(registry: Iterable[TopicSpec] = REGISTRY) -> dict[str, list[Acl]]:
    specs = list(registry)
    return {user: service_acls(user, specs) for user in USERS}


def grouped(acls: Iterable[Acl]) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """(resource type, name, pattern type, operations) per resource, in a stable order: the KafkaUser form."""
    by_resource: dict[tuple[str, str, str], list[str]] = {}
    for acl in sorted(acls):
        by_resource.setdefault((acl.resource_type, acl.name, acl.pattern_type), []).append(acl.operation)
    return [(kind, name, pattern, tuple(sorted(set(ops)))) for (kind, name, pattern), ops in by_resource.items()]


#: Strimzi's resource type names where Kafka's ``ResourceType`` enum spells them differently.
JAVA_RESOURCE_TYPES: Final[Mapping[str, str]] = {"transactionalId": "transactional_id"}


def acl_lines(registry: Iterable[TopicSpec] = REGISTRY) -> list[str]:
    """``User:<service> <resource type> <pattern type> <name> <operation>``, the form scripts/kafka/Secure.java reads.

    The principal is the user name for SCRAM and, through the broker's ``ssl.principal.mapping.rules``, the
    certificate's CN for mutual TLS, as with Strimzi's ``KafkaUser`` (``CN=<user>``)."""
    return [
        f"User:{service} {JAVA_RESOURCE_TYPES.get(acl.resource_type, acl.resource_type)} {acl.pattern_type} {acl.name} "
        f"{acl.operation}"
        for service, acls in all_acls(registry).items()
        for acl in acls
    ]


def topic_lines(registry: Iterable[TopicSpec] = REGISTRY) -> list[str]:
    """``<name> <partitions> <key=value>...``: the registry's topics, for a broker where no service may create any."""
    return [
        " ".join([spec.name, str(spec.partitions), *(f"{k}={v}" for k, v in sorted(spec.config().items()))])
        for spec in registry
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline_common.acls", description=__doc__.split("\n\n")[0])
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--topics", action="store_true", help="print the registry's topics instead of the ACLs")
    what.add_argument("--users", action="store_true", help="print the Kafka users (one a line) instead of the ACLs")
    args = parser.parse_args(argv)
    lines = topic_lines() if args.topics else list(USERS) if args.users else acl_lines()
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
