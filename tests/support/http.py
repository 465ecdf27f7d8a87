"""Real HTTP servers on loopback for tests: an ASGI app under uvicorn in a background thread, or a raw asyncio
socket server that answers however a test needs (a hostile or redirecting server)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from devkit.ports import free_port
from tests.support.waiting import wait_for_sync

__all__ = ["free_port", "raw_server", "serve_in_thread"]


def _listening_socket() -> socket.socket:
    # Bound before uvicorn starts, so no other process can take the port in between.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


@contextmanager
def serve_in_thread(app: Any, name: str = "uvicorn", startup_timeout: float = 30.0) -> Iterator[str]:
    """Serve ``app`` on a free 127.0.0.1 port with uvicorn (its own event loop, in a thread); yield the base URL."""
    sock = _listening_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=5, ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    try:
        wait_for_sync(
            lambda: server.started or not thread.is_alive(),
            timeout=startup_timeout,
            interval=0.005,
            message=f"{name} started",
        )
        if not thread.is_alive():
            raise RuntimeError(f"{name} failed to start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


#: Answers one connection: reads the request from the reader and writes whatever it likes to the writer.
RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def raw_server(handle: RawHandler) -> AsyncIterator[str]:
    """Serve ``handle`` on a free 127.0.0.1 port in this event loop; yield the base URL. A client that hangs up early
    is no error; every connection is closed after its handler."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()
