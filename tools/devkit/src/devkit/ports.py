"""Free loopback ports for the harness and the tests."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the kernel's pick; another process may still take it before you bind)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def free_port_pair(attempts: int = 100) -> int:
    """A port P such that P and P+1 are both free on 127.0.0.1 (a broker's client and controller listeners)."""
    for _ in range(attempts):
        port = free_port()
        if port >= 65535:
            continue
        with socket.socket() as second:
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free pair of loopback ports found")


def free_port_block(size: int, attempts: int = 200) -> int:
    """A port P such that P .. P+size-1 are all free on 127.0.0.1 (a local cluster's nodes, two listeners each)."""
    for _ in range(attempts):
        port = free_port()
        if port + size > 65536:
            continue
        taken = []
        try:
            for offset in range(1, size):
                probe = socket.socket()
                taken.append(probe)
                probe.bind(("127.0.0.1", port + offset))
        except OSError:
            continue
        finally:
            for probe in taken:
                probe.close()
        return port
    raise RuntimeError(f"no block of {size} free loopback ports found")
