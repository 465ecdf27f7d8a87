"""Words as the renderers see them: cleaned text, speaker labels and keys, timed tokens, and how tokens join."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from pipeline_common.recall.models import Participant, Transcript, TranscriptPart

UNKNOWN_SPEAKER: Final = "Unknown speaker"
WHITESPACE: Final = re.compile(r"\s+")
CLOSING_PUNCTUATION: Final = frozenset(".,!?;:…)]}»”’%、。，！？；：」』）")

Parts = Iterable[TranscriptPart] | Transcript


def as_parts(parts: Parts) -> list[TranscriptPart]:
    return list(parts.root) if isinstance(parts, Transcript) else list(parts)


def clean_text(text: str) -> str:
    """Drop control characters, collapse whitespace (newlines too) to single spaces, strip."""
    if text.isprintable():
        return WHITESPACE.sub(" ", text).strip()
    kept = "".join(ch if ch.isspace() or unicodedata.category(ch) != "Cc" else "" for ch in text)
    return WHITESPACE.sub(" ", kept).strip()


def speaker_label(participant: Participant | None) -> str:
    if participant is None:
        return UNKNOWN_SPEAKER
    name = clean_text(participant.name or "")
    if name:
        return name
    if participant.id is not None:
        return f"Speaker {clean_text(str(participant.id)) or '?'}"
    return UNKNOWN_SPEAKER


def speaker_key(participant: Participant | None) -> tuple[str, str]:
    if participant is None:
        return ("unknown", "")
    if participant.id is not None:
        return ("id", f"{type(participant.id).__name__}:{participant.id}")
    name = clean_text(participant.name or "")
    return ("name", name) if name else ("unknown", "")


def ms(seconds: float) -> float:
    return round(seconds, 3)


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    start: float | None
    end: float | None
    start_absolute: datetime | None
    end_absolute: datetime | None


def tokens_of(part: TranscriptPart) -> list[Token]:
    tokens = []
    for word in part.words:
        text = clean_text(word.text)
        if not text:
            continue
        start, end = word.start, word.end
        if start is not None and end is not None and end < start:
            end = start  # a word cannot end before it starts; keep its start
        tokens.append(
            Token(
                text=text,
                start=start,
                end=end,
                start_absolute=word.start_timestamp.absolute if word.start_timestamp else None,
                end_absolute=word.end_timestamp.absolute if word.end_timestamp else None,
            )
        )
    return tokens


def join_tokens(tokens: Iterable[Token]) -> str:
    text = ""
    for token in tokens:
        if text and not (set(token.text) <= CLOSING_PUNCTUATION):
            text += " "
        text += token.text
    return text


def words_in(text: str) -> int:
    """Words in one token: whitespace-separated pieces with a letter or digit (punctuation alone is no word)."""
    return sum(1 for piece in text.split() if any(ch.isalnum() for ch in piece))
