"""recall-pipeline without a broker: help everywhere, and bad input or configuration refused with exit 2 before any
connection is attempted."""

from __future__ import annotations

import pytest

from tests.cli.conftest import invoke_sync

pytestmark = pytest.mark.unit

COMMANDS = [
    (),
    ("recording",),
    ("recording", "show"),
    ("recording", "retranscribe"),
    ("dlq",),
    ("dlq", "replay"),
    ("ready",),
    ("ready", "tail"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_every_command_has_help_naming_the_exit_codes(command: tuple[str, ...]) -> None:
    for flag in ("--help", "-h"):
        result = invoke_sync(*command, flag)
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("Usage: ")
        assert "Exit codes: 0 done; 1 nothing found or the work failed; 2 usage or" in result.stdout


def test_the_version_is_printed() -> None:
    result = invoke_sync("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("recall-pipeline, version 0.1.0")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("dlq", "replay", "fetcher.dlq", "--offset", "abc"), "'abc' is not OFFSET or PARTITION:OFFSET"),
        (("dlq", "replay", "fetcher.dlq", "--offset", "-3"), "'-3' is not OFFSET or PARTITION:OFFSET"),
        (("dlq", "replay", "fetcher.dlq", "--offset", "0:x"), "is not OFFSET or PARTITION:OFFSET"),
        (("dlq", "replay", "fetcher.dlq", "--key", ""), "must be 1-256 characters"),
        (("dlq", "replay", "fetcher.dlq", "--key", "has space"), "must be 1-256 characters"),
        (("dlq", "replay", "not a topic!", "--all"), "is not a Kafka topic name"),
        (("dlq", "replay", "fetcher.dlq"), "say which records to replay"),
        (("dlq", "replay", "fetcher.dlq", "--all", "--key", "k"), "do not combine it with --key or --offset"),
        (("dlq", "replay", "fetcher.dlq", "--all", "--timeout", "0"), "Invalid value for '--timeout'"),
        (("recording", "show", "rec 1"), "must be 1-256 characters"),
        (("recording", "show"), "Missing argument 'RECORDING_ID'"),
        (("recording", "show", "rec_1", "--topic", "a/b"), "is not a Kafka topic name"),
        (("ready", "tail", "--max", "0"), "Invalid value for '--max'"),
        (("ready", "tail", "--timeout", "-1"), "Invalid value for '--timeout'"),
        (("recording", "retranscribe", "rec_1", "--provider", "{nope"), "is not valid JSON"),
        (("recording", "retranscribe", "rec_1", "--provider", '{"whisper_async": {}}'), "unknown provider"),
        (("recording", "retranscribe", "rec_1", "--provider", "[]"), "must be an object like"),
        (("nope",), "No such command 'nope'"),
    ],
)
def test_bad_usage_exits_2_saying_what_is_wrong(args: tuple[str, ...], message: str) -> None:
    result = invoke_sync(*args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr, result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("servers", ["localhost", "127.0.0.1:99999", ",", "host:port"])
def test_a_malformed_broker_address_is_a_configuration_error(servers: str) -> None:
    for args in (("-b", servers), ()):
        env = {} if args else {"KAFKA_BOOTSTRAP_SERVERS": servers}
        result = invoke_sync(*args, "ready", "tail", "--timeout", "1", env=env)
        assert result.exit_code == 2, result.output
        assert "KAFKA_BOOTSTRAP_SERVERS" in result.stderr
        assert "invalid configuration" in result.stderr


def test_retranscribe_refuses_clearly_without_an_api_key() -> None:
    result = invoke_sync("recording", "retranscribe", "rec_1", env={"RECALL_API_BASE_URL": "http://127.0.0.1:1"})
    assert result.exit_code == 2
    assert "RECALL_API_KEY is not set" in result.stderr
    assert result.stdout == ""


def test_retranscribe_names_a_bad_recall_setting_without_echoing_the_key() -> None:
    result = invoke_sync(
        "recording",
        "retranscribe",
        "rec_1",
        env={"RECALL_API_KEY": "super-secret-key", "RECALL_API_BASE_URL": "ftp://recall"},
    )
    assert result.exit_code == 2
    assert "RECALL_API_BASE_URL: must be an http(s) URL" in result.stderr
    assert "super-secret-key" not in result.output


@pytest.mark.parametrize(
    ("chain", "message"),
    [
        ("not json", "TRANSCRIBER_PROVIDERS is not valid JSON"),
        ("[]", "must be a non-empty JSON list"),
        ('[{"nope": {}}]', "TRANSCRIBER_PROVIDERS: provider configuration"),
    ],
)
def test_retranscribe_rejects_a_bad_default_provider_chain(chain: str, message: str) -> None:
    result = invoke_sync(
        "recording", "retranscribe", "rec_1", env={"RECALL_API_KEY": "k", "TRANSCRIBER_PROVIDERS": chain}
    )
    assert result.exit_code == 2
    assert message in result.stderr
