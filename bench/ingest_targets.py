"""The ingest benchmark's processes: the load generator (``bench/loadgen.py``) and a server under load."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from bench.framework import ROOT, JsonLineProcess, ServerProcess, process_cpu_seconds

PATH = "/webhooks/recall"


class LoadGenerator(JsonLineProcess):
    """``bench/loadgen.py`` in its own process; one JSON command in, one JSON result out, each with a deadline."""

    def __init__(self, secret: str, log_dir: Path) -> None:
        super().__init__(
            "load generator",
            [sys.executable, str(ROOT / "bench" / "loadgen.py")],
            log_dir / "loadgen.log",
            hello_timeout=60,
            env={**os.environ, "BENCH_WEBHOOK_SECRET": secret},
        )

    def run(self, command: dict[str, Any], timeout: float) -> dict[str, Any]:
        self.send(command)
        result = self.next_answer(timeout)
        if "failed" in result:
            raise RuntimeError(f"load generator failed: {result['failed']}")
        return result


class Target:
    def __init__(self, name: str, server: ServerProcess, port: int, broker_pid: int | None = None) -> None:
        self.name = name
        self.server = server
        self.port = port
        self.broker_pid = broker_pid  # the broker shares the cores: its CPU per request is part of ingest's cost

    def command(self, op: str, event: str, **fields: Any) -> dict[str, Any]:
        return {"op": op, "host": "127.0.0.1", "port": self.port, "path": PATH, "event": event, **fields}

    def drive(self, gen: LoadGenerator, command: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Run one load command against this server and add the server's CPU time per answered request."""
        before = self.server.cpu_seconds()
        broker_before = self._broker_cpu()
        result = gen.run(command, timeout)
        used = self.server.cpu_seconds() - before
        result["server_cpu_s"] = round(used, 3)
        result["server_cpu_ms_per_ok"] = round(1000 * used / result["ok"], 4) if result["ok"] else None
        broker_after = self._broker_cpu()
        if broker_before is not None and broker_after is not None and result["ok"]:
            result["broker_cpu_ms_per_ok"] = round(1000 * (broker_after - broker_before) / result["ok"], 4)
        self.check_alive()
        return result

    def _broker_cpu(self) -> float | None:
        if self.broker_pid is None:
            return None
        try:
            return process_cpu_seconds(self.broker_pid)
        except OSError:
            return None

    def check_alive(self) -> None:
        if self.server.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited ({self.server.process.returncode}):\n{self.server.tail()}")
