"""Text and grouping helpers shared by the renderers and the transcript statistics."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Final

from pipeline_common.recall.models import Participant, Transcript, TranscriptPart

_WHITESPACE: Final = re.compile(r"\s+")

Parts = Iterable[TranscriptPart] | Transcript


def parts_list(parts: Parts) -> list[TranscriptPart]:
    return list(parts.root) if isinstance(parts, Transcript) else list(parts)


def clean_text(text: str) -> str:
    """Drop control characters, collapse whitespace (newlines too) to single spaces, strip."""
    if text.isprintable():
        return _WHITESPACE.sub(" ", text).strip()
    kept = "".join(ch if ch.isspace() or unicodedata.category(ch) != "Cc" else "" for ch in text)
    return _WHITESPACE.sub(" ", kept).strip()


def speaker_key(participant: Participant | None) -> tuple[str, str]:
    if participant is None:
        return ("unknown", "")
    if participant.id is not None:
        return ("id", f"{type(participant.id).__name__}:{participant.id}")
    name = clean_text(participant.name or "")
    return ("name", name) if name else ("unknown", "")


def ms(seconds: float) -> float:
    return round(seconds, 3)


def words_in(text: str) -> int:
    """Words in one token: whitespace-separated pieces with a letter or digit (punctuation alone is no word)."""
    return sum(1 for piece in text.split() if any(ch.isalnum() for ch in piece))
