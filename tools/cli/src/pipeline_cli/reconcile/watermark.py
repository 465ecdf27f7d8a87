"""The reconciler's watermark, kept in the compacted ``recall.reconciler.state`` topic (never on local disk: a
CronJob's pod has none that lasts). One record per scope key; compaction keeps the latest."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from pipeline_cli.kafka import KafkaReader, KafkaWriter
from pipeline_common.topics import RECONCILER_STATE

TOPIC = RECONCILER_STATE.name


class ReconcilerWatermark(BaseModel):
    """Every recording of ``scope`` created before ``watermark`` is settled (ended in the pipeline, or not to be
    transcribed); the next run starts there, minus the safety overlap."""

    model_config = ConfigDict(extra="ignore")

    scope: str
    watermark: AwareDatetime
    updated_at: AwareDatetime
    published: int = 0
    seen: int = 0


async def load_watermark(reader: KafkaReader, scope: str) -> ReconcilerWatermark | None:
    """The latest valid watermark of ``scope`` (an unreadable record is skipped, not fatal: the run just looks
    further back, which is safe)."""
    latest: ReconcilerWatermark | None = None
    async for record in reader.snapshot([TOPIC]):
        if record.key_text != scope or record.value is None:
            continue
        try:
            latest = ReconcilerWatermark.model_validate_json(record.value)
        except ValidationError:
            continue
    return latest


async def save_watermark(writer: KafkaWriter, mark: ReconcilerWatermark) -> None:
    await writer.send(TOPIC, mark.scope.encode(), mark.model_dump_json().encode(), [])


def describe(moment: datetime | None) -> str:
    return "none" if moment is None else moment.isoformat().replace("+00:00", "Z")
