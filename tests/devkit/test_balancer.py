"""The harness's stand-in for a Kubernetes Service in front of ingest's replicas: real TCP servers on loopback."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from devkit.balancer import Balancer
from devkit.ports import free_port

pytestmark = pytest.mark.integration


async def named_server(name: bytes) -> asyncio.Server:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readline()
        writer.write(name + b" " + request)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0)


async def ask(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"ping\n")
    await writer.drain()
    answer = await reader.read()
    writer.close()
    return answer


async def test_connections_take_turns_and_skip_a_backend_that_is_down() -> None:
    first, second = await named_server(b"a"), await named_server(b"b")
    ports = [server.sockets[0].getsockname()[1] for server in (first, second)]
    balancer = Balancer(free_port(), lambda: list(ports))
    await balancer.start()
    try:
        answers = {await ask(balancer.port) for _ in range(4)}
        assert answers == {b"a ping\n", b"b ping\n"}

        first.close()
        await first.wait_closed()
        assert {await ask(balancer.port) for _ in range(4)} == {b"b ping\n"}

        second.close()
        await second.wait_closed()
        assert await ask(balancer.port) == b""  # nobody to send it to: closed, counted
        assert balancer.refused == 1
    finally:
        await balancer.close()


async def test_an_answer_sent_before_the_whole_request_reaches_the_client() -> None:
    # ingest reads an oversized body up to its cap, answers 413 and closes: through the balancer, the client must
    # get that 413, not a reset connection.
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(1024 * 1024)
        writer.write(b"HTTP/1.1 413 Request Entity Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    backend = await asyncio.start_server(refuse, "127.0.0.1", 0)
    port = backend.sockets[0].getsockname()[1]
    balancer = Balancer(free_port(), lambda: [port])
    await balancer.start()
    try:
        async with httpx.AsyncClient(timeout=20) as client:
            for size in (1, 2, 3, 1, 2, 3):
                body = b"x" * (size * 1024 * 1024 + 100)
                response = await client.post(f"http://127.0.0.1:{balancer.port}/webhooks", content=body)
                assert response.status_code == 413
    finally:
        await balancer.close()
        backend.close()
