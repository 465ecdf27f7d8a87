"""Fail fast on a Kafka connection that can never work, before a service starts retrying.

aiokafka treats every failed bootstrap alike ("Unable to bootstrap from ...") and the services retry those for
minutes, which is right for a broker that is still starting and wrong for a wrong password, an untrusted CA or a
plaintext client on a TLS port: those never heal by waiting. :func:`check_kafka_connection` opens one connection per
bootstrap server the way the clients will (TLS handshake, ApiVersions, SASL authentication) and raises
:class:`KafkaConnectionRefused` naming the variable to fix when the broker answered and said no. A broker that does not
answer at all is left to the clients' own retries. No message ever contains a password or a key.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any, Final

from aiokafka.conn import create_conn
from aiokafka.errors import (
    IllegalSaslStateError,
    KafkaConnectionError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)

from pipeline_common.logging import get_logger
from pipeline_common.settings import KafkaSettings

_log = get_logger(__name__)
DEFAULT_TIMEOUT_SECONDS: Final = 10.0


class KafkaConnectionRefused(Exception):
    """The broker answered and refused this client's connection settings; retrying cannot help."""


async def _speaks_tls(host: str, port: int, wait_seconds: float) -> bool:
    """Whether ``host:port`` completes a TLS handshake (verification off: this only asks which protocol it speaks)."""
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    probe.check_hostname = False
    probe.verify_mode = ssl.CERT_NONE
    try:
        async with asyncio.timeout(wait_seconds):
            _, writer = await asyncio.open_connection(host, port, ssl=probe)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return True


def _explain(settings: KafkaSettings, server: str, error: BaseException) -> str | None:
    """The operator's message for a refusal, or None when the error may be transient."""
    protocol = settings.kafka_security_protocol.value
    if isinstance(error, ssl.SSLCertVerificationError):
        what = error.verify_message or "certificate verify failed"
        if "hostname" in what.lower() or "IP address mismatch" in what:
            return (
                f"KAFKA_SSL_CHECK_HOSTNAME: the certificate of {server} does not name that host ({what}); connect "
                "through a name the certificate lists, or set KAFKA_SSL_CHECK_HOSTNAME=false"
            )
        trusted = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else "the system trust store"
        return (
            f"KAFKA_SSL_CAFILE: the certificate of {server} is not signed by a CA in {trusted} ({what}); "
            "point KAFKA_SSL_CAFILE at the cluster CA (Strimzi: ca.crt of <cluster>-cluster-ca-cert)"
        )
    if isinstance(error, ssl.SSLError):
        reason = error.reason or str(error)
        if "WRONG_VERSION_NUMBER" in reason or "wrong version number" in str(error):
            return (
                f"KAFKA_SECURITY_PROTOCOL: {server} does not speak TLS but KAFKA_SECURITY_PROTOCOL={protocol}; "
                "use the broker's TLS listener or PLAINTEXT/SASL_PLAINTEXT"
            )
        refused_certificate = any(
            marker in reason
            for marker in ("CERTIFICATE_REQUIRED", "BAD_CERTIFICATE", "UNKNOWN_CA", "CERTIFICATE_UNKNOWN")
        )
        if refused_certificate and settings.kafka_ssl_certfile is None:
            # A mutual-TLS listener (Java brokers answer a missing certificate with bad_certificate).
            return (
                f"KAFKA_SSL_CERTFILE: {server} requires a client certificate (mutual TLS); set KAFKA_SSL_CERTFILE "
                "and KAFKA_SSL_KEYFILE (Strimzi: user.crt and user.key of the KafkaUser Secret)"
            )
        if refused_certificate:
            return (
                f"KAFKA_SSL_CERTFILE: {server} does not accept the client certificate {settings.kafka_ssl_certfile} "
                f"({reason}); it must be signed by the CA the broker trusts for clients (Strimzi: the clients CA)"
            )
        return f"KAFKA_SECURITY_PROTOCOL: the TLS handshake with {server} failed ({reason})"
    if isinstance(error, SaslAuthenticationFailed):
        detail = str(error).split(":", 1)[-1].strip() or "authentication failed"
        return (
            f"KAFKA_SASL_PASSWORD: {server} rejected user {settings.kafka_sasl_user!r} with "
            f"{settings.kafka_sasl_mechanism} ({detail}); check KAFKA_SASL_USERNAME and the password"
        )
    if isinstance(error, UnsupportedSaslMechanismError | IllegalSaslStateError):
        return f"KAFKA_SASL_MECHANISM: {server} does not accept {settings.kafka_sasl_mechanism} ({error})"
    return None


async def _connection_kwargs(settings: KafkaSettings) -> dict[str, Any]:
    kwargs = settings.aiokafka_connection_kwargs()
    kwargs.pop("bootstrap_servers")
    return kwargs


async def check_kafka_connection(settings: KafkaSettings, *, wait_seconds: float = DEFAULT_TIMEOUT_SECONDS) -> bool:
    """Connect once to each bootstrap server until one accepts; True when one did, False when none answered.

    Raises :class:`KafkaConnectionRefused` when a broker answered and refused these settings.
    """
    kwargs = await _connection_kwargs(settings)
    uses_tls = settings.kafka_uses_tls
    for server in settings.kafka_bootstrap_servers:
        host, _, port_text = server.rpartition(":")
        port = int(port_text)
        try:
            conn = await create_conn(host, port, request_timeout_ms=int(wait_seconds * 1000), **kwargs)
        except (ssl.SSLError, SaslAuthenticationFailed, UnsupportedSaslMechanismError, IllegalSaslStateError) as e:
            message = _explain(settings, server, e)
            if message:
                raise KafkaConnectionRefused(message) from None
            continue
        except (KafkaConnectionError, OSError, TimeoutError) as error:
            cause = error.__cause__ or error.__context__
            if isinstance(cause, ssl.SSLError):
                message = _explain(settings, server, cause)
                if message:
                    raise KafkaConnectionRefused(message) from None
            if isinstance(error, KafkaConnectionError) and not uses_tls and await _speaks_tls(host, port, wait_seconds):
                raise KafkaConnectionRefused(
                    f"KAFKA_SECURITY_PROTOCOL: {server} speaks TLS but KAFKA_SECURITY_PROTOCOL="
                    f"{settings.kafka_security_protocol.value}; set SSL or SASL_SSL and KAFKA_SSL_CAFILE"
                ) from None
            # TLS 1.3 reports a missing client certificate only after the handshake, as a closed connection.
            if (
                isinstance(error, KafkaConnectionError)
                and uses_tls
                and not settings.kafka_ssl_certfile
                and await _closes_tls_without_certificate(host, port, settings, wait_seconds)
            ):
                raise KafkaConnectionRefused(
                    f"KAFKA_SSL_CERTFILE: {server} requires a client certificate (mutual TLS); set "
                    "KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE (Strimzi: user.crt and user.key of the KafkaUser Secret)"
                ) from None
            _log.warning("kafka bootstrap server not reachable yet", server=server, error=type(error).__name__)
            continue
        conn.close()
        _log.info("kafka connection accepted", server=server, **settings.kafka_connection_summary())
        return True
    return False


async def _closes_tls_without_certificate(host: str, port: int, settings: KafkaSettings, wait_seconds: float) -> bool:
    context = settings.kafka_ssl_context()
    assert context is not None
    try:
        async with asyncio.timeout(wait_seconds):
            reader, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname=host)
            writer.write(b"\x00\x00\x00\x00")
            await writer.drain()
            await reader.read(1)
    except ssl.SSLError as error:
        return "CERTIFICATE_REQUIRED" in (error.reason or "") or "certificate required" in str(error)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return False
