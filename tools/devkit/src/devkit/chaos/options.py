"""What a chaos run is made of (the chain, the topics it audits, the services it may kill) and its options."""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import devkit.chaos
from devkit import ROOT
from devkit.demo import FALLBACK, PRIMARY, console
from pipeline_common.topics import (
    BOT_EVENTS,
    DLQ_SERVICES,
    FETCHER_RETRIES,
    OTHER_EVENTS,
    RECORDING_EVENTS,
    TRANSCRIBER_RETRIES,
    TRANSCRIPT_EVENTS,
    dlq_topic,
)

CHAIN = [{PRIMARY: {"language_code": "auto"}}, {FALLBACK: {"model": "nova-3", "language": "multi"}}]
RECALL_LIMIT = 10
RECALL_TOPICS = {
    "recording": RECORDING_EVENTS.name,
    "transcript": TRANSCRIPT_EVENTS.name,
    "bot": BOT_EVENTS.name,
}
INGEST_TOPICS = (RECORDING_EVENTS.name, TRANSCRIPT_EVENTS.name, BOT_EVENTS.name, OTHER_EVENTS.name)
DLQS = tuple(dlq_topic(service).name for service in DLQ_SERVICES)
#: What each consumer group reads (and must have caught up on before the ledger is drawn).
GROUPS = {
    "transcriber": (RECORDING_EVENTS.name, TRANSCRIPT_EVENTS.name, TRANSCRIBER_RETRIES.name),
    "fetcher": (TRANSCRIPT_EVENTS.name, FETCHER_RETRIES.name),
}
KILLABLE = ("ingest", "transcriber", "fetcher")
# The simulator is Recall: it is never killed (its records are the other half of the ledger).


def log(message: str) -> None:
    console.print(f"[dim]chaos[/] {message}", highlight=False)


def _field(flag: str) -> str:
    return flag.replace("-", "_")


def _flag(field_name: str) -> str:
    return field_name.replace("_", "-")


def fault(switch: str) -> Any:
    """An :class:`Options` field for a fault, on by default; ``switch`` says what it does (``--no-...`` help)."""
    return field(default=True, metadata={"switch": switch})


def knob(default: float, what: str) -> Any:
    """An :class:`Options` field set by ``--<name>``; ``what`` is its help."""
    return field(default=default, metadata={"knob": what})


@dataclass
class Options:
    recordings: int = knob(500, "how many recordings")
    seed: int = 0
    feed_seconds: float | None = None  # default: recordings / 8, at least 15 s
    kills: int = knob(3, "SIGKILLs of each service")
    kill_services: tuple[str, ...] = KILLABLE
    kill: bool = fault("SIGKILL the services")
    broker_restart: bool = fault("restart the broker once")
    api_faults: bool = fault("429/5xx/dropped responses from Recall")
    webhook_chaos: bool = fault("duplicate and out-of-order webhooks")
    provider_outage: bool = fault("the primary provider fails every transcript for a while")
    fuzz: bool = fault("fuzz the ingest endpoint afterwards")
    # Distributed mode (--brokers 3 --replicas 2): its faults only run when the topology has room for them.
    leader_kill: bool = fault("SIGKILL the broker leading the most partitions (--brokers > 1), restart it later")
    rolling_restart: bool = fault(
        "restart every replica of each service, one at a time, SIGTERM then ready (--replicas > 1)"
    )
    scale_fetcher: bool = fault("scale the fetcher up to 3 replicas and back mid-run (--replicas > 1)")
    freeze: bool = fault("SIGSTOP a transcriber replica past the session timeout, then SIGCONT (--replicas > 1)")
    failover: bool = fault("SIGKILL a transcriber replica and time its partitions' move (--replicas > 1)")
    brokers: int = knob(1, "Kafka nodes (a local KRaft cluster when > 1; replication factor min(N, 3))")
    replicas: int = knob(1, "processes of each service (ingest's behind a round-robin balancer)")
    # The worker-core and reconciliation faults (faults/workers.py, store.py, lost.py, slow.py).
    worker_exceptions: bool = fault("raise unforeseen exceptions inside both workers (their fault hook)")
    store_outage: bool = fault("make the fetcher's transcript store unwritable for a few seconds")
    lost_webhooks: bool = fault(
        "lose some transcript.done/failed and recording.done webhooks (sweep and reconciler end them)"
    )
    slow_transcripts: bool = fault("keep a few transcripts processing at Recall past the transcriber's deadline")
    fuzz_examples: int = knob(2000, "requests of the fuzzing pass")
    time_scale: float = knob(0.01, "Recall's webhook retry schedule, scaled")
    transcript_delay: float = knob(0.3, "Recall's processing time (seconds)")
    session_timeout: float = knob(10.0, "consumer session timeout: how soon a dead worker's partitions move (seconds)")
    drain_timeout: float = knob(900.0, "give up waiting after the faults")
    stall_timeout: float = knob(180.0, "give up when Recall has nothing pending and no recording ended for this long")
    name: str = "chaos"
    ledger_dir: Path = ROOT / "var" / "chaos"
    keep: bool = True  # keep var/<name>/ (logs, broker data, transcripts) after the run

    @property
    def feed(self) -> float:
        return self.feed_seconds if self.feed_seconds is not None else max(15.0, self.recordings / 8)


#: Every fault's switch: ``--no-<name>`` turns it off, named after its :class:`Options` field (``_`` as ``-``).
FAULT_SWITCHES: dict[str, str] = {
    _flag(f.name): f.metadata["switch"] for f in fields(Options) if "switch" in f.metadata
}

#: The numeric knobs: ``--<name>`` sets one, named after its :class:`Options` field (``_`` as ``-``).
KNOBS: dict[str, tuple[type, str]] = {
    _flag(f.name): (type(f.default), f.metadata["knob"]) for f in fields(Options) if "knob" in f.metadata
}


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        description=devkit.chaos.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for flag, (kind, what) in KNOBS.items():
        parser.add_argument(f"--{flag}", type=kind, default=getattr(Options, _field(flag)), help=what)
    parser.add_argument("--seed", type=int, default=None, help="fault times, plan order (default: random, printed)")
    parser.add_argument("--feed-seconds", type=float, default=None, help="spread the recordings over this long")
    parser.add_argument(
        "--kill-services", default=",".join(KILLABLE), help="comma-separated: which services get killed"
    )
    for name, what in FAULT_SWITCHES.items():
        parser.add_argument(f"--no-{name}", action="store_true", help=f"do not {what}")
    parser.add_argument("--name", default="chaos", help="the stack's directory under var/")
    parser.add_argument("--ledger-dir", type=Path, default=ROOT / "var" / "chaos")
    parser.add_argument("--clean", action="store_true", help="remove var/<name>/ (logs, data) after a clean run")
    args = parser.parse_args(argv)
    services = tuple(s.strip() for s in args.kill_services.split(",") if s.strip())
    unknown = set(services) - set(KILLABLE)
    if unknown:
        parser.error(f"--kill-services: unknown {', '.join(sorted(unknown))} (choose from {', '.join(KILLABLE)})")
    if args.recordings < 1:
        parser.error("--recordings must be at least 1")
    if not 1 <= args.brokers <= 9 or not 1 <= args.replicas <= 5:
        parser.error("--brokers must be 1-9 and --replicas 1-5")
    options = Options(
        **{_field(flag): getattr(args, _field(flag)) for flag in KNOBS},
        **{_field(name): not getattr(args, f"no_{_field(name)}") for name in FAULT_SWITCHES},
        seed=args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31),
        feed_seconds=args.feed_seconds,
        kill_services=services,
        name=args.name,
        ledger_dir=args.ledger_dir,
        keep=not args.clean,
    )
    options.kill = options.kill and options.kills > 0 and bool(services)
    options.fuzz = options.fuzz and options.fuzz_examples > 0
    options.leader_kill = options.leader_kill and options.brokers > 1
    for name in ("rolling_restart", "scale_fetcher", "freeze", "failover"):
        setattr(options, name, getattr(options, name) and options.replicas > 1)
    return options
