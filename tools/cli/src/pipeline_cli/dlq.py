"""``recall-pipeline dlq``: replay dead letters to the topic they came from."""

from __future__ import annotations

import click

from pipeline_cli.arguments import check_keys, check_offsets, check_topic, timeout_option
from pipeline_cli.common import EPILOG, ConfigProblem, Failure, Options, run, warn, within
from pipeline_cli.kafka import KafkaReader, KafkaWriter, Record, servers
from pipeline_common.dlq import source_topic, strip_dlq_headers
from pipeline_common.topics import DLQ_SERVICES, dlq_topic


@click.group(epilog=EPILOG)
def dlq() -> None:
    """Dead-letter queues (<service>.dlq): send records back to the topic they came from."""


@dlq.command("replay", epilog=EPILOG)
@click.argument("topic", callback=check_topic)
@click.option("--all", "replay_all", is_flag=True, help="Replay every record of TOPIC.")
@click.option(
    "--key", "keys", multiple=True, callback=check_keys, metavar="KEY", help="Replay the records with this key."
)
@click.option(
    "--offset",
    "offsets",
    multiple=True,
    callback=check_offsets,
    metavar="N|PARTITION:N",
    help="Replay the record at this offset (of any partition, or of PARTITION).",
)
@click.option("--dry-run", is_flag=True, help="Say what would be replayed; send nothing.")
@timeout_option("Give up after this long.")
@click.pass_obj
def dlq_replay(
    options: Options,
    topic: str,
    replay_all: bool,
    keys: tuple[str, ...],
    offsets: tuple[tuple[int | None, int], ...],
    dry_run: bool,
    timeout: float,
) -> None:
    """Send dead letters of TOPIC back to their dlq-source-topic with their original key, value and headers (the
    dlq-* headers removed). Choose them with --all, or with --key and --offset (repeatable; a record matching any of
    them is replayed). The consumers are idempotent, so replaying a record twice is safe. Exit 1 when nothing
    matched or a record could not be replayed."""
    if replay_all and (keys or offsets):
        raise click.UsageError("--all replays everything: do not combine it with --key or --offset")
    if not (replay_all or keys or offsets):
        raise click.UsageError("say which records to replay: --all, --key KEY or --offset N (see --help)")
    settings = options.kafka()
    wanted_keys = {key.encode() for key in keys}
    outcome = {"read": 0, "selected": 0, "replayed": 0, "skipped": 0}
    seen_offsets: set[tuple[int | None, int]] = set()
    seen_keys: set[bytes] = set()

    def selected(record: Record) -> bool:
        if replay_all:
            return True
        hit = False
        if record.key is not None and record.key in wanted_keys:
            seen_keys.add(record.key)
            hit = True
        for partition, offset in offsets:
            if offset == record.offset and partition in (None, record.partition):
                seen_offsets.add((partition, offset))
                hit = True
        return hit

    async def replay() -> None:
        async with KafkaReader(settings) as kafka:
            if not kafka.exists(topic):
                known = ", ".join(dlq_topic(service).name for service in DLQ_SERVICES)
                raise ConfigProblem(f"unknown topic {topic!r}: no such topic on {servers(settings)} (DLQs: {known})")
            chosen: list[tuple[Record, str]] = []
            async for record in kafka.snapshot([topic]):
                outcome["read"] += 1
                if not selected(record):
                    continue
                outcome["selected"] += 1
                where = f"{record.topic} {record.partition}@{record.offset} key={record.key_text}"
                target = source_topic(record.headers)
                if target is None:
                    warn(f"skipped {where}: no dlq-source-topic header (not a dead letter?)")
                    outcome["skipped"] += 1
                elif not kafka.exists(target):
                    warn(f"skipped {where}: its source topic {target!r} does not exist on {servers(settings)}")
                    outcome["skipped"] += 1
                else:
                    chosen.append((record, target))
        if dry_run:
            for record, target in chosen:
                click.echo(f"would replay {_where(record)} -> {target}  ({_reason(record)})")
            return
        if not chosen:
            return
        async with KafkaWriter(settings) as writer:
            for record, target in chosen:
                partition, offset = await writer.send(
                    target, record.key, record.value, strip_dlq_headers(record.headers)
                )
                outcome["replayed"] += 1
                click.echo(f"replayed {_where(record)} -> {target} {partition}@{offset}  ({_reason(record)})")

    try:
        run(within(timeout, replay()))
    except TimeoutError:
        raise Failure(f"replaying from {topic} did not finish within {timeout:g}s ({outcome})") from None
    for partition, offset in sorted(set(offsets) - seen_offsets, key=lambda po: (po[0] or 0, po[1])):
        warn(f"note: no record at offset {offset}{f' of partition {partition}' if partition is not None else ''}")
    for key in sorted(wanted_keys - seen_keys):
        warn(f"note: no record with key {key.decode()!r}")
    if not outcome["selected"]:
        raise Failure(f"nothing matched in {topic} ({outcome['read']} record(s) read)")
    verb = "would replay" if dry_run else "replayed"
    count = outcome["selected"] - outcome["skipped"] if dry_run else outcome["replayed"]
    warn(f"{verb} {count} of {outcome['selected']} matching record(s) from {topic} ({outcome['skipped']} skipped)")
    if outcome["skipped"]:
        raise Failure(f"{outcome['skipped']} matching record(s) could not be replayed (see above)")


def _where(record: Record) -> str:
    return f"{record.topic} {record.partition}@{record.offset} key={record.key_text}"


def _reason(record: Record) -> str:
    reason = record.header("dlq-reason") or "no reason recorded"
    service = record.header("dlq-service")
    return f"{service}: {reason}" if service else reason
