"""Run the whole pipeline locally: Kafka, the Recall simulator, ingest, transcriber and fetcher as separate processes.

A small Procfile-style supervisor (each process's output goes to its own log file; readiness is each service's
``/readyz``). Used by ``make up`` / ``make down`` / ``make logs`` and by the demo::

    python -m devkit.stack up [--profile dev]      start everything in the background, wait until ready
    python -m devkit.stack down [--profile dev]    stop everything this profile started (and its broker)
    python -m devkit.stack logs [-f]               the logs, prefixed with the process name
    python -m devkit.stack status                  what runs, and whether it is ready

With ``RECALL_API_BASE_URL`` set (Recall, or any Recall-compatible server, loopback included) the simulator is not
started and the services talk to that URL with ``RECALL_API_KEY``, verifying webhooks with ``RECALL_WEBHOOK_SECRET``
(all three required). Without it the simulator is started; it signs with ``RECALL_WEBHOOK_SECRET`` when that is set,
else with its development secret. ``up`` says which Recall and which secret source it uses.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from devkit import ROOT
from devkit.ports import free_port

# Re-exported: the stack's users name these as stack.Profile, stack.replica, ...
from devkit.topology import PROFILES as PROFILES
from devkit.topology import REPLICA_VARIABLES as REPLICA_VARIABLES
from devkit.topology import Process as Process
from devkit.topology import Profile as Profile
from devkit.topology import ephemeral_profile as ephemeral_profile
from devkit.topology import replica as replica

KAFKA_LOCAL = ROOT / "scripts" / "kafka-local"
# The simulator's public development credentials (see services/recall_sim): never a real secret.
DEV_API_KEY = "recall-sim-api-key"
DEFAULT_CHAIN = [
    {"recallai_async": {"language_code": "auto"}},
    {"deepgram_async": {"model": "nova-3", "language": "multi"}},
]


def dev_webhook_secret() -> str:
    from recall_sim.settings import DEV_WEBHOOK_SECRET

    return str(DEV_WEBHOOK_SECRET)


@dataclass(frozen=True)
class RecallTarget:
    """Which Recall the stack talks to, and where the webhook secret comes from (said at start-up, never shown)."""

    simulator: bool
    base_url: str
    api_key: str = field(repr=False)
    webhook_secret: str = field(repr=False)
    secret_source: str

    def describe(self) -> str:
        recall = f"the Recall simulator at {self.base_url}" if self.simulator else f"Recall at {self.base_url}"
        return f"stack: using {recall}; webhook secret from {self.secret_source}"


def recall_target(env: Mapping[str, str], sim_url: str) -> RecallTarget:
    """``RECALL_API_BASE_URL`` set (any URL, loopback included): that server, with ``RECALL_API_KEY`` and
    ``RECALL_WEBHOOK_SECRET``. Unset: the simulator, signing with ``RECALL_WEBHOOK_SECRET`` when it is set."""
    base = env.get("RECALL_API_BASE_URL", "").strip()
    secret = env.get("RECALL_WEBHOOK_SECRET", "").strip()
    if base:
        key = env.get("RECALL_API_KEY", "").strip()
        if not key:
            raise SystemExit(f"stack: RECALL_API_BASE_URL is {base}: set RECALL_API_KEY for it too")
        if not secret:
            raise SystemExit(f"stack: RECALL_API_BASE_URL is {base}: set RECALL_WEBHOOK_SECRET to verify its webhooks")
        return RecallTarget(False, base.rstrip("/"), key, secret, "RECALL_WEBHOOK_SECRET")
    if secret:
        return RecallTarget(True, sim_url, DEV_API_KEY, secret, "RECALL_WEBHOOK_SECRET")
    source = "the simulator's development secret (RECALL_WEBHOOK_SECRET is not set)"
    return RecallTarget(True, sim_url, DEV_API_KEY, dev_webhook_secret(), source)


def processes(profile: Profile, *, sim_env: dict[str, str] | None = None, replicas: int = 1) -> list[Process]:
    """Every process of the stack; with ``replicas`` > 1, that many of each service. Ingest's replicas then listen
    on ports of their own and ``profile.ingest_port`` is left to a :class:`devkit.balancer.Balancer` in front of
    them (what a Kubernetes Service is), which whoever drives the stack runs."""
    stack = single_processes(profile, sim_env=sim_env)
    if replicas <= 1:
        return stack
    result: list[Process] = []
    for process in stack:
        if process.service not in REPLICA_VARIABLES:
            result.append(process)
            continue
        first = process
        if process.service == "ingest":
            port = free_port()
            first = replica(profile, process, 1, port)
            first.name = "ingest"
        result.append(first)
        result += [replica(profile, first, index) for index in range(2, replicas + 1)]
    return result


def single_processes(profile: Profile, *, sim_env: dict[str, str] | None = None) -> list[Process]:
    python = sys.executable
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "INGEST_", "TRANSCRIBER_", "FETCHER_"))
    }
    sim_url = f"http://127.0.0.1:{profile.sim_port}"
    target = recall_target(os.environ, sim_url)
    real = not target.simulator
    secret = target.webhook_secret
    common = {
        **inherited,
        "KAFKA_BOOTSTRAP_SERVERS": profile.bootstrap,
        "KAFKA_TOPIC_REPLICATION_FACTOR": str(profile.replication_factor),
        "LOG_FORMAT": os.environ.get("LOG_FORMAT", "json"),
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        "RECALL_API_BASE_URL": target.base_url,
        "RECALL_API_KEY": target.api_key,
        "RECALL_WEBHOOK_SECRET": secret,
        "PYTHONUNBUFFERED": "1",
    }
    if target.simulator:
        # The simulator enforces no workspace-wide rate limits unless told to: do not pace what nothing limits
        # (a benchmark would measure the pacing). Pacing per bot stays on; any RECALL_PACE_* set here wins.
        for name in ("RECALL_PACE_RETRIEVE_PER_MINUTE", "RECALL_PACE_LIST_PER_MINUTE", "RECALL_PACE_DELETE_PER_MINUTE"):
            common[name] = os.environ.get(name, "0")
    chain = os.environ.get("TRANSCRIBER_PROVIDERS", json.dumps(DEFAULT_CHAIN))
    stack = []
    if not real:
        stack.append(
            Process(
                "recall_sim",
                [python, "-m", "recall_sim"],
                {
                    **common,
                    "RECALL_SIM_HOST": "127.0.0.1",
                    "RECALL_SIM_PORT": str(profile.sim_port),
                    "RECALL_SIM_API_KEY": DEV_API_KEY,
                    "RECALL_SIM_WEBHOOK_SECRET": secret,
                    "RECALL_SIM_WEBHOOK_URL": f"http://127.0.0.1:{profile.ingest_port}/webhooks/recall",
                    "RECALL_SIM_TRANSCRIPT_DELAY_SECONDS": os.environ.get("RECALL_SIM_TRANSCRIPT_DELAY_SECONDS", "1"),
                    # As Recall does: some download URLs redirect from the API host to storage, and bots report
                    # in the legacy bot.status_change shape (data.bot_id).
                    "RECALL_SIM_DOWNLOAD_REDIRECT_RATIO": os.environ.get("RECALL_SIM_DOWNLOAD_REDIRECT_RATIO", "0.5"),
                    "RECALL_SIM_BOT_EVENTS": os.environ.get("RECALL_SIM_BOT_EVENTS", "true"),
                    **(sim_env or {}),
                },
                f"{sim_url}/admin/config",
            )
        )
    stack += [
        Process(
            "ingest",
            [python, "-m", "ingest"],
            {
                **common,
                "INGEST_HOST": os.environ.get("INGEST_HOST", "127.0.0.1"),
                "INGEST_PORT": str(profile.ingest_port),
            },
            f"http://127.0.0.1:{profile.ingest_port}/readyz",
            port=profile.ingest_port,
        ),
        Process(
            "transcriber",
            [python, "-m", "transcriber"],
            {
                **common,
                "TRANSCRIBER_PROVIDERS": chain,
                "TRANSCRIBER_WEB_HOST": "127.0.0.1",
                "TRANSCRIBER_WEB_PORT": str(profile.transcriber_port),
                "TRANSCRIBER_DATA_DIR": str(profile.home / "transcriber"),
            },
            f"http://127.0.0.1:{profile.transcriber_port}/readyz",
            port=profile.transcriber_port,
        ),
        Process(
            "fetcher",
            [python, "-m", "fetcher"],
            {
                **common,
                "FETCHER_WEB_HOST": "127.0.0.1",
                "FETCHER_WEB_PORT": str(profile.fetcher_port),
                "FETCHER_DATA_DIR": str(profile.home / "fetcher"),
                "TRANSCRIPT_STORE_URL": os.environ.get("TRANSCRIPT_STORE_URL", f"file://{profile.transcripts}"),
            },
            f"http://127.0.0.1:{profile.fetcher_port}/readyz",
            port=profile.fetcher_port,
        ),
    ]
    return stack


def kafka(profile: Profile, command: str, *args: str) -> None:
    """``scripts/kafka-local <command> [args]`` for this profile's broker (or cluster: ``kill-node 2``)."""
    env = {
        **os.environ,
        "KAFKA_PORT": str(profile.kafka_port),
        "KAFKA_CONTROLLER_PORT": str(profile.kafka_port + 1),
        "KAFKA_STATE_DIR": str(profile.home / "kafka"),
        "KAFKA_LOCAL_BROKERS": str(profile.brokers),
    }
    result = subprocess.run([str(KAFKA_LOCAL), command, *args], env=env, text=True, capture_output=True)
    sys.stdout.write(result.stdout)
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise SystemExit(f"stack: the local Kafka broker could not {' '.join([command, *args])}")


def pid_file(profile: Profile, name: str) -> Path:
    return profile.pids / f"{name}.pid"


def running_pid(profile: Profile, name: str) -> int | None:
    path = pid_file(profile, name)
    try:
        pid = int(path.read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    with contextlib.suppress(OSError):
        # An exited child not reaped yet (a zombie) still answers kill(0): it does not run.
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return None
    return pid


def start(profile: Profile, process: Process) -> None:
    profile.logs.mkdir(parents=True, exist_ok=True)
    profile.pids.mkdir(parents=True, exist_ok=True)
    if running_pid(profile, process.name) is not None:
        print(f"stack: {process.name} is already running")
        return
    log = (profile.logs / f"{process.name}.log").open("ab")
    process.popen = subprocess.Popen(
        process.argv, cwd=ROOT, env=process.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    pid_file(profile, process.name).write_text(str(process.popen.pid))


def is_ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def wait_ready(profile: Profile, stack: list[Process], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    pending = {process.name: process for process in stack}
    while pending:
        for name, process in list(pending.items()):
            if running_pid(profile, name) is None:
                tail = (profile.logs / f"{name}.log").read_text(errors="replace")[-2000:]
                raise SystemExit(f"stack: {name} exited during start-up; log {profile.logs / name}.log:\n{tail}")
            if is_ready(process.ready_url):
                print(f"stack: {name} ready ({process.ready_url.rsplit('/', 1)[0]})")
                del pending[name]
        if pending and time.monotonic() > deadline:
            raise SystemExit(f"stack: not ready within {timeout:.0f}s: {', '.join(pending)}; logs in {profile.logs}")
        time.sleep(0.25)


def up(profile: Profile, *, sim_env: dict[str, str] | None = None) -> list[Process]:
    stack = processes(profile, sim_env=sim_env)
    print(recall_target(os.environ, f"http://127.0.0.1:{profile.sim_port}").describe(), flush=True)
    kafka(profile, "start")
    for process in stack:
        start(profile, process)
    wait_ready(profile, stack)
    return stack


def down(profile: Profile, *, keep_kafka: bool = False) -> None:
    # Every process with a pid file (replicas included), the simulator last.
    started = sorted(path.stem for path in profile.pids.glob("*.pid")) if profile.pids.is_dir() else []
    names = [name for name in started if name != "recall_sim"] + ["recall_sim"]
    for name in names:
        pid = running_pid(profile, name)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    for name in names:
        pid = running_pid(profile, name)
        while pid is not None and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.1)
            pid = running_pid(profile, name)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        pid_file(profile, name).unlink(missing_ok=True)
    if not keep_kafka:
        kafka(profile, "stop")


@contextlib.contextmanager
def running(profile: Profile, *, sim_env: dict[str, str] | None = None) -> Iterator[list[Process]]:
    """The whole stack for the duration of a ``with`` block; everything it started is stopped afterwards."""
    try:
        yield up(profile, sim_env=sim_env)
    finally:
        down(profile)


def logs(profile: Profile, follow: bool) -> None:
    files = sorted(profile.logs.glob("*.log"))
    if not files:
        raise SystemExit(f"stack: no logs in {profile.logs} (is the stack up?)")
    width = max(len(f.stem) for f in files)
    handles = {f.stem: f.open("r", errors="replace") for f in files}
    while True:
        quiet = True
        for name, handle in handles.items():
            for line in handle:
                quiet = False
                print(f"{name:<{width}} | {line}", end="")
        if not follow:
            return
        if quiet:
            time.sleep(0.3)


def status(profile: Profile) -> int:
    healthy = True
    for process in processes(profile):
        pid = running_pid(profile, process.name)
        state = "stopped" if pid is None else ("ready" if is_ready(process.ready_url) else "not ready")
        healthy &= state == "ready"
        print(f"{process.name:<12} {state:<10} {process.ready_url.rsplit('/', 1)[0]}")
    return 0 if healthy else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down", "logs", "status"])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="dev")
    parser.add_argument("-f", "--follow", action="store_true", help="logs: keep following")
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    if args.command == "up":
        up(profile)
        print(f"stack: up. Webhooks: http://127.0.0.1:{profile.ingest_port}/webhooks/recall; logs: {profile.logs}")
        print(f"stack: transcripts are stored under {profile.transcripts}; stop with `make down`")
        return 0
    if args.command == "down":
        down(profile)
        return 0
    if args.command == "logs":
        with contextlib.suppress(KeyboardInterrupt):
            logs(profile, args.follow)
        return 0
    return status(profile)


if __name__ == "__main__":
    sys.exit(main())
