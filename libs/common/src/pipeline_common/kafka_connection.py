"""How a Kafka client here connects: the checks on the ``KAFKA_*`` security settings and the TLS context they build.

Pure functions over plain values, so :class:`pipeline_common.settings.KafkaSettings` validates with them and every
client (aiokafka producers, consumers and admin clients, the faust apps, the CLI, the harnesses) gets the same
context. The names follow Kafka's client properties (``security.protocol``, ``sasl.mechanism``,
``ssl.truststore``...) and the keys of the Secrets Strimzi generates (a ``KafkaUser`` Secret holds ``password``,
``user.crt`` and ``user.key``; the cluster CA Secret ``<cluster>-cluster-ca-cert`` holds ``ca.crt``), so those mount
straight in as files.

Every problem is one line ``VARIABLE: why``; none ever contains a secret's value.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

SASL_PROTOCOLS = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})
TLS_PROTOCOLS = frozenset({"SSL", "SASL_SSL"})


class SaslMechanism(StrEnum):
    PLAIN = "PLAIN"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512"


@dataclass(frozen=True)
class TlsFiles:
    """The PEM files of a TLS connection; ``cafile`` None means the system's trust store (a public CA)."""

    cafile: Path | None
    certfile: Path | None
    keyfile: Path | None
    key_password: str | None
    check_hostname: bool


def _readable(variable: str, path: Path) -> str | None:
    try:
        with path.open("rb") as handle:
            if not handle.read(1):
                return f"{variable}: {path} is empty"
    except OSError as error:
        return f"{variable}: cannot read {path} ({error.strerror or type(error).__name__})"
    return None


def ssl_context(files: TlsFiles) -> ssl.SSLContext:
    """A client context that verifies the broker's certificate (against ``cafile``, else the system CAs) and, when a
    certificate is given, presents it (mutual TLS). Raises ``ssl.SSLError``/``OSError`` on unusable files."""
    # aiokafka.helpers.create_ssl_context does the same, but always checks the hostname; we let an operator turn
    # only that off (a broker reached through an address its certificate does not name), never the verification.
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(files.cafile) if files.cafile else None)
    context.check_hostname = files.check_hostname
    context.verify_mode = ssl.CERT_REQUIRED
    if files.certfile is not None:
        context.load_cert_chain(
            str(files.certfile), str(files.keyfile) if files.keyfile else None, files.key_password or None
        )
    return context


def tls_problems(files: TlsFiles) -> list[str]:
    """What is wrong with the TLS files, one ``VARIABLE: why`` line each; building the context proves the rest."""
    problems: list[str] = []
    if files.cafile is not None:
        unreadable = _readable("KAFKA_SSL_CAFILE", files.cafile)
        if unreadable:
            return [unreadable]
        try:
            ssl.create_default_context(cafile=str(files.cafile))
        except ssl.SSLError:
            return [f"KAFKA_SSL_CAFILE: {files.cafile} holds no PEM certificate (expected the cluster CA's ca.crt)"]
    if (files.certfile is None) != (files.keyfile is None):
        missing = "KAFKA_SSL_KEYFILE" if files.keyfile is None else "KAFKA_SSL_CERTFILE"
        given = "KAFKA_SSL_CERTFILE" if files.keyfile is None else "KAFKA_SSL_KEYFILE"
        return [f"{missing}: required with {given} (mutual TLS needs the certificate and its private key)"]
    if files.certfile is not None and files.keyfile is not None:
        for variable, path in (("KAFKA_SSL_CERTFILE", files.certfile), ("KAFKA_SSL_KEYFILE", files.keyfile)):
            unreadable = _readable(variable, path)
            if unreadable:
                problems.append(unreadable)
        if problems:
            return problems
        try:
            ssl.create_default_context().load_cert_chain(
                str(files.certfile), str(files.keyfile), files.key_password or None
            )
        except ssl.SSLError as error:
            reason = error.reason or "unusable"
            if "KEY_VALUES_MISMATCH" in str(error) or reason == "KEY_VALUES_MISMATCH":
                return [f"KAFKA_SSL_KEYFILE: {files.keyfile} is not the private key of {files.certfile}"]
            if reason in {"PEM_LIB", "NO_START_LINE"}:
                return [
                    f"KAFKA_SSL_CERTFILE: {files.certfile} or KAFKA_SSL_KEYFILE: {files.keyfile} is not PEM "
                    "(or the key is encrypted: set KAFKA_SSL_KEY_PASSWORD)"
                ]
            return [f"KAFKA_SSL_KEYFILE: cannot load {files.keyfile} with {files.certfile} ({reason})"]
    return problems


_JAAS_OPTION = re.compile(r'(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"')
_JAAS_MODULES = (
    "org.apache.kafka.common.security.scram.ScramLoginModule",
    "org.apache.kafka.common.security.plain.PlainLoginModule",
)


@dataclass(frozen=True)
class JaasLogin:
    username: str
    password: str


def parse_jaas_config(value: str) -> JaasLogin | None:
    """The user name and password of Kafka's ``sasl.jaas.config`` for SCRAM or PLAIN (what a Strimzi KafkaUser Secret
    and Confluent Cloud hand out), or None when it is not one of those."""
    text = value.strip()
    if not text.startswith(_JAAS_MODULES) or " required" not in text:
        return None
    options = {key: raw.replace('\\"', '"') for key, raw in _JAAS_OPTION.findall(text)}
    if not options.get("username") or "password" not in options:
        return None
    return JaasLogin(options["username"], options["password"])


def jaas_problems(value: str | None, username: str | None, has_password: bool, password_file: Path | None) -> list[str]:
    if value is None:
        return []
    login = parse_jaas_config(value)
    if login is None:
        return [
            "KAFKA_SASL_JAAS_CONFIG: not a ScramLoginModule or PlainLoginModule entry with username and password "
            "(Strimzi: key sasl.jaas.config of the KafkaUser Secret)"
        ]
    if has_password or password_file is not None:
        return ["KAFKA_SASL_JAAS_CONFIG: set together with a password variable; set only one"]
    if username is not None and username != login.username:
        return [f"KAFKA_SASL_USERNAME: {username!r} differs from the user name in KAFKA_SASL_JAAS_CONFIG"]
    return []


def sasl_problems(
    mechanism: str | None, username: str | None, has_password: bool, password_file: Path | None
) -> list[str]:
    """Problems of the separate SASL variables (with KAFKA_SASL_JAAS_CONFIG, see :func:`jaas_problems`)."""
    problems = []
    if mechanism is None:
        problems.append("KAFKA_SASL_MECHANISM: required with SASL (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")
    elif mechanism not in set(SaslMechanism):
        problems.append(
            f"KAFKA_SASL_MECHANISM: {mechanism!r} is not supported; use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
        )
    if not username:
        problems.append("KAFKA_SASL_USERNAME: required with SASL (the KafkaUser's name, or the API key)")
    if has_password and password_file is not None:
        problems.append("KAFKA_SASL_PASSWORD_FILE: set together with KAFKA_SASL_PASSWORD; set only one")
    elif password_file is not None:
        unreadable = _readable("KAFKA_SASL_PASSWORD_FILE", password_file)
        if unreadable:
            problems.append(unreadable)
    elif not has_password:
        problems.append(
            "KAFKA_SASL_PASSWORD: required with SASL (or KAFKA_SASL_PASSWORD_FILE, e.g. the KafkaUser Secret's "
            "`password` mounted as a file)"
        )
    return problems


def unused_settings(protocol: str, given: dict[str, bool]) -> list[str]:
    """Settings that the protocol ignores: almost always a half-finished configuration, so refuse them."""
    problems = []
    for variable, is_set in given.items():
        if not is_set:
            continue
        if variable.startswith("KAFKA_SASL_") and protocol not in SASL_PROTOCOLS:
            problems.append(f"{variable}: set, but KAFKA_SECURITY_PROTOCOL={protocol} does not use SASL")
        if variable.startswith("KAFKA_SSL_") and protocol not in TLS_PROTOCOLS:
            problems.append(f"{variable}: set, but KAFKA_SECURITY_PROTOCOL={protocol} does not use TLS")
    return problems


def read_password_file(path: Path) -> str:
    """A mounted Secret key holds the value as is; a trailing newline (an ``echo`` into a file) is not part of it."""
    return path.read_text(encoding="utf-8").rstrip("\r\n")
