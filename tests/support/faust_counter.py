"""A minimal faust-streaming app: counts events per key in a changelog-backed Table and emits each new count.

Run as its own process by tests/common/test_faust_changelog.py; the memory store means that a restarted worker can
only know earlier counts by recovering them from the Table's changelog topic in Kafka.
"""

from __future__ import annotations

import os

import faust

from pipeline_common.worker.faust_patches import apply_faust_patches

# As every worker here runs (pipeline_common.streaming.create_faust_app): without the patches, a record produced while
# the restarted worker seeks to its committed offset can be dropped (faust_patches.no_stale_records_across_a_seek).
apply_faust_patches()

app = faust.App(
    os.environ["COUNTER_APP_ID"],
    broker=f"kafka://{os.environ['KAFKA_BOOTSTRAP_SERVERS']}",
    store="memory://",
    topic_partitions=1,
    topic_replication_factor=1,
    web_enabled=False,
    consumer_auto_offset_reset="earliest",
    # A worker that did not leave the group cleanly holds its partitions until this expires.
    broker_session_timeout=10,
    broker_heartbeat_interval=1,
)
source = app.topic(os.environ["COUNTER_SOURCE_TOPIC"], key_type=str, value_type=str, partitions=1)
counts_out = app.topic(os.environ["COUNTER_OUTPUT_TOPIC"], key_type=str, value_type=str, partitions=1)
counts = app.Table("counts", default=int, partitions=1)


@app.agent(source)
async def count(stream: faust.StreamT[str]) -> None:
    async for key, _value in stream.items():
        counts[key] += 1
        await counts_out.send(key=key, value=str(counts[key]))


if __name__ == "__main__":
    app.main()
