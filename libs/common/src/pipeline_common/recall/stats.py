"""Facts about a transcript that ``TranscriptReady`` carries: words, speakers, languages, speech duration."""

from __future__ import annotations

from pipeline_common.recall._text import Parts, clean_text
from pipeline_common.recall._text import ms as _ms
from pipeline_common.recall._text import parts_list as _parts
from pipeline_common.recall._text import speaker_key as _speaker_key
from pipeline_common.recall._text import words_in as _words_in
from pipeline_common.recall.models import Participant

__all__ = ["language_codes", "speakers", "speech_duration", "unnamed_word_count", "word_count"]


def word_count(parts: Parts) -> int:
    """Words with at least one letter or digit (punctuation-only tokens do not count; a token holding several
    space-separated words counts each)."""
    return sum(_words_in(word.text) for part in _parts(parts) for word in part.words)


def speakers(parts: Parts) -> list[Participant]:
    """Distinct identified participants in order of first appearance (null and anonymous ones left out)."""
    seen: set[tuple[str, str]] = set()
    found = []
    for part in _parts(parts):
        key = _speaker_key(part.participant)
        if key[0] == "unknown" or key in seen or part.participant is None:
            continue
        seen.add(key)
        found.append(part.participant)
    return found


def language_codes(parts: Parts) -> list[str]:
    """Distinct language codes in order of first appearance."""
    return list(dict.fromkeys(part.language_code for part in _parts(parts) if part.language_code))


def speech_duration(parts: Parts) -> float:
    """Seconds during which at least one word was being spoken (the union of word intervals, so overlapping
    speakers are not counted twice). Words without both timestamps add nothing."""
    intervals = sorted(
        (word.start, max(word.end, word.start))
        for part in _parts(parts)
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
    return _ms(total)


def unnamed_word_count(parts: Parts) -> int:
    """Words spoken by null or nameless participants: in ``txt``/``vtt``/``srt``, not in ``readable.json``."""
    return sum(
        _words_in(word.text)
        for part in _parts(parts)
        if part.participant is None or not part.participant.name
        for word in part.words
    )
