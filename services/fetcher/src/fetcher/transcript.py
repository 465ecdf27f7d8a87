"""Validate a downloaded transcript and render its readable forms, in bounded memory.

``parse_transcript`` (the library's validator) holds the whole transcript as pydantic models: for a 50 MB transcript
that is about a gigabyte. :func:`analyse` reads the file in chunks with :mod:`fetcher.reader` (msgspec structs, the
words held column-wise). Whatever that fast path declines is read here the library's way: the file is split into its
parts with the standard library's JSON scanner and each part is validated against the same model
(:class:`TranscriptPart`, in JSON mode, so the rules and the error messages are exactly the library's), then kept in
a compact form that the renderers of :mod:`pipeline_common.recall.render` accept. A unit test checks that every
rendition is identical to rendering the library's parse.

The transcript is grouped into paragraphs and subtitle cues once, in :func:`analyse`: the four renditions are
formatted from those, not each regrouped from the parts; :func:`write_renditions` streams them into files.
"""

from __future__ import annotations

import codecs
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO, Final, cast

from pydantic import ValidationError

from fetcher.reader import FastReader, NotFast, raw_parts
from pipeline_common.contracts import Participant as ContractParticipant
from pipeline_common.recall import render
from pipeline_common.recall._base import describe_validation_error
from pipeline_common.recall._text import ms as _ms
from pipeline_common.recall.errors import InvalidRecallPayload
from pipeline_common.recall.models import Participant, TranscriptPart
from pipeline_common.recall.readable import paragraph_json, write_readable_elements

READ_BYTES: Final = 1024 * 1024
_WHITESPACE: Final = " \t\n\r"
# A JSONDecodeError this close to the end of the buffer may just mean the buffer ends mid-value: read more.
_TRUNCATION_MARGIN: Final = 16


class _Stamp:
    __slots__ = ("absolute",)

    def __init__(self, absolute: datetime | None) -> None:
        self.absolute = absolute


_NO_STAMP: Final = _Stamp(None)


class CompactWord:
    """What the renderers read of a word: its text, relative start/end and absolute timestamps."""

    __slots__ = ("end", "end_timestamp", "start", "start_timestamp", "text")

    def __init__(self, text: str, start: float | None, end: float | None, start_abs: _Stamp, end_abs: _Stamp) -> None:
        self.text = text
        self.start = start
        self.end = end
        self.start_timestamp = start_abs
        self.end_timestamp = end_abs


class CompactPart:
    __slots__ = ("language_code", "participant", "words")

    def __init__(self, participant: Participant | None, language_code: str | None, words: list[CompactWord]) -> None:
        self.participant = participant
        self.language_code = language_code
        self.words = words


@dataclass
class _Interner:
    texts: dict[str, str] = field(default_factory=dict)
    participants: dict[str, Participant] = field(default_factory=dict)

    def text(self, value: str) -> str:
        if len(value) > 40:
            return value
        return self.texts.setdefault(value, value)

    def participant(self, value: Participant | None) -> Participant | None:
        if value is None:
            return None
        return self.participants.setdefault(value.model_dump_json(), value)


def _stamp(timestamp: Any) -> _Stamp:
    if timestamp is None or timestamp.absolute is None:
        return _NO_STAMP
    return _Stamp(timestamp.absolute)


def compact(part: TranscriptPart, interner: _Interner) -> CompactPart:
    words = [
        CompactWord(
            interner.text(word.text), word.start, word.end, _stamp(word.start_timestamp), _stamp(word.end_timestamp)
        )
        for word in part.words
    ]
    return CompactPart(interner.participant(part.participant), part.language_code, words)


class _ArrayReader:
    """The elements of a top-level JSON array in a UTF-8 byte stream, one raw JSON text at a time."""

    def __init__(self, stream: BinaryIO, read_bytes: int = READ_BYTES) -> None:
        self._stream = stream
        self._read_bytes = read_bytes
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._scanner = json.JSONDecoder()
        self._buffer = ""
        self._pos = 0
        self._eof = False

    def _more(self, at_least: int) -> bool:
        """Read at least ``at_least`` more bytes (or to the end); False at the end of the stream."""
        if self._eof:
            return False
        if self._pos:
            self._buffer = self._buffer[self._pos :]
            self._pos = 0
        wanted = max(self._read_bytes, at_least)
        data = self._stream.read(wanted)
        try:
            text = self._decoder.decode(data, final=not data)
        except UnicodeDecodeError:
            raise InvalidRecallPayload("transcript is not valid UTF-8") from None
        if not data:
            self._eof = True
        self._buffer += text
        return bool(data) or bool(text)

    def _next_char(self) -> str | None:
        """The next non-whitespace character (not consumed), or None at the end of the stream."""
        while True:
            while self._pos < len(self._buffer) and self._buffer[self._pos] in _WHITESPACE:
                self._pos += 1
            if self._pos < len(self._buffer):
                return self._buffer[self._pos]
            if not self._more(0):
                return None

    def _expect(self, allowed: str, what: str) -> str:
        char = self._next_char()
        if char is None or char not in allowed:
            found = "the end" if char is None else repr(char)
            raise InvalidRecallPayload(f"transcript is not valid JSON (expected {what}, found {found})")
        self._pos += 1
        return char

    def __iter__(self) -> Iterator[str]:
        char = self._next_char()
        if char != "[":
            if char is None:
                raise InvalidRecallPayload("transcript is not valid JSON (empty)")
            if char == "{":
                raise InvalidRecallPayload("transcript must be a JSON array")
            raise InvalidRecallPayload("transcript is not valid JSON (expected '[')")
        self._pos += 1
        if self._next_char() == "]":
            self._pos += 1
        else:
            index = 0
            while True:
                yield self._element(index)
                index += 1
                if self._expect(",]", "',' or ']'") == "]":
                    break
        if self._next_char() is not None:
            raise InvalidRecallPayload("transcript is not valid JSON (extra data after the array)")

    def _element(self, index: int) -> str:
        char = self._next_char()
        if char is None:
            raise InvalidRecallPayload("transcript is not valid JSON (ends inside the array)")
        if char == "]":
            raise InvalidRecallPayload("transcript is not valid JSON (a ',' right before ']')")
        if char != "{":
            raise InvalidRecallPayload(f"transcript: [{index}]: Input should be an object")
        while True:
            try:
                _, end = self._scanner.raw_decode(self._buffer, self._pos)
            except json.JSONDecodeError as error:
                truncated = error.msg.startswith("Unterminated string") or (
                    error.pos >= len(self._buffer) - _TRUNCATION_MARGIN
                )
                # Grow geometrically, so a part far larger than one read is not re-scanned quadratically.
                if truncated and self._more(len(self._buffer) - self._pos):
                    continue
                raise InvalidRecallPayload(f"transcript is not valid JSON ({error.msg} in part [{index}])") from None
            text = self._buffer[self._pos : end]
            self._pos = end
            return text


@dataclass
class Analysis:
    """A validated transcript in compact form, with the facts the ``TranscriptReady`` event carries."""

    parts: list[CompactPart]
    word_count: int
    language_codes: list[str]
    participants: list[ContractParticipant]
    speech_duration_seconds: float
    #: ``render.readable(parts)``, computed once for the readable and txt renditions; without their per-word
    #: tokens (only the cues need those), so the paragraphs hold little more than their text.
    paragraphs: list[render.Paragraph]
    #: ``render.cues(parts)``, computed once for the vtt and srt renditions.
    cues: list[render.Cue]
    #: ``readable.json``: Recall's own readable form, from the parts as downloaded (absolute times unchanged); each
    #: paragraph already formatted (``readable.paragraph_json``: text is smaller than its dicts).
    readable: list[str] = field(default_factory=list)
    unnamed_word_count: int = 0

    def renderable(self) -> list[TranscriptPart]:
        # The renderers read only what the compact classes hold (see the module docstring).
        return cast(list[TranscriptPart], self.parts)


def read_parts(stream: BinaryIO, *, read_bytes: int = READ_BYTES) -> Iterator[CompactPart]:
    """Validate each part of the transcript in ``stream``; InvalidRecallPayload (with the part's index) otherwise."""
    interner = _Interner()
    for index, text in enumerate(_ArrayReader(stream, read_bytes)):
        try:
            part = TranscriptPart.model_validate_json(text)
        except ValidationError as error:
            raise InvalidRecallPayload(describe_validation_error(error, f"transcript part [{index}]")) from None
        yield compact(part, interner)


def analyse(path: Path, *, read_bytes: int = READ_BYTES) -> Analysis:
    """Validate the transcript stored at ``path`` and compute its facts (blocking: run it in a thread)."""
    try:
        with path.open("rb") as stream:
            fast = FastReader()
            for raw in raw_parts(stream, read_bytes):
                fast.add(raw)
    except NotFast:
        return _analyse_with_models(path, read_bytes)
    speech_duration = _ms(fast.speech.total())
    fast.speech = None  # type: ignore[assignment]  # its arrays are not needed while grouping (the memory peak)
    renderable = cast(list[TranscriptPart], fast.parts)
    paragraphs = render.readable(renderable)
    cues = render.paragraph_cues(paragraphs)
    return Analysis(
        parts=[],
        word_count=fast.word_count,
        language_codes=list(fast.languages),
        participants=[
            ContractParticipant(id=p.id, name=p.name, is_host=p.is_host, platform=p.platform, email=p.email)
            for p in render.speakers(cast(list[TranscriptPart], fast.parts))
        ],
        speech_duration_seconds=speech_duration,
        paragraphs=[replace(paragraph, tokens=()) for paragraph in paragraphs],
        cues=cues,
        readable=fast.runs.formatted(),
        unnamed_word_count=fast.unnamed_word_count,
    )


def _analyse_with_models(path: Path, read_bytes: int) -> Analysis:
    """The library's path: each part validated by the pydantic model (the verdict and reason for anything the fast
    path declines)."""
    with path.open("rb") as stream:
        parts = list(read_parts(stream, read_bytes=read_bytes))
    with path.open("rb") as stream:
        recall_form = render.recall_readable(json.loads(text) for text in _ArrayReader(stream, read_bytes))
    renderable = cast(list[TranscriptPart], parts)
    paragraphs = render.readable(renderable)
    cues = render.paragraph_cues(paragraphs)
    return Analysis(
        parts=parts,
        word_count=render.word_count(renderable),
        language_codes=render.language_codes(renderable),
        participants=[
            ContractParticipant(id=p.id, name=p.name, is_host=p.is_host, platform=p.platform, email=p.email)
            for p in render.speakers(renderable)
        ],
        speech_duration_seconds=render.speech_duration(renderable),
        paragraphs=[replace(paragraph, tokens=()) for paragraph in paragraphs],
        cues=cues,
        readable=[paragraph_json(paragraph) for paragraph in recall_form],
        unnamed_word_count=render.unnamed_word_count(renderable),
    )


#: rendition name -> writer, handing the rendition to ``write`` in pieces; what each one is (file name, content type)
#: is the store's one table, :data:`pipeline_common.store.RENDITIONS`. Each is byte for byte the library's
#: ``render.render_readable_json`` / ``render_text`` / ``render_vtt`` / ``render_srt`` of the parts.
WRITERS: Final[dict[str, Callable[[Analysis, Callable[[str], object]], object]]] = {
    "readable": lambda analysis, write: write_readable_elements(analysis.readable, write),
    "txt": lambda analysis, write: _each(render.iter_text(analysis.paragraphs), write),
    "vtt": lambda analysis, write: _each(render.iter_vtt(analysis.cues), write),
    "srt": lambda analysis, write: _each(render.iter_srt(analysis.cues), write),
}


def _each(pieces: Iterable[str], write: Callable[[str], object]) -> None:
    """Hand ``pieces`` to ``write`` a few thousand at a time (one call per piece costs more than the piece)."""
    remaining = iter(pieces)
    while batch := list(islice(remaining, 4096)):
        write("".join(batch))


_WRITE_BYTES: Final = 256 * 1024


class _HashingWriter:
    """Text pieces out as UTF-8, in batches of about ``_WRITE_BYTES``, hashed as they go."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()
        self.pieces: list[str] = []
        self.pending = 0

    def write(self, text: str) -> None:
        self.pieces.append(text)
        self.pending += len(text)
        if self.pending >= _WRITE_BYTES:
            self.flush()

    def flush(self) -> None:
        data = "".join(self.pieces).encode("utf-8")
        self.pieces, self.pending = [], 0
        self.digest.update(data)
        self.handle.write(data)


def write_renditions(analysis: Analysis, directory: Path, stem: str) -> dict[str, tuple[Path, str]]:
    """Every rendition into a file of its own in ``directory`` (the store's staging area), hashed while written:
    name -> (path, sha256). Blocking: run it in a thread. Nothing is left behind on failure."""
    written: dict[str, tuple[Path, str]] = {}
    try:
        for name, writer in WRITERS.items():
            path = directory / f"{stem}-{name}.tmp"
            written[name] = (path, "")
            with path.open("wb") as handle:
                out = _HashingWriter(handle)
                writer(analysis, out.write)
                out.flush()
            written[name] = (path, out.digest.hexdigest())
    except BaseException:
        for path, _ in written.values():
            path.unlink(missing_ok=True)
        raise
    return written


def render_one(analysis: Analysis, name: str) -> bytes:
    """One rendition whole, as bytes: what :func:`write_renditions` streams into its file."""
    pieces: list[str] = []
    WRITERS[name](analysis, pieces.append)
    return "".join(pieces).encode("utf-8")
