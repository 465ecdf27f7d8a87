"""The load generator: its own process, driven by JSON lines on stdin, answering one JSON line per command on stdout.

Lean on purpose (the machine has two cores and the servers under test need them): uvloop, raw HTTP/1.1 over
keep-alive connections opened before the clock starts, and every request pre-signed and pre-serialised before the
clock starts (``sign_webhook``, a fresh ``webhook-id`` and recording id each, so neither ingest's de-duplication nor
Kafka keys repeat). Signatures are made at most a few seconds before they are sent, well inside the 5-minute window.

Commands (one JSON object per line)::

    {"op": "closed", "host": ..., "port": ..., "path": ..., "event": "recording.done",
     "concurrency": 8, "duration": 4.0, "warmup": 1.0, "max_requests": 40000}
        closed loop: ``concurrency`` connections each send the next request as soon as the last one is answered,
        for ``duration`` seconds or ``max_requests`` requests, whichever comes first. Throughput counts the requests
        started after ``warmup``.
    {"op": "rate", ..., "rate": 800.0, "connections": 16, "duration": 6.0, "warmup": 1.0}
        open loop at a fixed arrival rate (request i is due at start + i/rate), ``rate * duration`` requests over
        ``connections`` connections; latency is measured from the actual send and, to show queueing, from the time
        the request was due.
    {"op": "quit"}

A response is a success only when its status is 200; anything else, a dropped connection or no answer within the
grace period after the run is an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvloop

from pipeline_common.webhooks import sign_webhook

GRACE_SECONDS = 15.0


def make_body(event: str, recording_id: str) -> bytes:
    """A Recall ``recording.done``-shaped body (as tests/ingest/conftest.py's ``recording_done``)."""
    code = event.partition(".")[2]
    body = {
        "event": event,
        "data": {
            "data": {"code": code, "sub_code": None, "updated_at": datetime.now(UTC).isoformat()},
            "recording": {"id": recording_id, "metadata": {"team": "sales", "source": "bench"}},
            "bot": {"id": f"bot-{recording_id}", "metadata": {}},
        },
    }
    return json.dumps(body).encode()


def presign(secret: str, host: str, port: int, path: str, event: str, count: int) -> list[bytes]:
    """``count`` complete HTTP requests, each a distinct signed delivery."""
    requests = []
    run = uuid.uuid4().hex[:8]
    for i in range(count):
        body = make_body(event, f"rec-bench-{run}-{i}")
        headers = sign_webhook([secret], f"msg_bench_{run}_{i}", body)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
            + "\r\n"
        )
        requests.append(head.encode() + body)
    return requests


class Connection:
    """One keep-alive HTTP/1.1 connection; responses must carry Content-Length (uvicorn's always do)."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.close()
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def send(self, request: bytes) -> int:
        if self.writer is None or self.reader is None:
            await self.open()
        assert self.writer is not None and self.reader is not None
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lowered = head.lower()
        at = lowered.find(b"\r\ncontent-length:")
        if at < 0:
            raise ValueError("response without Content-Length")
        end = lowered.find(b"\r\n", at + 2)
        length = int(lowered[at + 17 : end])
        if length:
            await self.reader.readexactly(length)
        if b"\r\nconnection: close" in lowered:
            self.close()
        return status


@dataclass
class Tally:
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # seconds, measured requests only
    due_latencies: list[float] = field(default_factory=list)  # seconds from the time the request was due
    measured_ok: int = 0
    total_ok: int = 0
    sent: int = 0
    in_flight: int = 0
    last_finish: float = 0.0
    cpu_s: float = 0.0

    async def one(self, conn: Connection, request: bytes, measured: bool, due: float | None) -> None:
        self.sent += 1
        self.in_flight += 1
        started = time.perf_counter()
        try:
            status = await conn.send(request)
        except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as error:
            self.errors[type(error).__name__] += 1
            conn.close()
            return
        finally:
            self.in_flight -= 1
        finished = time.perf_counter()
        if status != 200:
            self.errors[f"http_{status}"] += 1
            return
        self.total_ok += 1
        if measured:
            self.measured_ok += 1
            self.latencies.append(finished - started)
            if due is not None:
                self.due_latencies.append(finished - due)
            self.last_finish = max(self.last_finish, finished)


def quantile_ms(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # nearest rank
    return round(ordered[int(min(rank, len(ordered))) - 1] * 1000, 3)


def summarise(tally: Tally, window_start: float, elapsed: float, extra: dict[str, Any]) -> dict[str, Any]:
    window = tally.last_finish - window_start if tally.measured_ok else 0.0
    return {
        **extra,
        "sent": tally.sent,
        "ok": tally.total_ok,
        "measured_ok": tally.measured_ok,
        "errors": dict(tally.errors),
        "error_count": sum(tally.errors.values()),
        "elapsed_s": round(elapsed, 3),
        "loadgen_cpu_s": round(tally.cpu_s, 3),
        "measured_window_s": round(window, 3),
        "rps": round(tally.measured_ok / window, 1) if window > 0 else 0.0,
        "p50_ms": quantile_ms(tally.latencies, 50),
        "p90_ms": quantile_ms(tally.latencies, 90),
        "p99_ms": quantile_ms(tally.latencies, 99),
        "max_ms": quantile_ms(tally.latencies, 100),
        "p50_from_due_ms": quantile_ms(tally.due_latencies, 50),
        "p99_from_due_ms": quantile_ms(tally.due_latencies, 99),
    }


async def open_connections(host: str, port: int, count: int) -> list[Connection]:
    connections = [Connection(host, port) for _ in range(count)]
    await asyncio.gather(*(c.open() for c in connections))
    return connections


async def run_workers(
    worker: Callable[[Connection], Awaitable[None]],
    connections: list[Connection],
    tally: Tally,
    duration: float,
    start: float,
    cpu_start: float,
) -> float:
    """One ``worker`` per connection until they are done (or ``duration`` and a grace period are over), then close
    the connections; the seconds since ``start``."""
    workers = [asyncio.create_task(worker(c)) for c in connections]
    await finish(workers, tally, duration + GRACE_SECONDS)
    elapsed = time.perf_counter() - start
    tally.cpu_s = time.process_time() - cpu_start  # while the clock ran: what the load took from the machine
    for conn in connections:
        conn.close()
    return elapsed


async def finish(workers: list[asyncio.Task[None]], tally: Tally, within: float) -> None:
    """Wait for the workers; whatever is still unanswered after ``within`` seconds counts as an error."""
    _done, pending = await asyncio.wait(workers, timeout=within)
    if pending:
        tally.errors["no_answer_in_time"] += tally.in_flight
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    for task in workers:
        if not task.cancelled() and task.exception() is not None:
            tally.errors[type(task.exception()).__name__] += 1


async def closed_loop(cmd: dict[str, Any], secret: str) -> dict[str, Any]:
    host, port, concurrency = cmd["host"], int(cmd["port"]), int(cmd["concurrency"])
    duration, warmup = float(cmd["duration"]), float(cmd["warmup"])
    requests = presign(secret, host, port, cmd["path"], cmd["event"], int(cmd["max_requests"]))
    connections = await open_connections(host, port, concurrency)
    tally = Tally()
    cpu_start = time.process_time()
    start = time.perf_counter()
    window_start, end = start + warmup, start + duration
    cursor = iter(requests)

    async def worker(conn: Connection) -> None:
        for request in cursor:
            now = time.perf_counter()
            if now >= end:
                return
            await tally.one(conn, request, now >= window_start, None)

    elapsed = await run_workers(worker, connections, tally, duration, start, cpu_start)
    return summarise(
        tally,
        window_start,
        elapsed,
        {
            "op": "closed",
            "concurrency": concurrency,
            "pool": len(requests),
            "pool_exhausted": tally.sent >= len(requests),
        },
    )


async def rate_loop(cmd: dict[str, Any], secret: str) -> dict[str, Any]:
    host, port, rate = cmd["host"], int(cmd["port"]), float(cmd["rate"])
    duration, warmup = float(cmd["duration"]), float(cmd["warmup"])
    total = max(1, int(rate * duration))
    requests = presign(secret, host, port, cmd["path"], cmd["event"], total)
    connections = await open_connections(host, port, int(cmd["connections"]))
    tally = Tally()
    cpu_start = time.process_time()
    start = time.perf_counter()
    next_index = 0

    async def worker(conn: Connection) -> None:
        nonlocal next_index
        while next_index < total:
            i = next_index
            next_index += 1
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await tally.one(conn, requests[i], due >= start + warmup, due)

    elapsed = await run_workers(worker, connections, tally, duration, start, cpu_start)
    summary = summarise(tally, start + warmup, elapsed, {"op": "rate", "target_rps": rate})
    summary["connections"] = len(connections)
    return summary


async def serve() -> int:
    secret = os.environ["BENCH_WEBHOOK_SECRET"]
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"op": "hello", "pid": os.getpid()}), flush=True)
    while line := await reader.readline():
        cmd = json.loads(line)
        if cmd["op"] == "quit":
            break
        try:
            result = await (closed_loop if cmd["op"] == "closed" else rate_loop)(cmd, secret)
        except Exception as error:  # reported to the orchestrator, which decides
            result = {"op": cmd["op"], "failed": repr(error)}
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(uvloop.run(serve()))
