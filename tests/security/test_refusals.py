"""A connection the secured broker refuses stops a service at start-up, at once, saying what to fix, and never
prints the secret: a wrong password, a CA that did not sign the broker's certificate, a plaintext client on the TLS
port, no client certificate on the mutual-TLS port. Each service is the real process (``python -m <service>``)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from devkit import stack
from tests.support.broker import ROOT, SecuredBroker

pytestmark = pytest.mark.integration

#: Far below the five minutes the services otherwise keep retrying an unreachable cluster.
FAIL_FAST_SECONDS = 30


def run_refused(broker: SecuredBroker, service: str, how: str, tmp_path: Path, **changes: str) -> tuple[str, float]:
    """Start ``service`` with its own client settings changed by ``changes``; return its stderr and run time."""
    profile = stack.ephemeral_profile(f"refused-{service}-{uuid.uuid4().hex[:6]}")
    process = next(p for p in stack.processes(profile) if p.name == service)
    env = {**process.env, **broker.client_env(service, how), **changes}
    env = {key: value for key, value in env.items() if value != ""}
    env[f"{service.upper()}_DATA_DIR"] = str(tmp_path / "data")
    started = time.monotonic()
    result = subprocess.run(
        process.argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=FAIL_FAST_SECONDS * 3
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 2, f"{service} exited {result.returncode}:\n{result.stderr[-3000:]}"
    return result.stderr, elapsed


def other_ca(tmp_path: Path) -> Path:
    """A CA of its own: well-formed, but not the one that signed the broker's certificate."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "other.key"),
         "-out", str(tmp_path / "other-ca.crt"), "-days", "1", "-subj", "/CN=not-the-cluster-ca"],
        check=True, capture_output=True,
    )  # fmt: skip
    return tmp_path / "other-ca.crt"


@pytest.mark.parametrize("service", ["ingest", "transcriber"])
def test_a_wrong_password_is_refused_at_start_up(secured_broker: SecuredBroker, service: str, tmp_path: Path) -> None:
    wrong = f"wrong-{uuid.uuid4().hex}"
    stderr, elapsed = run_refused(
        secured_broker, service, "scram", tmp_path, KAFKA_SASL_PASSWORD_FILE="", KAFKA_SASL_PASSWORD=wrong
    )
    assert elapsed < FAIL_FAST_SECONDS
    assert "KAFKA_SASL_PASSWORD:" in stderr and f"rejected user '{service}' with SCRAM-SHA-512" in stderr, stderr
    assert wrong not in stderr


def test_a_broker_certificate_from_another_ca_is_refused(secured_broker: SecuredBroker, tmp_path: Path) -> None:
    stderr, elapsed = run_refused(
        secured_broker, "fetcher", "scram", tmp_path, KAFKA_SSL_CAFILE=str(other_ca(tmp_path))
    )
    assert elapsed < FAIL_FAST_SECONDS
    assert "KAFKA_SSL_CAFILE: the certificate of 127.0.0.1:" in stderr and "is not signed by a CA in" in stderr, stderr
    password = (secured_broker.user_dir("fetcher") / "password").read_text().strip()
    assert password not in stderr


def test_a_plaintext_client_on_the_tls_port_is_refused(secured_broker: SecuredBroker, tmp_path: Path) -> None:
    plaintext = {
        "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
        "KAFKA_SASL_MECHANISM": "",
        "KAFKA_SASL_USERNAME": "",
        "KAFKA_SASL_PASSWORD_FILE": "",
        "KAFKA_SSL_CAFILE": "",
    }
    stderr, elapsed = run_refused(secured_broker, "ingest", "scram", tmp_path, **plaintext)
    assert elapsed < FAIL_FAST_SECONDS
    assert f"KAFKA_SECURITY_PROTOCOL: 127.0.0.1:{secured_broker.port} speaks TLS" in stderr, stderr


def test_no_client_certificate_on_the_mutual_tls_port_is_refused(secured_broker: SecuredBroker, tmp_path: Path) -> None:
    stderr, elapsed = run_refused(
        secured_broker, "fetcher", "mtls", tmp_path, KAFKA_SSL_CERTFILE="", KAFKA_SSL_KEYFILE=""
    )
    assert elapsed < FAIL_FAST_SECONDS
    assert f"KAFKA_SSL_CERTFILE: 127.0.0.1:{secured_broker.mtls_port} requires a client certificate" in stderr, stderr


def test_a_certificate_without_its_key_is_refused_before_connecting(
    secured_broker: SecuredBroker, tmp_path: Path
) -> None:
    stderr, _ = run_refused(secured_broker, "transcriber", "mtls", tmp_path, KAFKA_SSL_KEYFILE="")
    assert "KAFKA_SSL_KEYFILE: required with KAFKA_SSL_CERTFILE" in stderr, stderr
    assert "BEGIN" not in stderr  # no key or certificate material


def run_cli(broker: SecuredBroker, user: str, **changes: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in {**broker.client_env(user, "scram"), **changes}.items() if value}
    env["PATH"] = "/usr/bin:/bin"
    cli = str(Path(sys.executable).with_name("recall-pipeline"))
    return subprocess.run(
        [cli, "recording", "show", "00000000-0000-4000-8000-000000000000"],
        env=env, capture_output=True, text=True, timeout=FAIL_FAST_SECONDS * 2,
    )  # fmt: skip


def test_the_cli_uses_the_same_connection_settings(secured_broker: SecuredBroker) -> None:
    connected = run_cli(secured_broker, "admin")
    assert "no events for recording" in connected.stderr, connected.stderr  # it read every topic, over SCRAM/TLS
    wrong = f"wrong-{uuid.uuid4().hex}"
    refused = run_cli(secured_broker, "admin", KAFKA_SASL_PASSWORD_FILE="", KAFKA_SASL_PASSWORD=wrong)
    assert refused.returncode != 0
    assert "KAFKA_SASL_PASSWORD:" in refused.stderr and "rejected user 'admin'" in refused.stderr, refused.stderr
    assert wrong not in refused.stderr + refused.stdout
