"""Run ``recall-pipeline`` in-process (click's CliRunner, in a worker thread so the command's own ``asyncio.run``
does not meet the test's loop) or as the installed console script (a subprocess, for the real entry point)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pipeline_cli.app import cli
from tests.support.recall_sim import recall_sim  # noqa: F401 - the fixture, for this package's tests

CONSOLE_SCRIPT = Path(sys.executable).parent / "recall-pipeline"
#: Variables the CLI reads; cleared so the developer's shell cannot change what a test sees.
CLI_VARIABLES = (
    "KAFKA_BOOTSTRAP_SERVERS",
    "RECALL_API_KEY",
    "RECALL_API_BASE_URL",
    "RECALL_REGION",
    "TRANSCRIBER_PROVIDERS",
)

Invoke = Callable[..., Awaitable[Result]]


def invoke_sync(*args: str, env: dict[str, str | None] | None = None) -> Result:
    cleared: dict[str, str | None] = {name: None for name in CLI_VARIABLES}
    return CliRunner().invoke(
        cli, list(args), env={**cleared, **(env or {})}, catch_exceptions=False, prog_name="recall-pipeline"
    )


@pytest.fixture
def invoke() -> Invoke:
    """``await invoke("ready", "tail", ...)``: the CLI in-process, from an async test."""

    async def run(*args: str, env: dict[str, str | None] | None = None) -> Result:
        return await asyncio.to_thread(invoke_sync, *args, env=env)

    return run


def console(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The installed ``recall-pipeline`` script, as an operator runs it."""
    base = {name: value for name, value in os.environ.items() if name not in CLI_VARIABLES}
    return subprocess.run(
        [str(CONSOLE_SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**base, **(env or {})},
    )
