"""Renderers for downloaded transcripts: Recall's readable form, plain text, WebVTT and SRT.

Two groupings, on purpose:

- ``readable.json`` (:func:`recall_readable`) is exactly what Recall's own ``convert_to_readable_transcript`` returns
  (the function Recall's quickstarts link to), so code written against Recall's sample reads ours unchanged: parts
  whose participant is null or has no name are left out (without breaking a speaker's run), consecutive parts of
  one participant (``id``, else ``name``) merge, word texts are joined with single spaces and trimmed, the start is
  the first word with a start timestamp and the end the last word with an end timestamp, ``duration_seconds`` is
  ``end - start`` unrounded (from the absolute times when a relative one is missing), and absolute timestamps pass
  through unchanged.
- The forms people read or watch (``txt``, ``vtt``, ``srt``) keep every spoken word: null and nameless participants
  are an "Unknown speaker" (or "Speaker <id>"), text is cleaned, punctuation tokens attach to the word before them.
  :func:`unnamed_word_count` says how many words only these forms carry.

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

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from pipeline_common.recall import _columns
from pipeline_common.recall._text import Parts, clean_text
from pipeline_common.recall._text import ms as _ms
from pipeline_common.recall._text import parts_list as _parts
from pipeline_common.recall._text import speaker_key as _speaker_key
from pipeline_common.recall._text import words_in as _words_in
from pipeline_common.recall.models import Participant, Transcript, TranscriptPart
from pipeline_common.recall.readable import RawPart, recall_readable, write_readable_json
from pipeline_common.recall.stats import language_codes, speakers, speech_duration, unnamed_word_count, word_count

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
    "recall_readable",
    "render_readable_json",
    "render_srt",
    "render_text",
    "render_vtt",
    "speaker_label",
    "speakers",
    "speech_duration",
    "unnamed_word_count",
    "word_count",
    "write_readable_json",
]

UNKNOWN_SPEAKER: Final = "Unknown speaker"
MIN_CUE_SECONDS: Final = 0.5  # a cue for a zero-length word (or one without timestamps) stays up this long
DEFAULT_CUE_SECONDS: Final = 7.0
DEFAULT_CUE_CHARS: Final = 84
_CLOSING_PUNCTUATION: Final = frozenset(".,!?;:…)]}»”’%、。，！？；：」』）")
_SENTENCE_END: Final = frozenset(".!?…。！？")


def speaker_label(participant: Participant | None) -> str:
    if participant is None:
        return UNKNOWN_SPEAKER
    name = clean_text(participant.name or "")
    if name:
        return name
    if participant.id is not None:
        return f"Speaker {clean_text(str(participant.id)) or '?'}"
    return UNKNOWN_SPEAKER


@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    start: float | None
    end: float | None
    start_absolute: datetime | None
    end_absolute: datetime | None


def _tokens(part: TranscriptPart) -> list[_Token]:
    tokens = []
    for word in part.words:
        text = clean_text(word.text)
        if not text:
            continue
        start, end = word.start, word.end
        if start is not None and end is not None and end < start:
            end = start  # a word cannot end before it starts; keep its start
        tokens.append(
            _Token(
                text=text,
                start=start,
                end=end,
                start_absolute=word.start_timestamp.absolute if word.start_timestamp else None,
                end_absolute=word.end_timestamp.absolute if word.end_timestamp else None,
            )
        )
    return tokens


def _join(tokens: Iterable[_Token]) -> str:
    text = ""
    for token in tokens:
        if text and not (set(token.text) <= _CLOSING_PUNCTUATION):
            text += " "
        text += token.text
    return text


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
    tokens: tuple[_Token, ...] = field(repr=False, compare=False)

    @property
    def duration(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return _ms(max(0.0, self.end - self.start))

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
        "relative": _ms(relative) if relative is not None else None,
        "absolute": absolute.isoformat() if absolute else None,
    }


def _paragraph(participant: Participant | None, language_code: str | None, tokens: list[_Token]) -> Paragraph:
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
        text=_join(tokens),
        start=start,
        end=end,
        start_absolute=first.start_absolute if first else None,
        end_absolute=last.end_absolute if last else None,
        word_count=sum(_words_in(t.text) for t in tokens),
        tokens=tuple(tokens),
    )


def readable(parts: Parts) -> list[Paragraph]:
    """Speaker-grouped paragraphs in transcript order. Parts without words add nothing (and do not split a turn)."""
    listed = _parts(parts)
    if listed and isinstance(listed[0], _columns.ColumnPart):
        return _columns.paragraphs(listed, Paragraph, _CLOSING_PUNCTUATION)  # type: ignore[arg-type]
    groups: list[tuple[tuple[str, str], Participant | None, str | None, list[_Token]]] = []
    for part in listed:
        tokens = _tokens(part)
        if not tokens:
            continue
        key = _speaker_key(part.participant)
        if groups and groups[-1][0] == key:
            _, participant, language, existing = groups[-1]
            groups[-1] = (key, participant, language or part.language_code, existing + tokens)
        else:
            groups.append((key, part.participant, part.language_code, tokens))
    return [_paragraph(participant, language, tokens) for _, participant, language, tokens in groups]


def readable_json(parts: Iterable[TranscriptPart | RawPart] | Transcript) -> list[dict[str, Any]]:
    """The ``readable.json`` form: :func:`recall_readable`."""
    return recall_readable(parts)


def render_readable_json(parts: Iterable[TranscriptPart | RawPart] | Transcript) -> str:
    return format_readable_json(recall_readable(parts))


def format_readable_json(paragraphs: Iterable[Mapping[str, Any]]) -> str:
    """``readable.json``'s text, from :func:`recall_readable`'s paragraphs."""
    pieces: list[str] = []
    write_readable_json(paragraphs, pieces.append)
    return "".join(pieces)


def _clock(seconds: float) -> str:
    whole = int(max(0.0, seconds))
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def render_text(parts: Parts, *, timestamps: bool = True) -> str:
    """``[HH:MM:SS] Speaker: paragraph`` per line (no time when the paragraph has none). Empty transcript: ``""``."""
    return format_text(readable(parts), timestamps=timestamps)


def format_text(paragraphs: Iterable[Paragraph], *, timestamps: bool = True) -> str:
    """:func:`render_text` from paragraphs computed by :func:`readable`."""
    return "".join(iter_text(paragraphs, timestamps=timestamps))


def iter_text(paragraphs: Iterable[Paragraph], *, timestamps: bool = True) -> Iterator[str]:
    """:func:`format_text` in pieces, one line each (a writer streams them: no whole copy of a large transcript)."""
    for paragraph in paragraphs:
        prefix = f"[{_clock(paragraph.start)}] " if timestamps and paragraph.start is not None else ""
        yield f"{prefix}{paragraph.speaker}: {paragraph.text}\n"


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
    paragraphs = list(paragraphs)
    if paragraphs and isinstance(paragraphs[0].tokens, _columns.Columns):
        return _columns.cues(
            paragraphs,
            Cue,
            max_seconds=max_seconds,
            max_chars=max_chars,
            min_seconds=MIN_CUE_SECONDS,
            punctuation=_CLOSING_PUNCTUATION,
            sentence_end=_SENTENCE_END,
        )
    result: list[Cue] = []
    previous_end = 0.0
    for paragraph in paragraphs:
        chunk: list[_Token] = []
        for token in paragraph.tokens:
            if chunk and _should_break(chunk, token, max_seconds, max_chars):
                previous_end = _emit(result, paragraph.speaker, chunk, previous_end)
                chunk = []
            chunk.append(token)
            if token.text[-1] in _SENTENCE_END and len(_join(chunk)) >= max_chars // 3:
                previous_end = _emit(result, paragraph.speaker, chunk, previous_end)
                chunk = []
        if chunk:
            previous_end = _emit(result, paragraph.speaker, chunk, previous_end)
    return sorted(result, key=lambda cue: cue.start)


def _chunk_start(chunk: list[_Token]) -> float | None:
    starts = [t.start for t in chunk if t.start is not None]
    return min(starts) if starts else None


def _should_break(chunk: list[_Token], token: _Token, max_seconds: float, max_chars: int) -> bool:
    if len(_join(chunk)) + 1 + len(token.text) > max_chars:
        return True
    start = _chunk_start(chunk)
    token_end = token.end if token.end is not None else token.start
    return start is not None and token_end is not None and token_end - start > max_seconds


def _emit(result: list[Cue], speaker: str, chunk: list[_Token], previous_end: float) -> float:
    starts = [t.start for t in chunk if t.start is not None]
    ends = [t.end if t.end is not None else t.start for t in chunk]
    known_ends = [end for end in ends if end is not None]
    start = min(starts) if starts else (min(known_ends) if known_ends else previous_end)
    end = max(known_ends) if known_ends else start
    start = max(0.0, start)
    end = max(end, start + MIN_CUE_SECONDS)
    result.append(Cue(start=_ms(start), end=_ms(end), speaker=speaker, text=_join(chunk)))
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
    return "".join(iter_vtt(cue_list))


def iter_vtt(cue_list: Iterable[Cue]) -> Iterator[str]:
    """:func:`format_vtt` in pieces, one cue each."""
    yield "WEBVTT"
    for index, cue in enumerate(cue_list, start=1):
        yield (
            f"\n\n{index}\n{_cue_time(cue.start, '.')} --> {_cue_time(cue.end, '.')}\n"
            f"<v {_vtt_escape(cue.speaker)}>{_vtt_escape(cue.text)}"
        )
    yield "\n"


def render_srt(parts: Parts, **cue_options: Any) -> str:
    """SubRip with ``Speaker: text`` cues. Empty transcript: ``""``."""
    return format_srt(cues(parts, **cue_options))


def format_srt(cue_list: Iterable[Cue]) -> str:
    """:func:`render_srt` from cues computed by :func:`cues` or :func:`paragraph_cues`."""
    return "".join(iter_srt(cue_list))


def iter_srt(cue_list: Iterable[Cue]) -> Iterator[str]:
    """:func:`format_srt` in pieces, one cue each (nothing for no cue)."""
    separator = ""
    for index, cue in enumerate(cue_list, start=1):
        timing = f"{_cue_time(cue.start, ',')} --> {_cue_time(cue.end, ',')}"
        yield f"{separator}{index}\n{timing}\n{cue.speaker}: {cue.text}"
        separator = "\n\n"
    if separator:
        yield "\n"
