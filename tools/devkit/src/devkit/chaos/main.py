"""``make chaos``: start the stack, run, write and print the ledger, stop everything (see :mod:`devkit.chaos`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

from devkit import stack
from devkit.chaos.harness import Chaos
from devkit.chaos.ledger import Ledger, print_ledger, versions
from devkit.chaos.options import CHAIN, Options, log, parse_args
from devkit.chaos.stack_control import chaos_processes, prepare_home


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # a restarting broker is expected here
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(SystemExit(143)))
    profile = stack.ephemeral_profile(options.name, options.brokers)
    options.ledger_dir.mkdir(parents=True, exist_ok=True)
    prepare_home(profile, options.ledger_dir)
    log(
        f"seed {options.seed}; {options.recordings} recordings; {options.brokers} broker(s), "
        f"{options.replicas} replica(s) of each service; stack in {profile.home} "
        f"(kafka {profile.bootstrap}, ingest :{profile.ingest_port}, recall_sim :{profile.sim_port})"
    )
    started_at = datetime.now(UTC)
    started = time.monotonic()
    info = versions()
    ledger: Ledger
    processes: list[stack.Process] = []
    try:
        profile = start_kafka(profile, options)
        processes = chaos_processes(profile, options)
        for process in processes:
            stack.start(profile, process)
        stack.wait_ready(profile, processes, 300)
        log(f"stack ready in {time.monotonic() - started:.1f}s")
        ledger = asyncio.run(Chaos(profile, processes, options).run())
    except (Exception, KeyboardInterrupt, SystemExit) as error:
        ledger = Ledger()
        ledger.check("harness ran to the end", False, f"{type(error).__name__}: {error}"[:1000])
        log(f"[red]stopped early: {type(error).__name__}: {error}[/]")
    finally:
        with contextlib.suppress(BaseException):
            stack.down(profile)
    ledger.sections = {
        "run": {
            "started_at": started_at.isoformat(),
            "seconds": round(time.monotonic() - started, 1),
            "options": {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(options).items()}
            | {"feed_seconds": round(options.feed, 1)},
            "profile": {"home": str(profile.home), "kafka": profile.bootstrap},
            "chain": CHAIN,
            **info,
        },
        **ledger.sections,
    }
    path = options.ledger_dir / f"ledger-{started_at.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(ledger.to_json(), indent=2, default=str) + "\n")
    print_ledger(ledger, path)
    if ledger.ok and not options.keep:
        prepare_home(profile, options.ledger_dir)
        with contextlib.suppress(OSError):
            profile.home.rmdir()  # gone unless the ledgers live in it
    return 0 if ledger.ok else 1


def start_kafka(profile: stack.Profile, options: Options, attempts: int = 3) -> stack.Profile:
    """Kafka on free ports: a port picked free can be taken by someone else before the broker binds it (more likely
    with a cluster's six), so a start that fails is retried on new ports. The profile that started."""
    for attempt in range(1, attempts + 1):
        try:
            stack.kafka(profile, "start")
            return profile
        except SystemExit:
            with contextlib.suppress(BaseException):
                stack.kafka(profile, "stop")
            shutil.rmtree(profile.home / "kafka", ignore_errors=True)
            if attempt == attempts:
                raise
            profile = stack.ephemeral_profile(options.name, options.brokers)
            log(f"kafka did not start; again on new ports (kafka {profile.bootstrap})")
    raise AssertionError("unreachable")
