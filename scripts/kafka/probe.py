"""Ask a Kafka broker for cluster metadata, using only the standard library.

Exit 0 when the broker answers a Metadata request that lists at least one broker (or the optional fourth
argument's count: every node of a local cluster), 1 otherwise. Used by
scripts/kafka-local to wait for readiness before any Python environment exists, so it cannot use aiokafka.
"""

from __future__ import annotations

import socket
import struct
import sys

METADATA_API_KEY = 3
# v4 is the oldest Metadata version Kafka 4.x still accepts (KIP-896) and the newest non-flexible one.
METADATA_API_VERSION = 4
CORRELATION_ID = 0x5EED


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    buf = bytearray()
    while len(buf) < size:
        chunk = sock.recv(size - len(buf))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buf.extend(chunk)
    return bytes(buf)


def broker_count(host: str, port: int, timeout: float) -> int:
    client_id = b"kafka-local-probe"
    body = struct.pack(">hhih", METADATA_API_KEY, METADATA_API_VERSION, CORRELATION_ID, len(client_id))
    body += client_id
    body += struct.pack(">i?", -1, False)  # topics: null (all); allow_auto_topic_creation: false
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(body)) + body)
        (size,) = struct.unpack(">i", _recv_exact(sock, 4))
        response = _recv_exact(sock, size)
    correlation_id, _throttle_ms, brokers = struct.unpack(">iii", response[:12])
    if correlation_id != CORRELATION_ID:
        raise ConnectionError(f"unexpected correlation id {correlation_id}")
    return int(brokers)


def main(argv: list[str]) -> int:
    host, port = argv[1], int(argv[2])
    timeout = float(argv[3]) if len(argv) > 3 else 2.0
    wanted = int(argv[4]) if len(argv) > 4 else 1
    try:
        return 0 if broker_count(host, port, timeout) >= wanted else 1
    except (OSError, ConnectionError, struct.error):
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
