"""Model bases shared by the Recall contracts."""

from __future__ import annotations

from typing import Any, Final, TypeVar

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, ValidationError, model_serializer

from pipeline_common.recall.errors import InvalidRecallPayload

MAX_ERRORS_SHOWN: Final = 1


class RecallModel(BaseModel):
    """Something Recall sends or returns: fields Recall adds later are kept (``extra="allow"``), not rejected."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class PassThroughModel(RecallModel):
    """Options we forward to Recall as given: serialising emits exactly the keys that were set (typed or extra),
    never a default the caller did not write."""

    @model_serializer(mode="wrap")
    def _only_what_was_given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        given = set(self.model_fields_set) | set(self.model_extra or {})
        return {key: value for key, value in data.items() if key in given}


def describe_validation_error(error: ValidationError, what: str) -> str:
    """A short reason naming the field path, never echoing the input (it may be hostile or huge)."""
    errors = error.errors(include_url=False, include_input=False, include_context=False)
    if not errors:
        return f"invalid {what}"
    first = errors[0]
    location = format_location(first["loc"])
    message = first["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if first["type"] in {"json_invalid", "json_type"}:
        text = f"{what} is not valid JSON ({message})"
    elif not location and first["type"] == "model_type":
        text = f"{what} must be a JSON object"
    elif not location and first["type"] == "list_type":
        text = f"{what} must be a JSON array"
    else:
        text = f"{what}: {location}: {message}" if location else f"{what}: {message}"
    if len(errors) > MAX_ERRORS_SHOWN:
        text += f" (and {len(errors) - MAX_ERRORS_SHOWN} more)"
    return text[:500]


def format_location(loc: tuple[int | str, ...]) -> str:
    """``("data", "recording", "id")`` -> ``data.recording.id``; ``(3, "words", 0)`` -> ``[3].words[0]``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def invalid(error: ValidationError, what: str) -> InvalidRecallPayload:
    return InvalidRecallPayload(describe_validation_error(error, what))


def check_size(data: bytes | str, max_bytes: int | None, what: str) -> bytes:
    raw = data.encode("utf-8", errors="surrogatepass") if isinstance(data, str) else data
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise InvalidRecallPayload(f"{what} must be bytes or str")
    if max_bytes is not None and len(raw) > max_bytes:
        raise InvalidRecallPayload(f"{what} is {len(raw)} bytes, over the {max_bytes}-byte limit")
    return bytes(raw)


ModelT = TypeVar("ModelT", bound=BaseModel)


def parse_model(model: type[ModelT], data: bytes | str, max_bytes: int | None, what: str) -> ModelT:
    """``data`` (JSON) as ``model``, or :class:`InvalidRecallPayload` saying what is wrong with the ``what``."""
    raw = check_size(data, max_bytes, what)
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        raise invalid(error, what) from None
