"""CPU per HTTP call of the clients the pipeline uses: httpx's default transport (httpcore), the Recall client's
aiohttp transport under httpx, and bare aiohttp, against a local aiohttp server in a process of its own.

    .venv/bin/python bench/pipeline_http_probe.py [CALLS] [IN_FLIGHT]

Each client POSTs a small JSON body (as the transcriber's create does) over keep-alive connections with
``IN_FLIGHT`` calls at once (default 8, ``TRANSCRIBER_CONCURRENCY``'s default); the figure is this process's CPU
(user + system, from ``getrusage``) per call, after a warm-up. Not a registered benchmark: a probe behind
``FINDINGS.md``'s numbers for the Recall client's transport.
"""

from __future__ import annotations

import asyncio
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx
from aiohttp import web

from pipeline_common.recall._aiohttp import AiohttpTransport
from pipeline_common.recall.client import _default_ssl_context

BODY = b'{"provider":{"recallai_async":{"language_code":"auto"}}}'
ANSWER = b'{"id":"t-1","status":{"code":"processing","sub_code":null}}'


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def serve(port: int) -> None:
    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=ANSWER, content_type="application/json")

    app = web.Application()
    app.router.add_post("/call/", answer)
    web.run_app(app, host="127.0.0.1", port=port, print=None)


async def _measure(name: str, call: Callable[[], Awaitable[None]], calls: int, in_flight: int) -> None:
    await asyncio.gather(*(call() for _ in range(50)))  # warm-up: connections opened
    gate = asyncio.Semaphore(in_flight)

    async def gated() -> None:
        async with gate:
            await call()

    cpu, wall = _cpu(), time.monotonic()
    await asyncio.gather(*(gated() for _ in range(calls)))
    cpu_ms = (_cpu() - cpu) * 1000 / calls
    print(f"{name:28} {cpu_ms:6.3f} ms CPU per call   ({calls / (time.monotonic() - wall):7.0f} calls/s)")


async def probe(url: str, calls: int, in_flight: int) -> None:
    headers = {"Content-Type": "application/json"}
    for name, transport in (
        ("httpx (httpcore)", None),
        ("httpx + AiohttpTransport", AiohttpTransport(ssl_context=_default_ssl_context(), max_connections=20)),
    ):
        limits = httpx.Limits(max_connections=20, max_keepalive_connections=20)
        async with httpx.AsyncClient(base_url=url, limits=limits, transport=transport) as client:

            async def through_httpx(client: httpx.AsyncClient = client) -> None:
                response = await client.post("/call/", content=BODY, headers=headers)
                await response.aread()

            await _measure(name, through_httpx, calls, in_flight)
    async with aiohttp.ClientSession(base_url=url) as session:

        async def through_aiohttp() -> None:
            async with session.post("/call/", data=BODY, headers=headers) as response:
                await response.read()

        await _measure("aiohttp", through_aiohttp, calls, in_flight)


def main() -> None:
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    in_flight = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        port = probe_socket.getsockname()[1]
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        asyncio.run(probe(f"http://127.0.0.1:{port}", calls, in_flight))
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]))
    else:
        main()
