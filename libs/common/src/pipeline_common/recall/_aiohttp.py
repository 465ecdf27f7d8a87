"""An httpx transport that sends through aiohttp: the Recall client keeps httpx's API (requests, responses, the
exceptions :func:`~pipeline_common.recall._http.transport_error` classifies), and each call costs a tenth of the CPU.

httpcore's pool polls every pooled connection's socket for every request it places and runs on anyio's stream
wrappers: about 2 ms of CPU per keep-alive call here, against 0.25 ms for aiohttp's (event-driven) pool, which made the
Recall call a third of the transcriber's CPU (``bench/FINDINGS.md``, section 2). aiohttp's failures are raised as the
httpx exceptions that mean the same thing: not connected (``ConnectError``: the request was not sent), a timeout, or
the connection lost after the request went out (``RemoteProtocolError``/``ReadError``: it may have been processed).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from typing import Final

import aiohttp
import httpx
from yarl import URL

CHUNK_BYTES: Final = 64 * 1024
# aiohttp frames the body itself (we always send bytes); the rest of httpx's headers go as they are.
_FRAMING: Final = frozenset({"content-length", "transfer-encoding", "connection"})


def _httpx_error(error: BaseException, request: httpx.Request) -> httpx.TransportError:
    """The httpx exception that means what ``error`` (aiohttp's, or a timeout) means."""
    text = f"{type(error).__name__}: {error}"
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(text, request=request)
    if isinstance(error, aiohttp.ServerTimeoutError | TimeoutError):
        return httpx.ReadTimeout(text, request=request)
    if isinstance(error, aiohttp.ClientConnectorError):
        return httpx.ConnectError(text, request=request)
    if isinstance(error, aiohttp.ServerDisconnectedError | aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(text, request=request)
    if isinstance(error, aiohttp.ClientPayloadError | aiohttp.ClientOSError):
        return httpx.ReadError(text, request=request)
    return httpx.TransportError(text, request=request)


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(CHUNK_BYTES):
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as error:
            raise _httpx_error(error, self._request) from error

    async def aclose(self) -> None:
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session (at most ``max_connections`` connections), made in the event loop that first uses it."""

    def __init__(
        self, *, ssl_context: ssl.SSLContext, max_connections: int, retry_reused_connection: bool = False
    ) -> None:
        self._ssl = ssl_context
        self._max_connections = max_connections
        self._retry_reused = retry_reused_connection
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _current_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            # A session belongs to its loop: a client used from another loop (a CLI's second asyncio.run) gets its own.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections, ssl=self._ssl),
                trust_env=False,
                auto_decompress=False,  # httpx decodes Content-Encoding itself
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
            )
            # API calls are never retried (the services decide): aiohttp would repeat an idempotent request once when
            # a reused connection turns out closed, hiding a lost response (its own test client switches it off alike).
            # A download's GET of a pre-signed URL has no effect to hide: there the repeat is wanted, as httpcore's
            # check of a pooled connection before reusing it (a server may close an idle connection unannounced).
            self._session._retry_connection = self._retry_reused
            self._loop = loop
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._current_session()
        timeout = request.extensions.get("timeout", {})
        limits = aiohttp.ClientTimeout(
            total=None, connect=timeout.get("pool"), sock_connect=timeout.get("connect"), sock_read=timeout.get("read")
        )
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in request.headers.raw
            if name.lower().decode("latin-1") not in _FRAMING
        ]
        body = await request.aread()
        try:
            response = await session.request(
                request.method,
                URL(str(request.url), encoded=True),  # as sent: a pre-signed URL's query must not be re-quoted
                data=body or None,
                headers=headers,
                timeout=limits,
                allow_redirects=False,
            )
        except (aiohttp.ClientError, TimeoutError) as error:
            raise _httpx_error(error, request) from error
        return httpx.Response(
            status_code=response.status,
            headers=[(name.decode("latin-1"), value.decode("latin-1")) for name, value in response.raw_headers],
            stream=_Body(response, request),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": (response.reason or "").encode("latin-1")},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
