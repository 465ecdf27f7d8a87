"""``recall-pipeline``: look at and repair the pipeline from a terminal.

Exit codes: 0 done; 1 nothing found, or the work failed (Kafka or Recall unreachable or refusing, a deadline
passed, some records could not be replayed); 2 a usage or configuration error (bad option, unknown topic, malformed
key or offset, missing or invalid environment variable). Errors go to stderr; stdout carries only results.
"""

from __future__ import annotations

import click

from pipeline_cli.common import EPILOG, Options
from pipeline_cli.dlq import dlq
from pipeline_cli.ready import ready
from pipeline_cli.reconcile.commands import backfill, reconcile
from pipeline_cli.recording import recording
from pipeline_common.logging import configure_logging
from pipeline_common.settings import LogFormat, LoggingSettings


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110}, epilog=EPILOG)
@click.option(
    "--bootstrap-servers",
    "-b",
    metavar="HOST:PORT[,...]",
    help="Kafka brokers; default $KAFKA_BOOTSTRAP_SERVERS, else 127.0.0.1:9092.",
)
@click.option("--verbose", "-v", is_flag=True, help="Log what the Kafka and Recall clients do (to stderr).")
@click.version_option(package_name="recall-pipeline-cli", prog_name="recall-pipeline")
@click.pass_context
def cli(ctx: click.Context, bootstrap_servers: str | None, verbose: bool) -> None:
    """Operate the Recall.ai transcription pipeline: follow a recording across the topics, ask Recall for a new
    transcript, replay dead letters, watch transcripts.ready."""
    if verbose:
        _logging(verbose=True)
    ctx.obj = Options(bootstrap_servers=bootstrap_servers)


for group in (recording, dlq, ready):
    cli.add_command(group)


# ------------------------------------------------------------------------------------ reconcile, backfill
cli.add_command(reconcile)
cli.add_command(backfill)


def _logging(*, verbose: bool) -> None:
    """Client logs go to stderr, and only with --verbose: errors reach the user as one sentence each instead."""
    configure_logging(LoggingSettings(log_level="DEBUG" if verbose else "CRITICAL", log_format=LogFormat.CONSOLE))


def main() -> None:
    """The console script. (Tests call :data:`cli` in-process, which leaves the process's logging alone.)"""
    _logging(verbose=False)
    cli(prog_name="recall-pipeline")
