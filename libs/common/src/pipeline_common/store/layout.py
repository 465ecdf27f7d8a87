"""Where one transcript's objects live in the store, and the ONE table of what they are (:data:`RENDITIONS`).

Per transcript::

    recordings/<recording_id>/transcripts/<transcript_id>/
        transcript.json     raw: the transcript JSON, byte for byte as Recall served it
        readable.json       speaker-grouped paragraphs
        transcript.txt      plain text
        transcript.vtt      WebVTT
        transcript.srt      SubRip
        provider_data.json  (optional) the provider's raw response
        manifest.json       sha256, size and content type of each object above; written last
    transcripts/<transcript_id>.json  index: which recording a transcript belongs to
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pipeline_common.store.base import check_id


@dataclass(frozen=True, slots=True)
class Rendition:
    """One object of a stored transcript: its name in the manifest, its file name and content type, and whether the
    fetcher renders it from the analysed transcript (the raw JSON and the provider's data are stored as downloaded)."""

    name: str
    filename: str
    content_type: str
    rendered: bool
    aliases: tuple[str, ...] = ()


#: manifest object name -> what it is. Every module that names a stored object (the fetcher's renderers and pages,
#: the keys below, the CLI) reads it here.
RENDITIONS: Final[dict[str, Rendition]] = {
    rendition.name: rendition
    for rendition in (
        Rendition("raw", "transcript.json", "application/json", rendered=False, aliases=("json",)),
        Rendition("readable", "readable.json", "application/json", rendered=True),
        Rendition("txt", "transcript.txt", "text/plain; charset=utf-8", rendered=True),
        Rendition("vtt", "transcript.vtt", "text/vtt; charset=utf-8", rendered=True),
        Rendition("srt", "transcript.srt", "application/x-subrip; charset=utf-8", rendered=True),
        Rendition("provider_data", "provider_data.json", "application/json", rendered=False),
    )
}
MANIFEST_FILE: Final = "manifest.json"


def rendition_for_format(wanted: str) -> Rendition | None:
    """The rendition a ``?format=`` value asks for (its name or an alias such as ``json``), or None."""
    for rendition in RENDITIONS.values():
        if wanted == rendition.name or wanted in rendition.aliases:
            return rendition
    return None


def format_names() -> list[str]:
    """Every ``?format=`` value :func:`rendition_for_format` accepts."""
    return sorted({name for rendition in RENDITIONS.values() for name in (rendition.name, *rendition.aliases)})


@dataclass(frozen=True, slots=True)
class TranscriptKeys:
    """Where one transcript's objects live in the store."""

    recording_id: str
    transcript_id: str

    def __post_init__(self) -> None:
        check_id(self.recording_id, "recording_id")
        check_id(self.transcript_id, "transcript_id")

    @property
    def prefix(self) -> str:
        return f"recordings/{self.recording_id}/transcripts/{self.transcript_id}/"

    def key(self, name: str) -> str:
        return self.prefix + name

    def object(self, name: str) -> str:
        """The key of the rendition ``name`` (a key of :data:`RENDITIONS`)."""
        return self.key(RENDITIONS[name].filename)

    @property
    def raw(self) -> str:
        return self.object("raw")

    @property
    def provider_data(self) -> str:
        return self.object("provider_data")

    @property
    def manifest(self) -> str:
        return self.key(MANIFEST_FILE)

    @staticmethod
    def index(transcript_id: str) -> str:
        return f"transcripts/{check_id(transcript_id, 'transcript_id')}.json"
