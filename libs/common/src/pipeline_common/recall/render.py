"""Renderers for downloaded transcripts: a readable speaker-grouped form, plain text, WebVTT and SRT.

All renderers are deterministic (same parts in, same bytes out) and total: any transcript the models accept renders,
including null participants, words without timestamps, zero-length words, overlapping speakers, any unicode, and the
empty transcript.

Grouping: consecutive parts of the same participant (same id, else same name; null participants are one "unknown"
speaker) merge into one paragraph, with its start and end (the earliest word start and the latest word end) and
duration. That is the shape Recall's docs show for a "sentence-by-sentence" transcript: ``speaker``, ``paragraph``,
``start_timestamp``, ``end_timestamp``, plus ``duration_seconds``, ``language_code``, ``word_count`` and the
participant. Text is cleaned: control characters dropped, runs of whitespace (newlines included) collapsed, and a
token that is only closing punctuation attached to the word before it.

Each ``render_*`` function takes the parts and groups them itself. A caller that renders several forms of one
transcript should group once instead: ``paragraphs = readable(parts)`` (and ``paragraph_cues(paragraphs)`` for the
subtitle forms), then ``format_readable_json`` / ``format_text`` from the paragraphs and ``format_vtt`` /
``format_srt`` from the cues; the bytes are the same as the ``render_*`` functions' (they are thin wrappers).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from pipeline_common.recall.models import Participant
from pipeline_common.recall.words import (
    UNKNOWN_SPEAKER,
    Parts,
    Token,
    as_parts,
    clean_text,
    join_tokens,
    ms,
    speaker_key,
    speaker_label,
    tokens_of,
    words_in,
)

__all__ = [
    "UNKNOWN_SPEAKER",
    "Cue",
    "Paragraph",
    "cues",
    "format_readable_json",
    "format_srt",
    "format_text",
    "format_vtt",
    "language_codes",
    "paragraph_cues",
    "readable",
    "readable_json",
    "render_readable_json",
    "render_srt",
    "render_text",
    "render_vtt",
    "speaker_label",
    "speakers",
    "speech_duration",
    "word_count",
]

MIN_CUE_SECONDS: Final = 0.5  # a cue for a zero-length word (or one without timestamps) stays up this long
DEFAULT_CUE_SECONDS: Final = 7.0
DEFAULT_CUE_CHARS: Final = 84
_SENTENCE_END: Final = frozenset(".!?…。！？")


@dataclass(frozen=True, slots=True)
class Paragraph:
    """One speaker turn: consecutive parts of one participant."""

    speaker: str
    participant: Participant | None
    language_code: str | None
    text: str
    start: float | None
    end: float | None
    start_absolute: datetime | None
    end_absolute: datetime | None
    word_count: int
    tokens: tuple[Token, ...] = field(repr=False, compare=False)

    @property
    def duration(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return ms(max(0.0, self.end - self.start))

    def to_dict(self) -> dict[str, Any]:
        return {
            "speaker": self.speaker,
            "participant": self.participant.model_dump(mode="json") if self.participant else None,
            "language_code": self.language_code,
            "paragraph": self.text,
            "start_timestamp": _timestamp(self.start, self.start_absolute),
            "end_timestamp": _timestamp(self.end, self.end_absolute),
            "duration_seconds": self.duration,
            "word_count": self.word_count,
        }


def _timestamp(relative: float | None, absolute: datetime | None) -> dict[str, Any] | None:
    if relative is None and absolute is None:
        return None
    return {
        "relative": ms(relative) if relative is not None else None,
        "absolute": absolute.isoformat() if absolute else None,
    }


def _paragraph(participant: Participant | None, language_code: str | None, tokens: list[Token]) -> Paragraph:
    timed_starts = [t for t in tokens if t.start is not None]
    timed_ends = [t for t in tokens if (t.end if t.end is not None else t.start) is not None]
    first = min(timed_starts, key=lambda t: t.start or 0.0) if timed_starts else None
    last = max(timed_ends, key=lambda t: t.end if t.end is not None else (t.start or 0.0)) if timed_ends else None
    start = first.start if first else None
    end = (last.end if last.end is not None else last.start) if last else None
    if start is not None and end is not None and end < start:
        end = start
    return Paragraph(
        speaker=speaker_label(participant),
        participant=participant,
        language_code=language_code,
        text=join_tokens(tokens),
        start=start,
        end=end,
        start_absolute=first.start_absolute if first else None,
        end_absolute=last.end_absolute if last else None,
        word_count=sum(words_in(t.text) for t in tokens),
        tokens=tuple(tokens),
    )


def readable(parts: Parts) -> list[Paragraph]:
    """Speaker-grouped paragraphs in transcript order. Parts without words add nothing (and do not split a turn)."""
    groups: list[tuple[tuple[str, str], Participant | None, str | None, list[Token]]] = []
    for part in as_parts(parts):
        tokens = tokens_of(part)
        if not tokens:
            continue
        key = speaker_key(part.participant)
        if groups and groups[-1][0] == key:
            _, participant, language, existing = groups[-1]
            groups[-1] = (key, participant, language or part.language_code, existing + tokens)
        else:
            groups.append((key, part.participant, part.language_code, tokens))
    return [_paragraph(participant, language, tokens) for _, participant, language, tokens in groups]


def readable_json(parts: Parts) -> list[dict[str, Any]]:
    """The readable form as JSON-able dicts (one per paragraph)."""
    return [paragraph.to_dict() for paragraph in readable(parts)]


def render_readable_json(parts: Parts) -> str:
    return format_readable_json(readable(parts))


def format_readable_json(paragraphs: Iterable[Paragraph]) -> str:
    """The readable form's JSON text, from paragraphs computed by :func:`readable`."""
    return json.dumps([paragraph.to_dict() for paragraph in paragraphs], ensure_ascii=False, indent=2) + "\n"


def _clock(seconds: float) -> str:
    whole = int(max(0.0, seconds))
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def render_text(parts: Parts, *, timestamps: bool = True) -> str:
    """``[HH:MM:SS] Speaker: paragraph`` per line (no time when the paragraph has none). Empty transcript: ``""``."""
    return format_text(readable(parts), timestamps=timestamps)


def format_text(paragraphs: Iterable[Paragraph], *, timestamps: bool = True) -> str:
    """:func:`render_text` from paragraphs computed by :func:`readable`."""
    lines = []
    for paragraph in paragraphs:
        prefix = f"[{_clock(paragraph.start)}] " if timestamps and paragraph.start is not None else ""
        lines.append(f"{prefix}{paragraph.speaker}: {paragraph.text}")
    return "\n".join(lines) + ("\n" if lines else "")


@dataclass(frozen=True, slots=True)
class Cue:
    start: float
    end: float
    speaker: str
    text: str


def cues(parts: Parts, *, max_seconds: float = DEFAULT_CUE_SECONDS, max_chars: int = DEFAULT_CUE_CHARS) -> list[Cue]:
    """Subtitle cues: each paragraph split at sentence ends, ``max_seconds`` or ``max_chars``; sorted by start
    (stable). Words without timestamps take the time of the cue before them; every cue lasts at least
    ``MIN_CUE_SECONDS``."""
    return paragraph_cues(readable(parts), max_seconds=max_seconds, max_chars=max_chars)


def paragraph_cues(
    paragraphs: Iterable[Paragraph], *, max_seconds: float = DEFAULT_CUE_SECONDS, max_chars: int = DEFAULT_CUE_CHARS
) -> list[Cue]:
    """:func:`cues` from paragraphs computed by :func:`readable`."""
    result: list[Cue] = []
    previous_end = 0.0
    for paragraph in paragraphs:
        chunk: list[Token] = []
        for token in paragraph.tokens:
            if chunk and _should_break(chunk, token, max_seconds, max_chars):
                previous_end = _emit(result, paragraph.speaker, chunk, previous_end)
                chunk = []
            chunk.append(token)
            if token.text[-1] in _SENTENCE_END and len(join_tokens(chunk)) >= max_chars // 3:
                previous_end = _emit(result, paragraph.speaker, chunk, previous_end)
                chunk = []
        if chunk:
            previous_end = _emit(result, paragraph.speaker, chunk, previous_end)
    return sorted(result, key=lambda cue: cue.start)


def _chunk_start(chunk: list[Token]) -> float | None:
    starts = [t.start for t in chunk if t.start is not None]
    return min(starts) if starts else None


def _should_break(chunk: list[Token], token: Token, max_seconds: float, max_chars: int) -> bool:
    if len(join_tokens(chunk)) + 1 + len(token.text) > max_chars:
        return True
    start = _chunk_start(chunk)
    token_end = token.end if token.end is not None else token.start
    return start is not None and token_end is not None and token_end - start > max_seconds


def _emit(result: list[Cue], speaker: str, chunk: list[Token], previous_end: float) -> float:
    starts = [t.start for t in chunk if t.start is not None]
    ends = [t.end if t.end is not None else t.start for t in chunk]
    known_ends = [end for end in ends if end is not None]
    start = min(starts) if starts else (min(known_ends) if known_ends else previous_end)
    end = max(known_ends) if known_ends else start
    start = max(0.0, start)
    end = max(end, start + MIN_CUE_SECONDS)
    result.append(Cue(start=ms(start), end=ms(end), speaker=speaker, text=join_tokens(chunk)))
    return end


def _cue_time(seconds: float, separator: str) -> str:
    millis = round(max(0.0, seconds) * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_vtt(parts: Parts, **cue_options: Any) -> str:
    """WebVTT with one voice span (``<v Speaker>``) per cue. Empty transcript: the bare ``WEBVTT`` header."""
    return format_vtt(cues(parts, **cue_options))


def format_vtt(cue_list: Iterable[Cue]) -> str:
    """:func:`render_vtt` from cues computed by :func:`cues` or :func:`paragraph_cues`."""
    blocks = ["WEBVTT"]
    for index, cue in enumerate(cue_list, start=1):
        blocks.append(
            f"{index}\n{_cue_time(cue.start, '.')} --> {_cue_time(cue.end, '.')}\n"
            f"<v {_vtt_escape(cue.speaker)}>{_vtt_escape(cue.text)}"
        )
    return "\n\n".join(blocks) + "\n"


def render_srt(parts: Parts, **cue_options: Any) -> str:
    """SubRip with ``Speaker: text`` cues. Empty transcript: ``""``."""
    return format_srt(cues(parts, **cue_options))


def format_srt(cue_list: Iterable[Cue]) -> str:
    """:func:`render_srt` from cues computed by :func:`cues` or :func:`paragraph_cues`."""
    blocks = [
        f"{index}\n{_cue_time(cue.start, ',')} --> {_cue_time(cue.end, ',')}\n{cue.speaker}: {cue.text}"
        for index, cue in enumerate(cue_list, start=1)
    ]
    return "\n\n".join(blocks) + ("\n" if blocks else "")


def word_count(parts: Parts) -> int:
    """Words with at least one letter or digit (punctuation-only tokens do not count; a token holding several
    space-separated words counts each)."""
    return sum(words_in(word.text) for part in as_parts(parts) for word in part.words)


def speakers(parts: Parts) -> list[Participant]:
    """Distinct identified participants in order of first appearance (null and anonymous ones left out)."""
    seen: set[tuple[str, str]] = set()
    found = []
    for part in as_parts(parts):
        key = speaker_key(part.participant)
        if key[0] == "unknown" or key in seen or part.participant is None:
            continue
        seen.add(key)
        found.append(part.participant)
    return found


def language_codes(parts: Parts) -> list[str]:
    """Distinct language codes in order of first appearance."""
    return list(dict.fromkeys(part.language_code for part in as_parts(parts) if part.language_code))


def speech_duration(parts: Parts) -> float:
    """Seconds during which at least one word was being spoken (the union of word intervals, so overlapping
    speakers are not counted twice). Words without both timestamps add nothing."""
    intervals = sorted(
        (word.start, max(word.end, word.start))
        for part in as_parts(parts)
        for word in part.words
        if word.start is not None and word.end is not None and clean_text(word.text)
    )
    total = 0.0
    current_start: float | None = None
    current_end = 0.0
    for start, end in intervals:
        if current_start is None or start > current_end:
            if current_start is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_start is not None:
        total += current_end - current_start
    return ms(total)
