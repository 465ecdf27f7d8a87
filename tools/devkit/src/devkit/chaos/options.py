"""What a chaos run is made of (the chain, the topics it audits, the services it may kill) and its options."""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass
from pathlib import Path

import devkit.chaos
from devkit import ROOT
from devkit.demo import FALLBACK, PRIMARY, console
from pipeline_common.topics import (
    BOT_EVENTS,
    FETCHER_RETRIES,
    OTHER_EVENTS,
    RECORDING_EVENTS,
    TRANSCRIBER_RETRIES,
    TRANSCRIPT_EVENTS,
    dlq_topic,
)

__all__ = ["FALLBACK", "PRIMARY", "console"]

CHAIN = [{PRIMARY: {"language_code": "auto"}}, {FALLBACK: {"model": "nova-3", "language": "multi"}}]
RECALL_LIMIT = 10
RECALL_TOPICS = {
    "recording": RECORDING_EVENTS.name,
    "transcript": TRANSCRIPT_EVENTS.name,
    "bot": BOT_EVENTS.name,
}
INGEST_TOPICS = (RECORDING_EVENTS.name, TRANSCRIPT_EVENTS.name, BOT_EVENTS.name, OTHER_EVENTS.name)
DLQS = (dlq_topic("transcriber").name, dlq_topic("fetcher").name)
#: What each consumer group reads (and must have caught up on before the ledger is drawn).
GROUPS = {
    "transcriber": (RECORDING_EVENTS.name, TRANSCRIPT_EVENTS.name, TRANSCRIBER_RETRIES.name),
    "fetcher": (TRANSCRIPT_EVENTS.name, FETCHER_RETRIES.name),
}
KILLABLE = ("ingest", "transcriber", "fetcher")
# The simulator is Recall: it is never killed (its records are the other half of the ledger).


def log(message: str) -> None:
    console.print(f"[dim]chaos[/] {message}", highlight=False)


@dataclass
class Options:
    recordings: int = 500
    seed: int = 0
    feed_seconds: float | None = None  # default: recordings / 8, at least 15 s
    kills: int = 3  # per service
    kill_services: tuple[str, ...] = KILLABLE
    kill: bool = True
    broker_restart: bool = True
    api_faults: bool = True
    webhook_chaos: bool = True
    provider_outage: bool = True
    fuzz: bool = True
    fuzz_examples: int = 2000
    time_scale: float = 0.01
    transcript_delay: float = 0.3
    session_timeout: float = 10.0
    drain_timeout: float = 900.0
    stall_timeout: float = 180.0
    name: str = "chaos"
    ledger_dir: Path = ROOT / "var" / "chaos"
    keep: bool = True  # keep var/<name>/ (logs, broker data, transcripts) after the run

    @property
    def feed(self) -> float:
        return self.feed_seconds if self.feed_seconds is not None else max(15.0, self.recordings / 8)


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        description=devkit.chaos.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recordings", type=int, default=500)
    parser.add_argument("--seed", type=int, default=None, help="fault times, plan order (default: random, printed)")
    parser.add_argument("--feed-seconds", type=float, default=None, help="spread the recordings over this long")
    parser.add_argument("--kills", type=int, default=3, help="SIGKILLs of each service")
    parser.add_argument(
        "--kill-services", default=",".join(KILLABLE), help="comma-separated: which services get killed"
    )
    for name, what in (
        ("kill", "SIGKILL the services"),
        ("broker-restart", "restart the broker once"),
        ("api-faults", "429/5xx/dropped responses from Recall"),
        ("webhook-chaos", "duplicate and out-of-order webhooks"),
        ("provider-outage", "the primary provider fails every transcript for a while"),
        ("fuzz", "fuzz the ingest endpoint afterwards"),
    ):
        parser.add_argument(f"--no-{name}", action="store_true", help=f"do not {what}")
    parser.add_argument("--fuzz-examples", type=int, default=2000)
    parser.add_argument("--time-scale", type=float, default=0.01, help="Recall's webhook retry schedule, scaled")
    parser.add_argument("--transcript-delay", type=float, default=0.3, help="Recall's processing time (seconds)")
    parser.add_argument(
        "--session-timeout",
        type=float,
        default=10.0,
        help="consumer session timeout: how soon a dead worker's partitions move (seconds)",
    )
    parser.add_argument("--drain-timeout", type=float, default=900.0, help="give up waiting after the faults")
    parser.add_argument(
        "--stall-timeout",
        type=float,
        default=180.0,
        help="give up when Recall has nothing pending and no recording ended for this long",
    )
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
    return Options(
        recordings=args.recordings,
        seed=args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31),
        feed_seconds=args.feed_seconds,
        kills=args.kills,
        kill_services=services,
        kill=not args.no_kill and args.kills > 0 and bool(services),
        broker_restart=not args.no_broker_restart,
        api_faults=not args.no_api_faults,
        webhook_chaos=not args.no_webhook_chaos,
        provider_outage=not args.no_provider_outage,
        fuzz=not args.no_fuzz and args.fuzz_examples > 0,
        fuzz_examples=args.fuzz_examples,
        time_scale=args.time_scale,
        transcript_delay=args.transcript_delay,
        session_timeout=args.session_timeout,
        drain_timeout=args.drain_timeout,
        stall_timeout=args.stall_timeout,
        name=args.name,
        ledger_dir=args.ledger_dir,
        keep=not args.clean,
    )
