"""The renderers' grouping for a transcript held column-wise: per part, its cleaned word texts and two ``array('d')``
of relative start/end times (NaN for "none"), no object per word. :func:`pipeline_common.recall.render.readable`
and :func:`~pipeline_common.recall.render.paragraph_cues` take this path when given :class:`ColumnPart` s (the
fetcher's streaming reader builds them); the results are equal to the per-word path's (a property test compares
them on any valid transcript).
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from pipeline_common.recall._text import ms, speaker_key
from pipeline_common.recall.models import Participant

if TYPE_CHECKING:
    from pipeline_common.recall.render import Cue, Paragraph

NAN: Final = float("nan")
# Word pieces (``str.split()``) holding a letter or digit: ``\S`` and ``\w`` use the same character tables as
# ``str.isspace``/``str.isalnum``, and ``[^\W_]`` is ``\w`` without the underscore, i.e. ``isalnum``.
_WORD: Final = re.compile(r"\S*[^\W_]\S*")


def words_in(text: str) -> int:
    """:func:`pipeline_common.recall._text.words_in` of ``text`` (or of all texts joined with spaces)."""
    return len(_WORD.findall(text))


class ColumnPart:
    """One part: the participant, language, its non-empty cleaned token texts and their relative times (end already
    raised to the start when it was before it), and the absolute times of its first start and last end token."""

    __slots__ = (
        "end_absolute",
        "ends",
        "first",
        "language_code",
        "last",
        "participant",
        "simple",
        "start_absolute",
        "starts",
        "texts",
    )

    def __init__(
        self,
        participant: Participant | None,
        language_code: str | None,
        texts: list[str],
        starts: array[float],
        ends: array[float],
        absolutes: Any,
        simple: bool,
    ) -> None:
        self.participant = participant
        self.language_code = language_code
        self.texts = texts
        self.starts = starts
        self.ends = ends
        #: every token is free of spaces, so a paragraph's text is ``" ".join`` with punctuation re-attached
        self.simple = simple
        self.first = first = _first_start(starts)
        self.last = last = _last_end(starts, ends)
        self.start_absolute: datetime | None = absolutes(first, "start") if first >= 0 else None
        self.end_absolute: datetime | None = absolutes(last, "end") if last >= 0 else None


def _first_start(starts: array[float]) -> int:
    """Index of the first token with the smallest start, or -1 when none has one (``min`` returns the first of
    equal values, ``index`` the first equal one: the same token)."""
    timed = [start for start in starts if start == start]
    return starts.index(min(timed)) if timed else -1


def _last_end(starts: array[float], ends: array[float]) -> int:
    """Index of the first token with the largest end (its start when it has no end), or -1."""
    keys = [end if end == end else start for start, end in zip(starts, ends, strict=True)]
    timed = [key for key in keys if key == key]
    return keys.index(max(timed)) if timed else -1


class _Group:
    __slots__ = ("key", "language_code", "participant", "parts")

    def __init__(self, key: tuple[str, str], part: ColumnPart) -> None:
        self.key = key
        self.participant = part.participant
        self.language_code = part.language_code
        self.parts = [part]


def paragraphs(parts: Iterable[ColumnPart], make: type[Paragraph], punctuation: frozenset[str]) -> list[Paragraph]:
    from pipeline_common.recall.render import speaker_label

    groups: list[_Group] = []
    keys: dict[int, tuple[str, str]] = {}
    for part in parts:
        if not part.texts:
            continue
        key = keys.get(id(part.participant))
        if key is None:
            key = keys[id(part.participant)] = speaker_key(part.participant)
        if groups and groups[-1].key == key:
            group = groups[-1]
            group.language_code = group.language_code or part.language_code
            group.parts.append(part)
        else:
            groups.append(_Group(key, part))
    join = _joiner(punctuation)
    result = []
    for group in groups:
        texts: list[str] = []
        starts: array[float] = array("d")
        ends: array[float] = array("d")
        start, end = NAN, NAN
        start_absolute: datetime | None = None
        end_absolute: datetime | None = None
        simple = True
        if len(group.parts) == 1:
            texts, starts, ends = group.parts[0].texts, group.parts[0].starts, group.parts[0].ends
        for part in group.parts:
            if len(group.parts) > 1:
                texts += part.texts
                starts += part.starts
                ends += part.ends
            simple = simple and part.simple
            first, last = part.first, part.last
            if first >= 0 and (start != start or part.starts[first] < start):
                start, start_absolute = part.starts[first], part.start_absolute
            if last >= 0:
                value = part.ends[last] if part.ends[last] == part.ends[last] else part.starts[last]
                if end != end or value > end:
                    end, end_absolute = value, part.end_absolute
        if start == start and end == end and end < start:
            end = start
        result.append(
            make(
                speaker=speaker_label(group.participant),
                participant=group.participant,
                language_code=group.language_code,
                text=join(texts, simple),
                start=None if start != start else start,
                end=None if end != end else end,
                start_absolute=start_absolute,
                end_absolute=end_absolute,
                word_count=words_in(" ".join(texts)),
                tokens=Columns(texts, starts, ends, simple),  # type: ignore[arg-type]
            )
        )
    return result


class Columns:
    """A paragraph's tokens, column-wise (what :func:`cues` reads)."""

    __slots__ = ("ends", "simple", "starts", "texts")

    def __init__(self, texts: list[str], starts: array[float], ends: array[float], simple: bool) -> None:
        self.texts, self.starts, self.ends, self.simple = texts, starts, ends, simple


def _joiner(punctuation: frozenset[str]) -> Any:
    attach = re.compile(" (?=[" + "".join(re.escape(ch) for ch in sorted(punctuation)) + "]+(?: |$))")

    def join(texts: list[str], simple: bool) -> str:
        if simple:
            return attach.sub("", " ".join(texts))
        pieces: list[str] = []
        for text in texts:
            if pieces and not (set(text) <= punctuation):
                pieces.append(" ")
            pieces.append(text)
        return "".join(pieces)

    return join


def cues(
    paragraphs: Iterable[Paragraph],
    make: type[Cue],
    *,
    max_seconds: float,
    max_chars: int,
    min_seconds: float,
    punctuation: frozenset[str],
    sentence_end: frozenset[str],
) -> list[Cue]:
    """:func:`pipeline_common.recall.render.paragraph_cues` over column-wise tokens, the same cues."""
    join = _joiner(punctuation)
    result: list[Cue] = []
    previous_end = 0.0
    third = max_chars // 3
    for paragraph in paragraphs:
        columns: Columns = paragraph.tokens  # type: ignore[assignment]
        texts, starts, ends, simple = columns.texts, columns.starts, columns.ends, columns.simple
        first = 0  # the chunk is texts[first:i]
        length = 0  # len(_join(chunk))
        # the chunk's smallest start, and smallest and largest end (or start when a token has no end); NaN: none
        low = known_low = known_high = NAN
        for i, text in enumerate(texts):
            start, end = starts[i], ends[i]
            if end != end:
                end = start
            if i > first and (
                length + 1 + len(text) > max_chars or (low == low and end == end and end - low > max_seconds)
            ):
                cue_start = low if low == low else (known_low if known_low == known_low else previous_end)
                previous_end = _emit(
                    result, make, paragraph.speaker, join(texts[first:i], simple), cue_start, known_high, min_seconds
                )
                first, length, low, known_low, known_high = i, 0, NAN, NAN, NAN
            if i == first:
                length = len(text)
            elif text[0] in punctuation and set(text) <= punctuation:
                length += len(text)
            else:
                length += len(text) + 1
            if start == start and (low != low or start < low):
                low = start
            if end == end:
                if known_low != known_low or end < known_low:
                    known_low = end
                if known_high != known_high or end > known_high:
                    known_high = end
            if text[-1] in sentence_end and length >= third:
                cue_start = low if low == low else (known_low if known_low == known_low else previous_end)
                previous_end = _emit(
                    result,
                    make,
                    paragraph.speaker,
                    join(texts[first : i + 1], simple),
                    cue_start,
                    known_high,
                    min_seconds,
                )
                first, length, low, known_low, known_high = i + 1, 0, NAN, NAN, NAN
        if first < len(texts):
            cue_start = low if low == low else (known_low if known_low == known_low else previous_end)
            previous_end = _emit(
                result, make, paragraph.speaker, join(texts[first:], simple), cue_start, known_high, min_seconds
            )
    return sorted(result, key=lambda cue: cue.start)


def _emit(
    result: list[Cue], make: type[Cue], speaker: str, text: str, start: float, high: float, min_seconds: float
) -> float:
    """``render._emit``: the cue from its start (first start, else first end, else the previous cue's end) and its
    largest end (NaN: none, the cue ends at its start), at least ``min_seconds`` long. Returns its end."""
    end = high if high == high else start
    start = max(0.0, start)
    end = max(end, start + min_seconds)
    result.append(make(start=ms(start), end=ms(end), speaker=speaker, text=text))
    return end
