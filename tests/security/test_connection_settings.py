"""The one Kafka connection configuration: what every client gets from KAFKA_* and how a wrong one is refused."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import faust
import pytest

from pipeline_common.settings import ConfigError, KafkaSettings, load_settings
from pipeline_common.streaming import broker_credentials, create_faust_app
from pipeline_common.worker_settings import FaustWorker

pytestmark = pytest.mark.unit

PASSWORD = "s3cr3t-Pa55word-never-printed"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("KAFKA_"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA and a client certificate signed by it, made with openssl (as scripts/kafka-local does)."""
    home = tmp_path_factory.mktemp("pki")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=home, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=test-ca")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "user.key", "-out", "user.csr", "-subj", "/CN=ingest")
    run("x509", "-req", "-in", "user.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out",
        "user.crt", "-days", "2")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out", "other.csr", "-subj", "/CN=x")
    (home / "garbage.pem").write_text("not a certificate\n")
    (home / "password").write_text(PASSWORD + "\n")
    return {name: home / name for name in ("ca.crt", "user.crt", "user.key", "other.key", "garbage.pem", "password")}


def problems_of(**env: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(KafkaSettings, **{key.lower(): value for key, value in env.items()})
    assert PASSWORD not in str(caught.value)
    return caught.value.problems


def test_plaintext_is_the_default_and_builds_no_tls() -> None:
    settings = load_settings(KafkaSettings)
    kwargs = settings.aiokafka_connection_kwargs()
    assert kwargs["security_protocol"] == "PLAINTEXT"
    assert "ssl_context" not in kwargs and "sasl_mechanism" not in kwargs
    assert broker_credentials(settings) is None


def test_sasl_ssl_scram_gives_aiokafka_an_ssl_context_and_the_password(pki: dict[str, Path]) -> None:
    settings = load_settings(
        KafkaSettings,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="ingest",
        kafka_sasl_password=PASSWORD,
        kafka_ssl_cafile=str(pki["ca.crt"]),
    )
    kwargs = settings.aiokafka_connection_kwargs()
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)
    assert kwargs["ssl_context"].check_hostname is True
    assert kwargs["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    assert (kwargs["sasl_mechanism"], kwargs["sasl_plain_username"]) == ("SCRAM-SHA-512", "ingest")
    assert kwargs["sasl_plain_password"] == PASSWORD
    assert PASSWORD not in repr(settings)


def test_the_password_can_come_from_a_mounted_file(pki: dict[str, Path]) -> None:
    settings = load_settings(
        KafkaSettings,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="ingest",
        kafka_sasl_password_file=str(pki["password"]),
        kafka_ssl_cafile=str(pki["ca.crt"]),
    )
    assert settings.aiokafka_connection_kwargs()["sasl_plain_password"] == PASSWORD


def test_faust_apps_get_the_same_credentials(pki: dict[str, Path]) -> None:
    settings = load_settings(
        KafkaSettings,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="transcriber",
        kafka_sasl_password=PASSWORD,
        kafka_ssl_cafile=str(pki["ca.crt"]),
    )
    worker = FaustWorker("t-app", "/tmp/t-app", 6, "earliest", "127.0.0.1", 6066, 10.0)
    app = create_faust_app(settings, worker)
    credentials = app.conf.broker_credentials
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL"
    assert (credentials.username, credentials.password) == ("transcriber", PASSWORD)
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert isinstance(credentials.ssl_context, ssl.SSLContext)


def test_mutual_tls_loads_the_client_certificate(pki: dict[str, Path]) -> None:
    settings = load_settings(
        KafkaSettings,
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=str(pki["ca.crt"]),
        kafka_ssl_certfile=str(pki["user.crt"]),
        kafka_ssl_keyfile=str(pki["user.key"]),
    )
    assert settings.aiokafka_connection_kwargs()["security_protocol"] == "SSL"
    credentials = broker_credentials(settings)
    assert isinstance(credentials, faust.SSLCredentials)
    assert credentials.protocol.value == "SSL"


def test_hostname_verification_can_be_turned_off_but_not_verification(pki: dict[str, Path]) -> None:
    settings = load_settings(
        KafkaSettings,
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=str(pki["ca.crt"]),
        kafka_ssl_check_hostname="false",
    )
    context = settings.aiokafka_connection_kwargs()["ssl_context"]
    assert context.check_hostname is False
    assert context.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_USERNAME": "u"},
         "KAFKA_SASL_PASSWORD: required"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": PASSWORD},
         "KAFKA_SASL_MECHANISM: required"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_PASSWORD": PASSWORD},
         "KAFKA_SASL_USERNAME: required"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "GSSAPI", "KAFKA_SASL_USERNAME": "u",
          "KAFKA_SASL_PASSWORD": PASSWORD}, "KAFKA_SASL_MECHANISM"),
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": "/nonexistent/ca.crt"},
         "KAFKA_SSL_CAFILE: cannot read /nonexistent/ca.crt"),
        ({"KAFKA_SECURITY_PROTOCOL": "PLAINTEXT", "KAFKA_SASL_PASSWORD": PASSWORD},
         "KAFKA_SASL_PASSWORD: set, but KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not use SASL"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "u",
          "KAFKA_SASL_PASSWORD": PASSWORD, "KAFKA_SSL_CAFILE": "/x"}, "KAFKA_SSL_CAFILE: set, but"),
    ],
)  # fmt: skip
def test_invalid_combinations_name_the_variable(env: dict[str, str], expected: str) -> None:
    problems = problems_of(**env)
    assert any(problem.startswith(expected) for problem in problems), problems


def test_sasl_password_and_password_file_are_exclusive(pki: dict[str, Path]) -> None:
    problems = problems_of(
        KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        KAFKA_SASL_USERNAME="u",
        KAFKA_SASL_PASSWORD=PASSWORD,
        KAFKA_SASL_PASSWORD_FILE=str(pki["password"]),
    )
    assert any("KAFKA_SASL_PASSWORD_FILE" in problem for problem in problems), problems


def test_a_ca_file_that_is_not_a_certificate_is_refused(pki: dict[str, Path]) -> None:
    problems = problems_of(KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CAFILE=str(pki["garbage.pem"]))
    assert any(problem.startswith("KAFKA_SSL_CAFILE: ") and "certificate" in problem for problem in problems)


def test_a_certificate_without_its_key_is_refused(pki: dict[str, Path]) -> None:
    problems = problems_of(
        KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CAFILE=str(pki["ca.crt"]), KAFKA_SSL_CERTFILE=str(pki["user.crt"])
    )
    assert any(problem.startswith("KAFKA_SSL_KEYFILE: required") for problem in problems), problems


def test_a_key_that_does_not_match_the_certificate_is_refused(pki: dict[str, Path]) -> None:
    problems = problems_of(
        KAFKA_SECURITY_PROTOCOL="SSL",
        KAFKA_SSL_CAFILE=str(pki["ca.crt"]),
        KAFKA_SSL_CERTFILE=str(pki["user.crt"]),
        KAFKA_SSL_KEYFILE=str(pki["other.key"]),
    )
    assert any(problem.startswith("KAFKA_SSL_KEYFILE: ") for problem in problems), problems


def test_without_a_ca_file_the_system_trust_store_is_used() -> None:
    """Confluent Cloud style: a public CA, no KAFKA_SSL_CAFILE."""
    settings = load_settings(
        KafkaSettings,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="APIKEY",
        kafka_sasl_password=PASSWORD,
    )
    context = settings.aiokafka_connection_kwargs()["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname is True


STRIMZI_JAAS = (
    'org.apache.kafka.common.security.scram.ScramLoginModule required username="fetcher" password="' + PASSWORD + '";'
)


def test_the_strimzi_sasl_jaas_config_key_supplies_user_and_password(pki: dict[str, Path]) -> None:
    settings = load_settings(
        KafkaSettings,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_jaas_config=STRIMZI_JAAS,
        kafka_ssl_cafile=str(pki["ca.crt"]),
    )
    kwargs = settings.aiokafka_connection_kwargs()
    assert (kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == ("fetcher", PASSWORD)
    credentials = broker_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.password) == ("fetcher", PASSWORD)
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings.kafka_connection_summary())


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"KAFKA_SASL_JAAS_CONFIG": "not jaas " + PASSWORD}, "KAFKA_SASL_JAAS_CONFIG: not a ScramLoginModule"),
        ({"KAFKA_SASL_JAAS_CONFIG": STRIMZI_JAAS, "KAFKA_SASL_PASSWORD": PASSWORD},
         "KAFKA_SASL_JAAS_CONFIG: set together"),
        ({"KAFKA_SASL_JAAS_CONFIG": STRIMZI_JAAS, "KAFKA_SASL_USERNAME": "ingest"},
         "KAFKA_SASL_USERNAME: 'ingest' differs"),
    ],
)  # fmt: skip
def test_a_jaas_config_that_does_not_fit_is_refused(extra: dict[str, str], expected: str) -> None:
    problems = problems_of(KAFKA_SECURITY_PROTOCOL="SASL_SSL", KAFKA_SASL_MECHANISM="SCRAM-SHA-512", **extra)
    assert any(problem.startswith(expected) for problem in problems), problems
