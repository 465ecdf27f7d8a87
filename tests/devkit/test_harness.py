"""The development harness's own logic (devkit): chaos options and fault schedule, the demo's outcome checks."""

from __future__ import annotations

import random
import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from devkit import demo, stack
from devkit.chaos import faults
from devkit.chaos.checks.outcomes import expected
from devkit.chaos.faults import lost, store
from devkit.chaos.options import FAULT_SWITCHES, KNOBS, Options, parse_args
from devkit.docs import example_failed, example_ready
from devkit.ports import free_port_pair


@pytest.mark.unit
def test_every_fault_switch_and_knob_is_an_option_field() -> None:
    fields = set(Options.__dataclass_fields__)
    assert {name.replace("-", "_") for name in [*FAULT_SWITCHES, *KNOBS]} <= fields


@pytest.mark.unit
def test_options_turn_faults_off_and_keep_the_defaults() -> None:
    options = parse_args(["--recordings", "40", "--no-kill", "--no-fuzz", "--seed", "7", "--time-scale", "0.5"])
    assert (options.recordings, options.seed, options.time_scale) == (40, 7, 0.5)
    assert not options.kill and not options.fuzz
    assert options.broker_restart and options.api_faults and options.webhook_chaos and options.provider_outage
    assert options.stall_timeout == Options.stall_timeout
    assert not parse_args(["--kills", "0"]).kill  # no kills asked for: the kill fault is off
    assert not parse_args(["--fuzz-examples", "0"]).fuzz


@pytest.mark.unit
def test_options_refuse_an_unknown_service_to_kill() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--kill-services", "ingest,recall_sim"])


def _chaos(options: Options) -> Any:
    return SimpleNamespace(options=options, rng=random.Random(1), events=[])


@pytest.mark.unit
def test_the_schedule_holds_one_task_per_killable_service_one_broker_restart_and_one_store_outage() -> None:
    chaos = _chaos(Options(kill_services=("ingest", "fetcher")))
    tasks = faults.schedule(chaos)
    try:
        names = [task.__qualname__ for task in tasks]  # type: ignore[attr-defined]
        assert names == ["killer", "killer", "restart_broker", "store_outage"]
    finally:
        for task in tasks:
            task.close()  # type: ignore[attr-defined]
    assert [event.kind for event in chaos.events] == ["worker-exceptions"]  # on for the whole run: recorded now
    quiet = _chaos(Options(kill=False, broker_restart=False, store_outage=False, worker_exceptions=False))
    assert faults.schedule(quiet) == [] and quiet.events == []


@pytest.mark.unit
def test_the_fault_settings_reach_the_workers_only_when_their_faults_are_on() -> None:
    env = faults.worker_env(Options())
    assert env["transcriber"]["TRANSCRIBER_FAULT_PROBABILITY"] == env["fetcher"]["FETCHER_FAULT_PROBABILITY"] == "0.05"
    assert float(env["transcriber"]["TRANSCRIBER_DEADLINE_SECONDS"]) < 60  # a lost transcript.done ends in the run
    assert faults.worker_env(Options(worker_exceptions=False, lost_webhooks=False, slow_transcripts=False)) == {}
    off = parse_args(["--no-worker-exceptions", "--no-store-outage", "--no-lost-webhooks", "--no-slow-transcripts"])
    assert not (off.worker_exceptions or off.store_outage or off.lost_webhooks or off.slow_transcripts)
    assert Options().worker_exceptions and Options().lost_webhooks


@pytest.mark.unit
def test_lost_webhooks_pick_disjoint_recordings_for_each_kind() -> None:
    chaos = _chaos(Options())
    chaos.live = SimpleNamespace(planned={f"rec_{i}": None for i in range(100)})
    chaos.lost = {}
    lost.choose(chaos)
    transcript = [rid for rid, events in chaos.lost.items() if events == lost.TRANSCRIPT_EVENTS]
    recording = [rid for rid, events in chaos.lost.items() if events == lost.RECORDING_EVENTS]
    assert (len(transcript), len(recording)) == (5, 3)


@pytest.mark.unit
def test_the_store_outage_makes_writes_fail_with_an_oserror_and_puts_everything_back(tmp_path: Path) -> None:
    root = tmp_path / "transcripts"
    (root / "a").mkdir(parents=True)
    (root / "a" / "kept.json").write_text("{}")
    aside = store.block(root)
    with pytest.raises(NotADirectoryError):
        (root / "b").mkdir(parents=True, exist_ok=True)
    with pytest.raises(NotADirectoryError):
        (root / "a" / "new.json").write_text("{}")
    store.unblock(root, aside)
    assert (root / "a" / "kept.json").read_text() == "{}" and not aside.exists()
    (root / "b").mkdir()


def _planned(kind: str, **outcome: Any) -> demo.Planned:
    item = demo.Planned("rec_5f1c2b9e", kind)
    for name, value in outcome.items():
        setattr(item, name, value)
    return item


@pytest.mark.unit
def test_a_ready_transcript_from_the_primary_is_as_planned() -> None:
    assert _planned("primary", ready=example_ready(), ready_events=1).problems() == []


@pytest.mark.unit
def test_a_fallback_recording_must_end_on_the_fallback_unless_chaos_allows_either() -> None:
    item = _planned("fallback", ready=example_ready(), ready_events=1)
    assert item.problems() == ["provider recallai_async, expected deepgram_async"]
    primary = _planned("primary", ready=example_ready().model_copy(update={"provider": "deepgram_async"}))
    primary.ready_events = 1
    outage = _chaos(Options(provider_outage=True))
    assert expected(outage, primary) == []
    assert expected(_chaos(Options(provider_outage=False)), primary) == [
        "provider deepgram_async, expected recallai_async"
    ]


@pytest.mark.unit
def test_a_doomed_recording_must_fail_after_the_whole_chain_and_only_once() -> None:
    failed = example_failed()
    assert _planned("doomed", failed=failed, failed_events=1).problems(chain_length=len(failed.attempts)) == []
    assert _planned("doomed", failed=failed, failed_events=2).problems()[0].startswith("announced more than once")
    assert _planned("doomed").problems() == ["expected transcripts.failed"]


@pytest.mark.unit
def test_the_demo_counts_each_announcement_of_a_recording() -> None:
    run = demo.Demo(stack.PROFILES["demo"])
    ready = example_ready()
    run.planned[ready.recording_id] = demo.Planned(ready.recording_id, "primary")
    run.take("transcripts.ready", ready.model_dump_json().encode())
    run.take("transcripts.ready", ready.model_dump_json().encode())
    run.take(
        "transcripts.failed", example_failed().model_copy(update={"recording_id": "other"}).model_dump_json().encode()
    )
    assert run.ready_counts == {ready.recording_id: 2}
    assert run.failed_counts == {}
    assert demo.outcome_columns(run.planned[ready.recording_id])[:4] == ("recallai_async", "1", "5321", "2")


@pytest.mark.integration
def test_a_free_port_pair_is_two_bindable_loopback_ports() -> None:
    port = free_port_pair()
    with socket.socket() as first, socket.socket() as second:
        first.bind(("127.0.0.1", port))
        second.bind(("127.0.0.1", port + 1))


@pytest.mark.unit
def test_a_cluster_profile_bootstraps_from_every_node() -> None:
    profile = stack.Profile("p", 40000, 1, 2, 3, 4, brokers=3)
    assert profile.bootstrap == "127.0.0.1:40000,127.0.0.1:40002,127.0.0.1:40004"
    assert profile.replication_factor == 3
    assert stack.Profile("p", 40000, 1, 2, 3, 4).bootstrap == "127.0.0.1:40000"


@pytest.mark.unit
def test_replicas_differ_in_name_port_and_data_directory_only() -> None:
    profile = stack.Profile("p", 40000, 41000, 42000, 43000, 44000, brokers=3)
    processes = {p.name: p for p in stack.processes(profile, replicas=2)}
    services = ("ingest", "transcriber", "fetcher")
    assert set(processes) == {"recall_sim", *services, *(f"{service}-2" for service in services)}
    first, second = processes["transcriber"], processes["transcriber-2"]
    assert second.service == "transcriber" and second.port != first.port
    assert second.env["TRANSCRIBER_DATA_DIR"] != first.env["TRANSCRIBER_DATA_DIR"]
    assert second.env["TRANSCRIBER_WEB_PORT"] == str(second.port)
    assert second.ready_url.endswith(f":{second.port}/readyz")
    assert second.env["KAFKA_TOPIC_REPLICATION_FACTOR"] == "3"
    assert second.env["KAFKA_BOOTSTRAP_SERVERS"] == profile.bootstrap
    # The Service port is left to the balancer: no ingest replica listens on it.
    assert profile.ingest_port not in {processes["ingest"].port, processes["ingest-2"].port}
    assert {processes["ingest"].env["INGEST_PORT"], processes["ingest-2"].env["INGEST_PORT"]} == {
        str(processes["ingest"].port),
        str(processes["ingest-2"].port),
    }


@pytest.mark.unit
def test_distributed_faults_need_the_topology_they_act_on() -> None:
    single = parse_args(["--seed", "1"])
    assert not (single.leader_kill or single.rolling_restart or single.scale_fetcher or single.freeze)
    assert not single.failover
    distributed = parse_args(["--seed", "1", "--brokers", "3", "--replicas", "2", "--no-freeze"])
    assert distributed.leader_kill and distributed.rolling_restart and distributed.scale_fetcher
    assert distributed.failover and not distributed.freeze
    with pytest.raises(SystemExit):
        parse_args(["--replicas", "0"])


@pytest.mark.unit
def test_the_distributed_schedule_adds_its_faults() -> None:
    options = Options(kill=False, broker_restart=False, store_outage=False, brokers=3, replicas=2)
    tasks = faults.schedule(_chaos(options))
    try:
        names = sorted(task.__qualname__ for task in tasks)  # type: ignore[attr-defined]
    finally:
        for task in tasks:
            task.close()  # type: ignore[attr-defined]
    assert names == ["fail_over", "freeze", "kill_leader", "roll", "roll", "roll", "scale"]


@pytest.mark.unit
def test_the_harness_holds_replicas_to_the_manifests_grace_periods() -> None:
    from devkit.chaos.faults.pods import grace_seconds

    # Worker shutdown: an in-flight Recall call (30 s timeout) and the final commit; ingest: its flush (10 s).
    assert grace_seconds("transcriber") >= 30 and grace_seconds("fetcher") >= 30
    assert grace_seconds("ingest") >= 10


@pytest.mark.unit
def test_a_free_port_block_is_bindable_end_to_end() -> None:
    from devkit.ports import free_port_block

    start = free_port_block(6)
    sockets = [socket.socket() for _ in range(6)]
    try:
        for offset, probe in enumerate(sockets):
            probe.bind(("127.0.0.1", start + offset))
    finally:
        for probe in sockets:
            probe.close()
