"""``readable.json``: exactly what Recall's ``convert_to_readable_transcript`` returns (Recall's
``bot_async_transcription`` sample, linked from its quickstarts), so code written against Recall's sample reads ours.

Parts whose participant is null or has no name are left out (without breaking a speaker's run); consecutive parts of
one participant (``id``, else ``name``, compared strictly) merge; word texts are joined with single spaces and trimmed
(JavaScript's whitespace); the start is the first word with a start timestamp, the end the last word with an end
timestamp; ``duration_seconds`` is ``end - start`` unrounded, or from the absolute times (whole milliseconds, as
``Date.parse``) when a relative one is missing; absolute timestamps pass through unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from pipeline_common.recall.models import Transcript, TranscriptPart

__all__ = [
    "RawPart",
    "RecallRuns",
    "paragraph_json",
    "recall_readable",
    "write_readable_elements",
    "write_readable_json",
]

# JavaScript's String.prototype.trim whitespace: Recall's function trims with it.
_JS_WHITESPACE: Final = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
RawPart = Mapping[str, Any]


def _raw(part: TranscriptPart | RawPart) -> RawPart:
    return part.model_dump(mode="json") if isinstance(part, TranscriptPart) else part


def _recall_key(participant: Mapping[str, Any]) -> tuple[type, Any]:
    """``participant.id ?? participant.name``, compared strictly (an id 1 is not a name "1")."""
    value = participant.get("id")
    if value is None:
        value = participant.get("name")
    return (type(value), value)


def _epoch_ms(text: Any) -> int | None:
    """``Date.parse``: whole milliseconds since the epoch, or None for what it cannot read."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _timestamp_of(word: Any, which: str) -> Mapping[str, Any] | None:
    stamp = word.get(which) if isinstance(word, Mapping) else None
    return stamp if isinstance(stamp, Mapping) else None


class _Run:
    """One speaker's run, kept small: the word texts and the two timestamps that matter, not the words."""

    __slots__ = ("end", "key", "participant", "start", "texts")

    def __init__(self, participant: Mapping[str, Any]) -> None:
        self.participant = participant
        self.key = _recall_key(participant)
        self.texts: list[str] = []
        self.start: Mapping[str, Any] | None = None  # of the first word that has a start timestamp
        self.end: Mapping[str, Any] | None = None  # of the last word that has an end timestamp

    def add(self, words: list[Any]) -> None:
        for word in words:
            if not isinstance(word, Mapping):
                continue
            self.texts.append(str(word.get("text", "")))
            if self.start is None:
                self.start = _timestamp_of(word, "start_timestamp")
            end = _timestamp_of(word, "end_timestamp")
            if end is not None:  # an empty {} counts, as any object does in JavaScript
                self.end = end

    def add_texts(self, texts: list[str], start: Mapping[str, Any] | None, end: Mapping[str, Any] | None) -> None:
        """:meth:`add` from what it reads of the words: their texts, the first start and the last end timestamp."""
        self.texts += texts
        if self.start is None:
            self.start = start
        if end is not None:
            self.end = end

    def paragraph(self) -> dict[str, Any] | None:
        text = " ".join(self.texts).strip(_JS_WHITESPACE)
        if not text:
            return None
        start, end = self.start or {}, self.end or {}
        start_relative, end_relative = start.get("relative"), end.get("relative")
        start_absolute, end_absolute = start.get("absolute"), end.get("absolute")
        duration: float | None = None
        if start_relative is not None and end_relative is not None:
            duration = end_relative - start_relative
        elif start_absolute and end_absolute:
            start_ms, end_ms = _epoch_ms(start_absolute), _epoch_ms(end_absolute)
            if start_ms is not None and end_ms is not None:
                duration = (end_ms - start_ms) / 1000
        return {
            "speaker": self.participant.get("name"),
            "paragraph": text,
            "start_timestamp": {"relative": start_relative, "absolute": start_absolute},
            "end_timestamp": {"relative": end_relative, "absolute": end_absolute},
            "duration_seconds": duration,
        }


def recall_readable(parts: Iterable[TranscriptPart | RawPart] | Transcript) -> list[dict[str, Any]]:
    """Exactly what Recall's ``convert_to_readable_transcript`` returns for these parts (see the module docstring).
    Give it the parts as downloaded (``json.loads`` of each) to keep absolute timestamps byte for byte; it reads
    them one at a time, so a generator keeps memory to the text."""
    runs: list[_Run] = []
    for part in parts.root if isinstance(parts, Transcript) else parts:
        raw = _raw(part)
        participant, words = raw.get("participant"), raw.get("words")
        if not isinstance(participant, Mapping) or not participant.get("name") or not isinstance(words, list):
            continue
        if not words:
            continue
        if not runs or runs[-1].key != _recall_key(participant):
            runs.append(_Run(participant))
        runs[-1].add(words)
    paragraphs = (run.paragraph() for run in runs)
    return [paragraph for paragraph in paragraphs if paragraph is not None]


class RecallRuns:
    """:func:`recall_readable`, one part at a time (the fetcher's streaming reader feeds it texts, not words)."""

    def __init__(self) -> None:
        #: the paragraphs so far, each as :func:`paragraph_json` formats it (text is smaller than its dicts)
        self._done: list[str] = []
        self._run: _Run | None = None

    def run_for(self, participant: Any, words: Any) -> _Run | None:
        """The run a part with this participant and these words joins, or None when it is left out. A run that
        ends becomes its paragraph at once (its word texts are not kept)."""
        if not isinstance(participant, Mapping) or not participant.get("name") or not isinstance(words, list):
            return None
        if not words:
            return None
        if self._run is None or self._run.key != _recall_key(participant):
            self._close()
            self._run = _Run(participant)
        return self._run

    def _close(self) -> None:
        if self._run is not None:
            paragraph = self._run.paragraph()
            if paragraph is not None:
                self._done.append(paragraph_json(paragraph))
            self._run = None

    def formatted(self) -> list[str]:
        """Every paragraph, formatted by :func:`paragraph_json` (for :func:`write_readable_elements`)."""
        self._close()
        return self._done


_KEYS: Final = ("speaker", "paragraph", "start_timestamp", "end_timestamp", "duration_seconds")
_STAMP_KEYS: Final = ("relative", "absolute")
_encode_string: Callable[[str], str] = json.encoder.encode_basestring


def _scalar(value: Any) -> str | None:
    """``json.dumps(value)`` of a JSON scalar (the same C string encoder and float repr), None for anything else."""
    kind = type(value)
    if kind is str:
        return _encode_string(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if kind is int:
        return int.__repr__(value)
    if kind is float:
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return float.__repr__(value)
    return None


def _stamp(value: Any) -> str | None:
    if type(value) is not dict or tuple(value) != _STAMP_KEYS:
        return None
    relative, absolute = _scalar(value["relative"]), _scalar(value["absolute"])
    if relative is None or absolute is None:
        return None
    return f'{{\n      "relative": {relative},\n      "absolute": {absolute}\n    }}'


def paragraph_json(paragraph: Mapping[str, Any]) -> str:
    """One element of the list as ``json.dumps(..., ensure_ascii=False, indent=2)`` writes it, indented once."""
    if type(paragraph) is dict and tuple(paragraph) == _KEYS:
        speaker, text = _scalar(paragraph["speaker"]), _scalar(paragraph["paragraph"])
        start, end = _stamp(paragraph["start_timestamp"]), _stamp(paragraph["end_timestamp"])
        duration = _scalar(paragraph["duration_seconds"])
        if speaker is not None and text is not None and start and end and duration is not None:
            return (
                f'  {{\n    "speaker": {speaker},\n    "paragraph": {text},\n    "start_timestamp": {start},\n'
                f'    "end_timestamp": {end},\n    "duration_seconds": {duration}\n  }}'
            )
    # Anything else: the library's own encoder (strings hold no raw newline, so indenting its lines is exact).
    return "  " + json.dumps(paragraph, ensure_ascii=False, indent=2).replace("\n", "\n  ")


def write_readable_json(paragraphs: Iterable[Mapping[str, Any]], write: Callable[[str], object]) -> None:
    """``json.dumps(list(paragraphs), ensure_ascii=False, indent=2) + "\\n"``, written piece by piece."""
    write_readable_elements(map(paragraph_json, paragraphs), write)


def write_readable_elements(elements: Iterable[str], write: Callable[[str], object]) -> None:
    """:func:`write_readable_json` from its elements already formatted by :func:`paragraph_json`."""
    first = True
    for element in elements:
        write(("[\n" if first else ",\n") + element)
        first = False
    write("[]\n" if first else "\n]\n")
