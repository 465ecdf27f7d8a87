"""The fast path of :func:`fetcher.transcript.analyse`: msgspec structs instead of pydantic models, the words held
column-wise (:class:`pipeline_common.recall._columns.ColumnPart`), no ``datetime`` per word.

It only ever says "valid, and here is the analysis" or "not sure" (:class:`NotFast`): anything it does not handle
exactly like the library (invalid JSON or UTF-8, a type msgspec refuses, an ``absolute`` that is not a plain RFC 3339
string, ...) sends the whole transcript down the library's path, which gives the verdict and its reason. What it
accepts, the library accepts with the same values (``relative`` as a float, ``absolute`` as the same datetime).

The file is read in chunks; each chunk is cut after the last ``}`` that is followed by the start of a part, and
``[`` + the cut + ``]`` is decoded as a list of raw elements. A wrong cut (inside a string or a nested object) cannot
decode, so it only costs a bigger chunk.
"""

from __future__ import annotations

import codecs
import re
from array import array
from bisect import bisect_right
from collections.abc import Iterator
from datetime import datetime
from typing import Any, BinaryIO, Final

import msgspec
from pydantic import TypeAdapter, ValidationError

from pipeline_common.recall._columns import NAN, ColumnPart, words_in
from pipeline_common.recall._text import clean_text
from pipeline_common.recall.models import Participant
from pipeline_common.recall.readable import RecallRuns

CHUNK_BYTES: Final = 1024 * 1024
_NULL: Final = msgspec.Raw(b"null")
# The last '}' followed by the start of a part ("participant", "words" or "language_code" first).
_CUT: Final = re.compile(rb'(?s:.*)\}[ \t\r\n]*,[ \t\r\n]*(?=\{[ \t\r\n]*"(?:participant|words|language_code)")')
_RFC3339: Final = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)", re.ASCII)
_DATETIME: Final = TypeAdapter(datetime)


class NotFast(Exception):
    """The fast path cannot decide this transcript: use the library's."""


class _Stamp(msgspec.Struct, gc=False):
    relative: int | float | None = None
    absolute: str | None = None


class _Word(msgspec.Struct, gc=False):
    text: str
    start_timestamp: _Stamp | None = None
    end_timestamp: _Stamp | None = None


class _Part(msgspec.Struct, gc=False):
    words: list[_Word]
    participant: msgspec.Raw = _NULL
    language_code: str | None = None


_PART_DECODER: Final = msgspec.json.Decoder(_Part)
_LIST_DECODER: Final = msgspec.json.Decoder(list[msgspec.Raw])


def raw_parts(stream: BinaryIO, read_bytes: int) -> Iterator[msgspec.Raw]:
    """The top-level array's elements, raw (syntax checked by msgspec, UTF-8 by the codec)."""
    utf8 = codecs.getincrementaldecoder("utf-8")()

    def read(size: int) -> bytes:
        data = stream.read(size)
        if data.isascii() and not utf8.getstate()[0]:
            return data
        try:
            utf8.decode(data, final=not data)
        except UnicodeDecodeError:
            raise NotFast from None
        return data

    buffer = b""
    while not buffer.lstrip():
        data = read(read_bytes)
        if not data:
            raise NotFast
        buffer += data
    buffer = buffer.lstrip()
    if buffer[:1] != b"[":
        raise NotFast
    buffer = buffer[1:]
    while True:
        data = read(max(read_bytes, CHUNK_BYTES, len(buffer)))
        if not data:
            try:
                yield from _LIST_DECODER.decode(b"[" + buffer)
            except msgspec.DecodeError:
                raise NotFast from None
            return
        buffer += data
        cut = _CUT.match(buffer)
        if cut is None:
            continue
        close = buffer.rindex(b"}", 0, cut.end()) + 1
        try:
            elements = _LIST_DECODER.decode(b"[" + buffer[:close] + b"]")
        except msgspec.DecodeError:
            continue
        buffer = buffer[cut.end() :]
        yield from elements


class _Speech:
    """The union of word intervals (closed: touching intervals merge), as disjoint sorted components, built online;
    the same components, summed in the same order, as ``stats.speech_duration``'s sort."""

    def __init__(self) -> None:
        self.starts: array[float] = array("d")
        self.ends: array[float] = array("d")

    def add(self, starts: array[float], ends: array[float]) -> None:
        cs, ce = self.starts, self.ends
        for start, end in zip(starts, ends, strict=True):
            if start != start or end != end:
                continue
            if cs and start >= cs[-1]:
                if start > ce[-1]:
                    cs.append(start)
                    ce.append(end)
                elif end > ce[-1]:
                    ce[-1] = end
                continue
            if not cs:
                cs.append(start)
                ce.append(end)
                continue
            first = bisect_right(cs, start) - 1
            if first < 0 or start > ce[first]:
                first += 1
            last = first
            low, high = start, end
            while last < len(cs) and cs[last] <= high:
                low, high = min(low, cs[last]), max(high, ce[last])
                last += 1
            cs[first:last] = array("d", [low])
            ce[first:last] = array("d", [high])

    def total(self) -> float:
        total = 0.0
        for start, end in zip(self.starts, self.ends, strict=True):
            total += end - start
        return total


def _check_absolute(value: str | None) -> None:
    if value is None or (_RFC3339.fullmatch(value) and _valid_iso(value)):
        return
    try:
        _DATETIME.validate_python(value)
    except ValidationError:
        raise NotFast from None
    raise NotFast  # valid, but not the plain form whose value we know: the library decides


def _valid_iso(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


class FastReader:
    """Reads parts into :class:`ColumnPart` s and keeps the facts the event carries."""

    def __init__(self) -> None:
        self.parts: list[ColumnPart] = []
        self.runs = RecallRuns()
        self.speech = _Speech()
        self.word_count = 0
        self.unnamed_word_count = 0
        self.languages: dict[str, None] = {}
        self.participants: dict[bytes, tuple[Participant | None, Any]] = {}
        self.texts: dict[str, str] = {}

    def participant(self, raw: msgspec.Raw) -> tuple[Participant | None, Any]:
        key = bytes(raw)
        found = self.participants.get(key)
        if found is None:
            if key == b"null":
                found = (None, None)
            else:
                try:
                    found = (Participant.model_validate_json(key), msgspec.json.decode(key))
                except (ValidationError, msgspec.DecodeError):
                    raise NotFast from None
            self.participants[key] = found
        return found

    def add(self, raw: msgspec.Raw) -> None:
        try:
            part = _PART_DECODER.decode(raw)
        except msgspec.DecodeError:
            raise NotFast from None
        participant, participant_raw = self.participant(part.participant)
        words = part.words
        intern = self.texts.setdefault
        raw_texts = [intern(word.text, word.text) if len(word.text) < 24 else word.text for word in words]
        joined = " ".join(raw_texts)
        count = words_in(joined)
        self.word_count += count
        if participant is None or not participant.name:
            self.unnamed_word_count += count
        if part.language_code:
            self.languages.setdefault(part.language_code)
        for word in words:
            for stamp in (word.start_timestamp, word.end_timestamp):
                if stamp is not None and stamp.absolute is not None:
                    _check_absolute(stamp.absolute)
        try:
            starts = array(
                "d", [NAN if (t := w.start_timestamp) is None or (r := t.relative) is None else r for w in words]
            )
            ends = array(
                "d", [NAN if (t := w.end_timestamp) is None or (r := t.relative) is None else r for w in words]
            )
        except OverflowError:
            raise NotFast from None
        run = self.runs.run_for(participant_raw, words)
        if run is not None:
            first = next((w.start_timestamp for w in words if w.start_timestamp is not None), None)
            last = next((w.end_timestamp for w in reversed(words) if w.end_timestamp is not None), None)
            run.add_texts([joined], _stamp_dict(first), _stamp_dict(last))
        kept: list[int] | None = None
        simple = bool(words) and all(raw_texts) and joined.isprintable() and joined.count(" ") == len(words) - 1
        if simple:
            texts = raw_texts
        else:
            cleaned = [clean_text(text) for text in raw_texts]
            kept = [i for i, text in enumerate(cleaned) if text]
            texts = [cleaned[i] for i in kept]
            simple = not any(" " in text for text in texts)
            starts = array("d", [starts[i] for i in kept])
            ends = array("d", [ends[i] for i in kept])
        # A word cannot end before it starts (False when either is NaN).
        ends = array("d", [start if end < start else end for start, end in zip(starts, ends, strict=True)])
        self.speech.add(starts, ends)

        def absolute(index: int, which: str) -> datetime | None:
            word = words[kept[index] if kept is not None else index]
            stamp = word.start_timestamp if which == "start" else word.end_timestamp
            if stamp is None or stamp.absolute is None:
                return None
            return _DATETIME.validate_python(stamp.absolute)

        self.parts.append(ColumnPart(participant, part.language_code, texts, starts, ends, absolute, simple))


def _stamp_dict(stamp: _Stamp | None) -> dict[str, Any] | None:
    return None if stamp is None else {"relative": stamp.relative, "absolute": stamp.absolute}
