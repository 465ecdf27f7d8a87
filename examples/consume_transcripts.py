"""A downstream consumer of transcripts.ready / transcripts.failed: needs only aiokafka (pip install aiokafka).

KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 python examples/consume_transcripts.py [--group G] [--from-beginning]
    [--max-events N] [--timeout SECONDS]      # exit 0, or 1 when --max-events were not all seen in time
"""

import argparse
import asyncio
import json
import os

from aiokafka import AIOKafkaConsumer


def describe(topic: str, value: bytes | None) -> str:
    """One line for one event. A record that is not a valid event is reported and skipped, never a crash: a consumer
    that stops on one bad record stops the whole partition behind it."""
    try:
        event = json.loads(value or b"")
        if event.get("schema_version", 1) != 1:
            return f"skipped {event.get('recording_id')}: schema_version {event.get('schema_version')} is not 1"
        if topic == "transcripts.ready":  # claim check: the transcript itself is at raw.uri
            line = f"transcript={event['transcript_id']} provider={event['provider']} words={event['word_count']}"
            return f"ready  {event['recording_id']} {line} raw={event['raw']['uri']}"
        return f"failed {event['recording_id']} reason={event['reason']} attempts={len(event['attempts'])}"
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        return f"skipped a {topic} record that is not a valid event ({type(error).__name__}: {error})"


async def consume(args: argparse.Namespace) -> int:
    consumer = AIOKafkaConsumer(
        "transcripts.ready",
        "transcripts.failed",
        bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        group_id=args.group,  # one group per downstream service: each gets every event once (at least)
        auto_offset_reset="earliest" if args.from_beginning else "latest",  # for a group with no committed offset
        enable_auto_commit=False,
        # transcripts.ready is written in Kafka transactions: read only committed events (an aborted one, from a
        # replica fenced after it lost its partition, stays in the log and must not be taken for a transcript)
        isolation_level="read_committed",
    )
    await consumer.start()
    seen: set[str] = set()  # at-least-once delivery: a redelivered event carries the same ce_id (keep this durable)
    wanted = args.max_events or 1_000_000_000
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.timeout if args.timeout else float("inf")
    try:
        while len(seen) < wanted and loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=min(wanted - len(seen), 500))
            for record in [r for batch in batches.values() for r in batch]:
                event_id = dict(record.headers).get("ce_id", b"").decode()
                if event_id in seen:
                    continue  # a duplicate: at-least-once delivery
                seen.add(event_id)
                print(describe(record.topic, record.value), flush=True)
            await consumer.commit()  # after the work is done: a crash before this redelivers, never loses
    finally:
        await consumer.stop()
    return 0 if not args.max_events or len(seen) >= args.max_events else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Print one line per transcripts.ready / transcripts.failed event.")
    parser.add_argument("--group", default="transcripts-example", help="consumer group id")
    parser.add_argument("--from-beginning", action="store_true", help="a new group starts at the oldest event")
    parser.add_argument("--max-events", type=int, help="stop after this many distinct events")
    parser.add_argument("--timeout", type=float, help="stop after this many seconds")
    raise SystemExit(asyncio.run(consume(parser.parse_args())))
