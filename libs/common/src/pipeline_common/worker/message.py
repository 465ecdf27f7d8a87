"""One consumed Kafka record, as the per-event logic sees it (faust's event converted at the edge)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Inbound:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """For keeping it in a recording's state (latin-1 maps every byte to one character and back)."""
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "key": None if self.key is None else self.key.decode("latin-1"),
            "value": self.value.decode("latin-1"),
            "headers": [[name, value.decode("latin-1")] for name, value in self.headers],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Inbound:
        key = data.get("key")
        return cls(
            topic=str(data["topic"]),
            partition=int(data["partition"]),
            offset=int(data["offset"]),
            key=None if key is None else str(key).encode("latin-1"),
            value=str(data["value"]).encode("latin-1"),
            headers=[(str(name), str(value).encode("latin-1")) for name, value in data.get("headers") or []],
        )
