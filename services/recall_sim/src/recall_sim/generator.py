"""Deterministic, realistic transcripts in Recall's download format.

Same recording and spec -> the same bytes, on every run and machine (``random.Random`` seeded with a string). Several
participants take turns of a few sentences, with word-level relative timestamps, small pauses, an occasional overlap
and, sometimes, a first part without a participant (speech before the bot joined), as Recall's docs describe.
Size scales from an empty list to tens of megabytes (by word count or by target byte size).
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

NAMES: Final = (
    "Alice Johnson",
    "Bruno Martínez",
    "Chloé Dubois",
    "Dmitri Ivanov",
    "Emma Schröder",
    "Farah Khan",
    "Gustavo Pereira",
    "小林 花",
    "Ian O'Brien",
    "Jürgen Müller",
    "Kwame Mensah",
    "Zoë Łukasiewicz",
)
SENTENCES: Final = (
    "Thanks everyone for joining today.",
    "Let's start with a quick round of updates.",
    "The migration to the new cluster finished on Tuesday.",
    "We saw a small spike in latency, but it recovered within minutes.",
    "Can you share the dashboard link in the chat?",
    "I think we should revisit the retry policy before the launch.",
    "Customers in Zürich reported that exports were slow last week.",
    "Okay, that makes sense.",
    "Yes.",
    "Um, I'm not sure we have enough data to decide yet.",
    "Let's take that offline and follow up by Friday.",
    "The budget for the next quarter is about twelve percent higher.",
    "Who owns the action item for the café partnership?",
    "Right, so the naïve approach would double the cost.",
    "I'll send a summary after the call.",
    "Does anyone have questions before we move on?",
    "The on-call rotation starts Monday at nine.",
    "We need sign-off from legal on the data retention change.",
    "That's a great point, let's add it to the agenda.",
    "Could you repeat the last number?",
    "Sure, it was four hundred and twenty thousand requests per minute.",
    "Perfect, thanks.",
    "I'm seeing some echo on my side, can everyone hear me?",
    "Let's wrap up here and meet again next week.",
)
AVERAGE_BYTES_PER_WORD: Final = 120
MAX_WORDS: Final = 5_000_000


class TranscriptSpec(BaseModel):
    """What the transcript of a simulated recording looks like; ``None`` fields fall back to the run-time config."""

    model_config = ConfigDict(extra="forbid")

    words: int | None = Field(default=None, ge=0, le=MAX_WORDS)
    target_bytes: int | None = Field(default=None, ge=0, le=500_000_000)
    speakers: int = Field(default=3, ge=1, le=len(NAMES))
    language_code: str = "en"
    empty: bool | None = None
    null_first_participant: bool | None = None
    absolute_timestamps: bool = False
    platform: str = "desktop"
    #: Providers that fail on this recording's audio, with the transcript.failed sub_code they end with
    #: (per recording, unlike the provider_failures fault, which hits every recording).
    failing_providers: dict[str, str] = Field(default_factory=dict)
    #: How long this recording's transcripts stay ``processing`` (``None``: the config's transcript_delay_seconds),
    #: e.g. one still processing past the transcriber's deadline.
    processing_seconds: float | None = Field(default=None, ge=0, le=86_400)


def _word(text: str, start: float, end: float, origin: datetime | None) -> str:
    if origin is None:
        absolute_start = absolute_end = "null"
    else:
        absolute_start = json.dumps((origin + timedelta(seconds=start)).isoformat().replace("+00:00", "Z"))
        absolute_end = json.dumps((origin + timedelta(seconds=end)).isoformat().replace("+00:00", "Z"))
    return (
        f'{{"text":{json.dumps(text, ensure_ascii=False)},'
        f'"start_timestamp":{{"relative":{start:.3f},"absolute":{absolute_start}}},'
        f'"end_timestamp":{{"relative":{end:.3f},"absolute":{absolute_end}}}}}'
    )


def generate_transcript(
    key: str,
    spec: TranscriptSpec,
    *,
    default_words: int,
    default_bytes: int | None = None,
    empty: bool = False,
    started_at: datetime | None = None,
) -> bytes:
    """The JSON a Recall download URL serves for ``key`` (the recording id, with the seed)."""
    if spec.empty if spec.empty is not None else empty:
        return b"[]"
    rng = random.Random(f"recall-sim:{key}")  # noqa: S311 - deterministic test data, not security
    target_bytes = spec.target_bytes if spec.target_bytes is not None else default_bytes
    target_words = spec.words if spec.words is not None else default_words
    if target_bytes is not None and spec.words is None:
        target_words = MAX_WORDS
    if target_words == 0 or target_bytes == 0:
        return b"[]"
    participants: list[dict[str, Any]] = [
        {
            "id": 100 + index,
            "name": name,
            "is_host": index == 0,
            "platform": spec.platform,
            "extra_data": {},
            "email": None,
        }
        for index, name in enumerate(rng.sample(NAMES, spec.speakers))
    ]
    origin = (started_at or datetime(2024, 1, 1)) if spec.absolute_timestamps else None
    null_first = spec.null_first_participant if spec.null_first_participant is not None else rng.random() < 0.25
    out: list[str] = []
    size = 2
    words = 0
    clock = round(rng.uniform(0.5, 3.0), 3)
    previous_speaker = -1
    first = True
    while words < target_words and (target_bytes is None or size < target_bytes):
        if first and null_first:
            participant: dict[str, Any] | None = None
        else:
            choices = [index for index in range(len(participants)) if index != previous_speaker] or [0]
            previous_speaker = rng.choice(choices)
            participant = participants[previous_speaker]
        first = False
        turn: list[str] = []
        for _ in range(rng.randint(1, 4)):
            turn.extend(rng.choice(SENTENCES).split())
        rendered = []
        for text in turn[: max(1, target_words - words)]:
            duration = round(rng.uniform(0.12, 0.6), 3)
            rendered.append(_word(text, clock, clock + duration, origin))
            clock = round(clock + duration + rng.choice((0.0, 0.0, 0.04, 0.08, 0.15)), 3)
            words += 1
        part = (
            f'{{"participant":{json.dumps(participant, ensure_ascii=False)},'
            f'"language_code":{json.dumps(spec.language_code)},"words":[{",".join(rendered)}]}}'
        )
        out.append(part)
        size += len(part.encode()) + 1
        # Pause between turns; sometimes the next speaker starts before this one finished.
        clock = round(max(0.0, clock + (rng.uniform(-0.4, 0.0) if rng.random() < 0.1 else rng.uniform(0.2, 1.5))), 3)
    return ("[" + ",".join(out) + "]").encode()


def provider_data(key: str, provider_name: str, transcript_id: str) -> bytes:
    """A stand-in for the raw provider response behind ``provider_data_download_url`` (its shape varies by provider)."""
    return json.dumps(
        {"provider": provider_name, "transcript_id": transcript_id, "request_id": f"sim-{key}", "simulated": True}
    ).encode()
