"""scripts/kafka-local's secured mode: what the broker is configured with, and what it refuses to print."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pipeline_common.acls import USERS
from tests.support.broker import KAFKA_LOCAL, SecuredBroker


def properties(path: Path) -> dict[str, str]:
    lines = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))
    return {key: value for key, value in lines}


@pytest.mark.integration
def test_the_secured_broker_has_no_plaintext_listener_and_denies_by_default(secured_broker: SecuredBroker) -> None:
    config = properties(secured_broker.state_dir / "server.properties")
    assert "PLAINTEXT" not in config["listeners"].replace("SASL_SSL", "")
    assert config["listener.security.protocol.map"] == "SASL_SSL:SASL_SSL,MTLS:SSL,CONTROLLER:SSL"
    assert config["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert config["allow.everyone.if.no.acl.found"] == "false"
    assert config["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert config["listener.name.mtls.ssl.client.auth"] == "required"
    assert config["super.users"] == "User:kafka-local-broker;User:admin"
    for user in ("admin", *USERS):
        password = (secured_broker.user_dir(user) / "password").read_text()
        assert password not in (secured_broker.state_dir / "server.properties").read_text()
        assert oct((secured_broker.user_dir(user) / "user.key").stat().st_mode & 0o777) == "0o600"


@pytest.mark.integration
def test_client_env_prints_files_never_the_password(secured_broker: SecuredBroker) -> None:
    env = secured_broker.client_env("ingest", "scram")
    password = (secured_broker.user_dir("ingest") / "password").read_text()
    assert password not in "".join(env.values())
    assert Path(env["KAFKA_SASL_PASSWORD_FILE"]).read_text() == password
    assert env["KAFKA_CREATE_TOPICS"] == "false"


@pytest.mark.unit
def test_client_env_on_a_plaintext_broker_says_it_is_not_secured(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(KAFKA_LOCAL), "client-env", "ingest"],
        env={**os.environ, "KAFKA_STATE_DIR": str(tmp_path), "KAFKA_LOCAL_MODE": "plaintext"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "this broker is not secured" in result.stderr
