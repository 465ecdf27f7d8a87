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
        self._open: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self.refused = 0  # connections no backend accepted

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._open):
            writer.close()  # each connection's handler then ends on its own
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=10)

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
        self._open |= {client_writer, backend_writer}
        handler = asyncio.current_task()
        if handler is not None:
            self._handlers.add(handler)
        to_backend = asyncio.ensure_future(_pipe(client_reader, backend_writer))
        try:
            await _pipe(backend_reader, client_writer)
            # The backend is done (it may answer before reading a whole request, a 413): let the client finish
            # sending and read the answer, rather than resetting the connection under it.
            with contextlib.suppress(TimeoutError, OSError):
                await asyncio.wait_for(asyncio.shield(to_backend), 5)
        finally:
            to_backend.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await to_backend
            for writer in (client_writer, backend_writer):
                self._open.discard(writer)
                writer.close()
            if handler is not None:
                self._handlers.discard(handler)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF. Once the other side stops accepting, keep reading (and dropping) what still comes, so the
    sender sees the answer instead of a reset; then pass the half-close on."""
    accepting = True
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            if not accepting:
                continue
            try:
                writer.write(data)
                await writer.drain()
            except (OSError, RuntimeError):
                accepting = False
    with contextlib.suppress(OSError, RuntimeError):
        if writer.can_write_eof():
            writer.write_eof()
