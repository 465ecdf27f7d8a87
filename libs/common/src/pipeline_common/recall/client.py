"""Async client for the Recall API subset the pipeline uses (httpx, pooled, a timeout on every call).

Every failure is a typed :class:`~pipeline_common.recall.errors.RecallApiError` whose ``kind`` says whether to retry,
page an operator, or give up; the client itself never retries (services decide, without blocking a partition).
The API key goes only into the ``Authorization`` header of API calls: never to a download URL's host, never into a
log line, exception or repr. Download URLs are pre-signed, so their query strings are never logged either.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import ssl
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self, TypeVar

import httpx
from pydantic import SecretStr, ValidationError

from pipeline_common.logging import get_logger
from pipeline_common.recall._aiohttp import AiohttpTransport
from pipeline_common.recall._base import describe_validation_error
from pipeline_common.recall._http import (
    error_detail,
    parse_retry_after,
    read_capped,
    safe_url,
    scrub,
    transport_error,
)
from pipeline_common.recall.downloads import download_error, open_following_redirects
from pipeline_common.recall.errors import (
    InvalidRecallPayload,
    RecallApiError,
    RecallDownloadTooLarge,
    RecallInvalidArgument,
    RecallInvalidResponse,
    RecallOperatorError,
    RecallRequestTimeout,
    RecallTranscriptLimitReached,
    error_for_status,
)
from pipeline_common.recall.limit import make_room
from pipeline_common.recall.models import (
    API_RESPONSE_MAX_BYTES,
    Diarization,
    ProviderConfig,
    RecordingArtifact,
    TranscriptArtifact,
    check_metadata,
    parse_recording_artifact,
    parse_transcript_artifact,
    parse_transcript_page,
)
from pipeline_common.recall.pacing import Operation, RecallPacer
from pipeline_common.recall.paging import MAX_PAGES, ListPacer, walk_pages
from pipeline_common.settings import RecallApiSettings, RecallRegion

__all__ = ["MAX_PAGES", "RecallClient", "parse_retry_after", "safe_url"]

log = get_logger("pipeline_common.recall.client")
T = TypeVar("T")

_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_IDEMPOTENCY_KEY: Final = re.compile(r"^[\x21-\x7e]{1,255}$")
_DETAIL_CHARS: Final = 300
_ERROR_BODY_BYTES: Final = 4096
MAX_RETRY_AFTER_SECONDS: Final = 24 * 3600.0
DEFAULT_USER_AGENT: Final = "recall-kafka-pipeline/0.1 (+httpx)"


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    """Built once per process (loading the CA bundle takes tens of milliseconds) and shared by every client."""
    return httpx.create_ssl_context()


def _check_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise RecallInvalidArgument(f"{what} must be 1-128 letters, digits, '-' or '_'")
    return value


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    headers: httpx.Headers
    body: bytes
    method: str
    path: str


class RecallClient:
    """``async with RecallClient(api_key=..., base_url=...) as recall: await recall.retrieve_transcript(id)``."""

    def __init__(
        self,
        *,
        api_key: SecretStr | str,
        base_url: str | None = None,
        region: RecallRegion | str | None = None,
        timeout: float = 30.0,
        download_timeout: float = 300.0,
        max_connections: int = 20,
        download_hosts: Collection[str] | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        transport: httpx.AsyncBaseTransport | None = None,
        pacer: RecallPacer | None = None,
        delete_own_transcripts_at_limit: bool = False,
    ) -> None:
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        if not key or not key.strip() or any(ch in key for ch in "\r\n"):
            raise ValueError("a Recall API key is required (RECALL_API_KEY)")
        if base_url is None:
            base_url = RecallRegion(region or RecallRegion.US_WEST_2).base_url
        if not base_url.startswith(("https://", "http://")):
            raise ValueError("base_url must be an http(s) URL, e.g. https://us-west-2.recall.ai")
        self.base_url = base_url.rstrip("/")
        self._key = SecretStr(key.strip())
        self._download_hosts = tuple(download_hosts) if download_hosts is not None else None
        self._download_timeout = download_timeout
        self._pacer = pacer
        self._make_room_at_limit = delete_own_transcripts_at_limit
        common: dict[str, Any] = {"follow_redirects": False, "trust_env": False}
        ssl_context = _default_ssl_context()  # loads the CA bundle: once for both clients
        # Both clients send through aiohttp under httpx (a tenth of httpcore's CPU per call, see _aiohttp.py).
        self._api = httpx.AsyncClient(
            transport=transport or AiohttpTransport(ssl_context=ssl_context, max_connections=max_connections),
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout),
            headers={
                "Authorization": f"Token {self._key.get_secret_value()}",
                "Accept": "application/json",
                "User-Agent": user_agent,
            },
            **common,
        )
        # Downloads go to pre-signed URLs on another host: no Authorization header, ever.
        self._downloads = httpx.AsyncClient(
            timeout=httpx.Timeout(min(timeout, download_timeout)),
            headers={"User-Agent": user_agent},
            transport=transport
            or AiohttpTransport(ssl_context=ssl_context, max_connections=max_connections, retry_reused_connection=True),
            **common,
        )

    @classmethod
    def from_settings(cls, settings: RecallApiSettings, **options: Any) -> RecallClient:
        if settings.recall_api_key is None:
            raise ValueError("RECALL_API_KEY is not set")
        options.setdefault("pacer", RecallPacer.from_settings(settings))
        options.setdefault("delete_own_transcripts_at_limit", settings.recall_delete_own_transcripts_at_limit)
        return cls(
            api_key=settings.recall_api_key,
            base_url=settings.recall_base_url,
            timeout=settings.recall_api_timeout_seconds,
            **options,
        )

    def __repr__(self) -> str:
        return f"RecallClient(base_url={self.base_url!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._api.aclose()
        await self._downloads.aclose()

    # --- API calls ------------------------------------------------------------------------------------------------

    async def create_transcript(
        self,
        recording_id: str,
        provider: ProviderConfig | Mapping[str, Any],
        diarization: Diarization | Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        *,
        bot_id: str | None = None,
    ) -> TranscriptArtifact:
        """Create Async Transcript. Pass an ``idempotency_key`` so a retry after a lost response cannot pay twice.
        Paced per ``bot_id`` (Recall's limit is per bot); without one, per recording."""
        _check_id(recording_id, "recording_id")
        try:
            config = provider if isinstance(provider, ProviderConfig) else ProviderConfig.model_validate(provider)
            body: dict[str, Any] = {"provider": config.to_request()}
            if diarization is not None:
                body["diarization"] = Diarization.model_validate(diarization).model_dump(mode="json")
        except ValidationError as error:
            raise RecallInvalidArgument(describe_validation_error(error, "provider configuration")) from None
        if metadata is not None:
            try:
                body["metadata"] = check_metadata(metadata)
            except ValueError as error:
                raise RecallInvalidArgument(str(error)) from None
        headers = {"Content-Type": "application/json"}
        if idempotency_key is not None:
            if not _IDEMPOTENCY_KEY.match(idempotency_key):
                raise RecallInvalidArgument("idempotency_key must be 1-255 printable ASCII characters, no spaces")
            headers["Idempotency-Key"] = idempotency_key
        try:
            content = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
        except (TypeError, ValueError):
            raise RecallInvalidArgument("metadata must be JSON-serialisable") from None
        path = f"/api/v1/recording/{recording_id}/create_transcript/"
        pace = (Operation.CREATE, bot_id or recording_id)
        try:
            response = await self._request("POST", path, content=content, headers=headers, pace=pace)
        except RecallTranscriptLimitReached:
            if not (self._make_room_at_limit and metadata and await make_room(self, recording_id, metadata)):
                raise
            # A new key: Recall replays the stored 4xx for the old one. Deterministic, so a retry of this very
            # create (after a lost response) is still absorbed.
            if idempotency_key is not None:
                headers["Idempotency-Key"] = f"{idempotency_key}-after-limit"[:255]
            response = await self._request("POST", path, content=content, headers=headers, pace=pace)
        return self._parse(response, parse_transcript_artifact)

    async def retrieve_transcript(self, transcript_id: str) -> TranscriptArtifact:
        _check_id(transcript_id, "transcript_id")
        response = await self._request("GET", f"/api/v1/transcript/{transcript_id}/", pace=(Operation.RETRIEVE, None))
        return self._parse(response, parse_transcript_artifact)

    async def iter_transcripts(
        self, *, recording_id: str | None = None, list_pacer: ListPacer | None = None, **filters: str
    ) -> AsyncIterator[TranscriptArtifact]:
        """List Transcripts, page by page (:func:`~pipeline_common.recall.paging.walk_pages`: follows ``next`` only
        to the API's own origin). With a ``list_pacer`` (a long walk) that paces the calls instead of the client's."""
        params = dict(filters)
        if recording_id is not None:
            params["recording_id"] = _check_id(recording_id, "recording_id")
        pages = walk_pages(self, "/api/v1/transcript/", params, parse_transcript_page, pacer=list_pacer)
        async for page in pages:
            for item in page.results:
                yield item

    async def list_transcripts(self, *, recording_id: str | None = None, **filters: str) -> list[TranscriptArtifact]:
        return [item async for item in self.iter_transcripts(recording_id=recording_id, list_pacer=None, **filters)]

    async def delete_transcript(self, transcript_id: str) -> None:
        _check_id(transcript_id, "transcript_id")
        await self._request("DELETE", f"/api/v1/transcript/{transcript_id}/", pace=(Operation.DELETE, None))

    async def retrieve_recording(self, recording_id: str) -> RecordingArtifact:
        _check_id(recording_id, "recording_id")
        response = await self._request("GET", f"/api/v1/recording/{recording_id}/")
        return self._parse(response, parse_recording_artifact)

    # --- downloads ------------------------------------------------------------------------------------------------

    async def stream_download(self, url: str, max_bytes: int) -> AsyncIterator[bytes]:
        """Yield the (decoded) body of a pre-signed URL in chunks; RecallDownloadTooLarge past ``max_bytes``.

        The whole download, not just each read, must finish within ``download_timeout`` (time spent by the caller
        between chunks counts too). Stopping early? Use ``contextlib.aclosing`` so the connection is released."""
        path = safe_url(url)
        received = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._download_timeout
        try:
            stream, response = await open_following_redirects(self._downloads, url, self._download_hosts, deadline)
            path = safe_url(str(response.url))
            try:
                if response.status_code >= 300:
                    async with asyncio.timeout_at(deadline):
                        head = await read_capped(response, _ERROR_BODY_BYTES)
                    raise self._download_error(response, head, path)
                declared = response.headers.get("Content-Length")
                if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                    raise RecallDownloadTooLarge(
                        f"Content-Length {declared} is over the {max_bytes}-byte limit", method="GET", path=path
                    )
                chunks = response.aiter_bytes()
                while True:
                    try:
                        async with asyncio.timeout_at(deadline):
                            chunk = await anext(chunks)
                    except StopAsyncIteration:
                        break
                    received += len(chunk)
                    if received > max_bytes:
                        raise RecallDownloadTooLarge(
                            f"body is over the {max_bytes}-byte limit", method="GET", path=path
                        )
                    yield chunk
            finally:
                await stream.__aexit__(None, None, None)
        except TimeoutError:
            raise RecallRequestTimeout(
                f"download did not finish within {self._download_timeout:g}s", method="GET", path=path
            ) from None
        except httpx.HTTPError as error:
            raise transport_error(error, "GET", path) from error
        log.debug("recall download", path=path, bytes=received)

    async def download(self, url: str, max_bytes: int) -> bytes:
        """The whole body of a pre-signed URL (e.g. ``data.download_url``), at most ``max_bytes``."""
        chunks = [chunk async for chunk in self.stream_download(url, max_bytes)]
        return b"".join(chunks)

    # --- plumbing -------------------------------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        pace: tuple[Operation, str | None] | None = None,
    ) -> _Reply:
        path = safe_url(url) if url.startswith(("http://", "https://")) else url
        if pace is not None and self._pacer is not None:
            await self._pacer.wait(*pace)
        started = time.monotonic()
        request = self._api.build_request(method, url, content=content, headers=headers, params=params)
        try:
            response = await self._api.send(request, stream=True)
            try:
                body = await read_capped(response, API_RESPONSE_MAX_BYTES + 1)
            finally:
                await response.aclose()
        except httpx.HTTPError as error:
            failure = transport_error(error, method, path)
            log.warning("recall call failed", method=method, path=path, error=type(failure).__name__)
            raise failure from error
        reply = _Reply(status=response.status_code, headers=response.headers, body=body, method=method, path=path)
        elapsed_ms = round((time.monotonic() - started) * 1000)
        if 200 <= reply.status < 300:
            log.debug("recall call", method=method, path=path, status=reply.status, elapsed_ms=elapsed_ms)
            return reply
        failure = self._status_error(reply)
        log.info(
            "recall call rejected",
            method=method,
            path=path,
            status=reply.status,
            error=type(failure).__name__,
            kind=failure.kind.value,
            retry_after=failure.retry_after,
            elapsed_ms=elapsed_ms,
        )
        raise failure

    def _parse(self, reply: _Reply, parser: Callable[[bytes], T]) -> T:
        if len(reply.body) > API_RESPONSE_MAX_BYTES:
            raise RecallInvalidResponse(
                "response body too large", status=reply.status, method=reply.method, path=reply.path
            )
        try:
            return parser(reply.body)
        except InvalidRecallPayload as error:
            raise RecallInvalidResponse(
                "response is not the documented shape",
                status=reply.status,
                method=reply.method,
                path=reply.path,
                detail=self._scrub(str(error)),
            ) from None

    def _scrub(self, text: str) -> str:
        return scrub(text, self._key.get_secret_value(), _DETAIL_CHARS)

    def _detail(self, content: bytes) -> str | None:
        return self._scrub(error_detail(content[:_ERROR_BODY_BYTES])) or None

    def _status_error(self, reply: _Reply) -> RecallApiError:
        status, method, path = reply.status, reply.method, reply.path
        retry_after = parse_retry_after(reply.headers.get("Retry-After"))
        if 300 <= status < 400:
            return RecallOperatorError(
                "unexpected redirect: check RECALL_API_BASE_URL (scheme, host, trailing slash)",
                status=status,
                method=method,
                path=path,
            )
        return error_for_status(
            status, method=method, path=path, detail=self._detail(reply.body), retry_after=retry_after
        )

    def _download_error(self, response: httpx.Response, body: bytes, path: str) -> RecallApiError:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return download_error(response.status_code, retry_after, self._detail(body), path)
