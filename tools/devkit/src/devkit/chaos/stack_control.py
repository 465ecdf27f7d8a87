"""The stack a chaos run drives: its own directory under var/, and the processes with the run's settings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from devkit import stack
from devkit.chaos import faults
from devkit.chaos.options import CHAIN, Options


def prepare_home(profile: stack.Profile, ledger_dir: Path) -> None:
    """A fresh var/<name>/ (earlier ledgers kept)."""
    if profile.home.exists():
        for child in profile.home.iterdir():
            if child.resolve() == ledger_dir.resolve() or child.name.startswith("ledger-"):
                continue
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)


def chaos_processes(profile: stack.Profile, options: Options) -> list[stack.Process]:
    sim_env = {
        "RECALL_SIM_TRANSCRIPT_DELAY_SECONDS": str(options.transcript_delay),
        "RECALL_SIM_TIME_SCALE": str(options.time_scale),
        "RECALL_SIM_SEED": str(options.seed),
        "LOG_LEVEL": "WARNING",
    }
    processes = stack.processes(profile, sim_env=sim_env, replicas=options.replicas)
    for process in processes:
        configure(process, options)
    return processes


def configure(process: stack.Process, options: Options) -> None:
    """The run's settings on one process (a replica started mid-run gets them too, from the first's copy)."""
    if process.service == "transcriber":
        process.env["TRANSCRIBER_PROVIDERS"] = json.dumps(CHAIN)
        process.env["TRANSCRIBER_SESSION_TIMEOUT_SECONDS"] = str(options.session_timeout)
    if process.service == "fetcher":
        process.env["FETCHER_SESSION_TIMEOUT_SECONDS"] = str(options.session_timeout)
    if process.service in ("transcriber", "fetcher") and options.replicas > 1:
        # A warm copy of the Tables on another replica: a failover resumes without replaying the changelog.
        process.env["KAFKA_TABLE_STANDBY_REPLICAS"] = "1"
    process.env.update(faults.worker_env(options).get(process.service, {}))
    if process.service != "recall_sim":
        process.env.setdefault("LOG_LEVEL", "INFO")
