"""Test oracle: a line-by-line Python port of Recall's ``convert_to_readable_transcript`` (TypeScript, in Recall's
``bot_async_transcription`` sample, which Recall's quickstarts link to). Kept deliberately literal, not clever: the
pipeline's ``readable.json`` must equal what this returns, on every transcript shape.

Porting notes: ``x?.y ?? null`` is ``None`` when missing; JavaScript truthiness (``!participant?.name``: null, missing
or ""; ``words.find(w => w?.start_timestamp)``: any object counts); ``String.prototype.trim`` strips JavaScript's
whitespace set; ``Date.parse`` has millisecond precision and gives NaN (serialised as null) for what it cannot read.
The sample pushes the first entry of a run and then appends to its ``words`` (mutating its input); this port copies.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

JS_WHITESPACE = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)


def _truthy(value: Any) -> bool:
    return value is not None and value is not False and value != "" and value != 0


def _date_parse_ms(text: str) -> float | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None  # the sample's absolute timestamps always carry a zone; treat others as unreadable
    return float((moment - EPOCH) // timedelta(milliseconds=1))  # Date.parse: whole milliseconds


def convert_to_readable_transcript(transcript_parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keepers: list[dict[str, Any]] = []
    for entry in transcript_parts:
        participant = entry.get("participant") if isinstance(entry, dict) else None
        words = entry.get("words") if isinstance(entry, dict) and isinstance(entry.get("words"), list) else []
        if not _truthy((participant or {}).get("name")) or len(words) == 0:
            continue
        key = participant["id"] if participant.get("id") is not None else participant.get("name")
        last = keepers[-1] if keepers else None
        last_key = None
        if last is not None:
            lp = last["participant"]
            last_key = lp["id"] if lp.get("id") is not None else lp.get("name")
        if last is not None and type(key) is type(last_key) and key == last_key:
            last["words"].extend(words)
        else:
            keepers.append({"participant": participant, "words": list(words)})

    readable = []
    for kept in keepers:
        participant, words = kept["participant"], kept["words"]
        paragraph = " ".join(w["text"] for w in words).strip(JS_WHITESPACE)
        if not paragraph:
            continue
        # JavaScript: any object is truthy, even {}; only null and undefined are not.
        first = next((w for w in words if isinstance(w, dict) and w.get("start_timestamp") is not None), None)
        last = next((w for w in reversed(words) if isinstance(w, dict) and w.get("end_timestamp") is not None), None)
        start_relative = ((first or {}).get("start_timestamp") or {}).get("relative")
        start_absolute = ((first or {}).get("start_timestamp") or {}).get("absolute")
        end_relative = ((last or {}).get("end_timestamp") or {}).get("relative")
        end_absolute = ((last or {}).get("end_timestamp") or {}).get("absolute")
        duration: float | None
        if start_relative is not None and end_relative is not None:
            duration = end_relative - start_relative
        elif _truthy(start_absolute) and _truthy(end_absolute):
            start_ms, end_ms = _date_parse_ms(start_absolute), _date_parse_ms(end_absolute)
            duration = None if start_ms is None or end_ms is None else (end_ms - start_ms) / 1000
        else:
            duration = None
        readable.append(
            {
                "speaker": participant["name"],
                "paragraph": paragraph,
                "start_timestamp": {"relative": start_relative, "absolute": start_absolute},
                "end_timestamp": {"relative": end_relative, "absolute": end_absolute},
                "duration_seconds": duration,
            }
        )
    return readable
