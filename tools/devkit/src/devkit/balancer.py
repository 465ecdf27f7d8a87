"""A round-robin TCP balancer on loopback: what a Kubernetes Service is to ingest's replicas, for the harness.

Each new connection goes to the next backend that accepts it; a backend that refuses (stopped, restarting) is
skipped, as kube-proxy skips an endpoint that is not ready. Connections in flight stay where they are, so a replica
that is shutting down finishes what it was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable


class Balancer:
    def __init__(self, port: int, backends: Callable[[], list[int]]) -> None:
        self.port = port
        self.backends = backends  # asked on every connection: replicas come and go
        self._turn = itertools.count()
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self.refused = 0  # connections no backend accepted

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        ports = self.backends()
        if not ports:
            return None
        start = next(self._turn)
        for offset in range(len(ports)):
            port = ports[(start + offset) % len(ports)]
            with contextlib.suppress(OSError):
                return await asyncio.open_connection("127.0.0.1", port)
        return None

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        backend = await self._connect()
        if backend is None:
            self.refused += 1
            client_writer.close()
            return
        backend_reader, backend_writer = backend
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        try:
            await asyncio.gather(
                _pipe(client_reader, backend_writer), _pipe(backend_reader, client_writer), return_exceptions=True
            )
        finally:
            self._pipes.discard(task)
            for writer in (client_writer, backend_writer):
                writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        # One side done: pass the half-close on (HTTP/1.1 keep-alive peers close both ways themselves).
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()
