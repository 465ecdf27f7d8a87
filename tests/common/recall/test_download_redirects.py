"""Issue 14 item 4: download URLs on Recall's API host may redirect to storage. Follow them, checking every hop."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import pytest

from pipeline_common.recall.client import RecallClient
from pipeline_common.recall.errors import RecallDownloadNotAllowed
from tests.support.http import raw_server

pytestmark = pytest.mark.integration

BODY = b'[{"participant": null, "words": []}]'


@dataclass
class Seen:
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)


def redirecting_server(seen: Seen) -> contextlib.AbstractAsyncContextManager[str]:
    """``/hop/N?token=...`` redirects N times (relative Location), ``/away`` to a foreign host, ``/loop`` to itself,
    ``/file`` to a file: URL; ``/ok`` answers the transcript."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        request_line, *header_lines = head.strip().split("\r\n")
        target = request_line.split(" ")[1]
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in header_lines)}
        seen.requests.append((target, headers))
        path = target.split("?", 1)[0]
        if path.startswith("/hop/"):
            left = int(path.removeprefix("/hop/"))
            location = f"/hop/{left - 1}?token=t{left}" if left > 1 else "/ok?X-Amz-Signature=s"
            status, extra, body = "302 Found", f"Location: {location}\r\n", b""
        elif path == "/away":
            status, extra, body = "307 Temporary Redirect", "Location: http://169.254.169.254/latest\r\n", b""
        elif path == "/loop":
            status, extra, body = "302 Found", "Location: /loop?again=1\r\n", b""
        elif path == "/file":
            status, extra, body = "302 Found", "Location: file:///etc/passwd\r\n", b""
        else:
            status, extra, body = "200 OK", "Content-Type: application/json\r\n", BODY
        writer.write(f"HTTP/1.1 {status}\r\n{extra}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()

    return raw_server(handle)


async def test_a_redirecting_download_url_is_followed_without_the_api_key() -> None:
    seen = Seen()
    async with (
        redirecting_server(seen) as url,
        RecallClient(api_key="k-secret", base_url=url, download_hosts=["127.0.0.1"]) as recall,
    ):
        assert await recall.download(f"{url}/hop/3?token=abc", 10_000) == BODY
    assert [target.split("?")[0] for target, _ in seen.requests] == ["/hop/3", "/hop/2", "/hop/1", "/ok"]
    assert all("authorization" not in headers for _, headers in seen.requests)


@pytest.mark.parametrize("path", ["/away", "/file"])
async def test_a_redirect_outside_the_allowed_hosts_is_refused(path: str) -> None:
    seen = Seen()
    async with (
        redirecting_server(seen) as url,
        RecallClient(api_key="k", base_url=url, download_hosts=["127.0.0.1"]) as recall,
    ):
        with pytest.raises(RecallDownloadNotAllowed):
            await recall.download(f"{url}{path}", 10_000)
    assert len(seen.requests) == 1


async def test_a_redirect_loop_ends() -> None:
    seen = Seen()
    async with (
        redirecting_server(seen) as url,
        RecallClient(api_key="k", base_url=url, download_hosts=["127.0.0.1"]) as recall,
    ):
        with pytest.raises(RecallDownloadNotAllowed, match="redirect"):
            await recall.download(f"{url}/loop", 10_000)
    assert 1 < len(seen.requests) <= 11
