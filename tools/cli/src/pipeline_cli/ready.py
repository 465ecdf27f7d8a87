"""``recall-pipeline ready``: watch ``transcripts.ready`` as a downstream service sees it."""

from __future__ import annotations

import click

from pipeline_cli import render
from pipeline_cli.arguments import check_recording_id, timeout_option
from pipeline_cli.common import EPILOG, Failure, Options, run, warn, within
from pipeline_cli.kafka import KafkaReader, servers
from pipeline_common.topics import (
    TRANSCRIPTS_READY,
)


@click.group(epilog=EPILOG)
def ready() -> None:
    """transcripts.ready: what downstream services receive."""


@ready.command("tail", epilog=EPILOG)
@click.option("--from-beginning", is_flag=True, help="Start at the oldest retained event, not at the end.")
@click.option("--max", "max_events", type=click.IntRange(min=1), metavar="N", help="Stop after N events.")
@timeout_option("Stop after this long.", default=None)
@click.option("--key", "recording_id", callback=check_recording_id, metavar="RECORDING_ID", help="Only this recording.")
@click.option("--json", "as_json", is_flag=True, help="Print each event's record as JSON.")
@click.pass_obj
def ready_tail(
    options: Options,
    from_beginning: bool,
    max_events: int | None,
    timeout: float | None,
    recording_id: str | None,
    as_json: bool,
) -> None:
    """Print transcripts.ready events as they arrive, one line each (Ctrl-C stops). With --max or --timeout it
    stops by itself: exit 0 when it saw its N events (or, without --max, at least one), else 1."""
    settings = options.kafka()
    topic = TRANSCRIPTS_READY.name
    count = 0
    key = recording_id.encode() if recording_id is not None else None

    async def tail() -> None:
        nonlocal count
        async with KafkaReader(settings) as kafka:
            if not kafka.exists(topic):
                raise Failure(
                    f"{topic} does not exist on {servers(settings)}: is the pipeline deployed? "
                    "(its services create the topics at start-up)"
                )
            where = "the beginning" if from_beginning else "the end"
            async for record in kafka.follow(
                topic, from_beginning=from_beginning, on_ready=lambda: warn(f"tailing {topic} from {where} ...")
            ):
                if key is not None and record.key != key:
                    continue
                click.echo(render.as_json(record) if as_json else render.tail_line(record))
                count += 1
                if max_events is not None and count >= max_events:
                    return

    try:
        run(within(timeout, tail()) if timeout is not None else tail())
    except TimeoutError:
        pass
    except KeyboardInterrupt:
        warn(f"stopped after {count} event(s)")
        return
    if max_events is not None and count < max_events:
        raise Failure(f"got {count} of {max_events} event(s) within {timeout:g}s")
    if timeout is not None and count == 0:
        raise Failure(f"no {topic} events within {timeout:g}s")
