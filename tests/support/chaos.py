"""Running the chaos harness (``scripts/chaos.py``, :mod:`devkit.chaos`) from a test: a subprocess on free ports
under var/<unique name>/, which writes its ledger as JSON; a test reads that ledger."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import pytest

from tests.support.broker import ROOT

#: The ledger, and what to print when an assertion on it fails (exit status, where the stack's logs are, the tail).
ChaosRun = tuple[dict[str, Any], str]

#: The pace of every run in miniature: a short feed, Recall's retries and transcripts sped up, bounded waits.
MINIATURE: Final = (
    "--feed-seconds=20",
    "--time-scale=0.005",  # Recall's retries after 0, 0.025, 1.5, 9, 36 s, ...
    "--transcript-delay=0.2",
    "--drain-timeout=90",
    "--stall-timeout=45",
)


def run_chaos(
    ledger_dir: Path, prefix: str, options: Sequence[str], *, timeout: float, stop_timeout: float
) -> ChaosRun:
    """Run the harness in miniature with ``options`` (plus a unique ``--name``, ``--ledger-dir`` and ``--clean``) and
    return its ledger. Past ``timeout`` the harness is sent SIGTERM (it stops its stack then) and the test fails."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    argv = [
        sys.executable,
        str(ROOT / "scripts" / "chaos.py"),
        *MINIATURE,
        *options,
        f"--name={name}",
        f"--ledger-dir={ledger_dir}",
        "--clean",
    ]
    harness = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ}
    )
    try:
        output, _ = harness.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        harness.send_signal(signal.SIGTERM)
        output, _ = harness.communicate(timeout=stop_timeout)
        pytest.fail(f"the chaos harness ({prefix}) did not finish within {timeout}s:\n{output[-6000:]}")
    ledgers = sorted(ledger_dir.glob("ledger-*.json"))
    assert ledgers, f"no ledger written (exit {harness.returncode}):\n{output[-6000:]}"
    return json.loads(ledgers[-1].read_text()), f"exit {harness.returncode}; stack in var/{name}/\n{output[-6000:]}"


def failed_checks(ledger: dict[str, Any]) -> list[dict[str, Any]]:
    return [check for check in ledger["checks"] if not check["ok"]]
