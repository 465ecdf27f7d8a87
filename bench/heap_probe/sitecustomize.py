"""The state-growth benchmark's heap probe, loaded into a worker only when ``--set state_growth.heap_probe=1`` puts
this directory on the worker's ``PYTHONPATH`` with ``BENCH_HEAP_PROBE_DIR`` (off by default; nothing in a service
imports it). It starts :mod:`tracemalloc` at interpreter start-up and, on ``SIGRTMIN+3`` (faust's worker already owns
SIGUSR1 and SIGUSR2: SIGUSR2 enters pdb), writes to that directory ``<service>-<n>.json`` (RSS, RSS after
``gc.collect()`` + glibc's ``malloc_trim(0)``, the traced live Python heap, objects by type) and ``<service>-<n>.snap``
(a tracemalloc snapshot: compare two with ``Snapshot.load(...).compare_to(..., "traceback")``).

So a growth of RSS can be told apart: live Python objects (traced), memory the allocator keeps after frees (what
``malloc_trim`` gives back), and the rest (pymalloc arenas kept by a few live objects, native allocations)."""

from __future__ import annotations

import os
import sys

_DIR = os.environ.get("BENCH_HEAP_PROBE_DIR")
_SERVICES = ("transcriber", "fetcher")
_SERVICE = next((name for name in _SERVICES if name in " ".join(sys.orig_argv)), None)

if _DIR and _SERVICE:
    import contextlib
    import ctypes
    import gc
    import json
    import signal
    import tracemalloc
    from typing import Any

    tracemalloc.start(int(os.environ.get("BENCH_HEAP_PROBE_FRAMES", "8")))
    _taken = [0]

    def _rss_kib() -> int:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def _probe(_signum: int, _frame: Any) -> None:
        _taken[0] += 1
        name = os.path.join(str(_DIR), f"{_SERVICE}-{_taken[0]}")
        rss = _rss_kib()
        gc.collect()
        with contextlib.suppress(OSError):  # not glibc: RSS as it is
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        trimmed = _rss_kib()
        traced, peak = tracemalloc.get_traced_memory()
        types: dict[str, int] = {}
        for obj in gc.get_objects():
            kind = type(obj).__qualname__
            types[kind] = types.get(kind, 0) + 1
        tracemalloc.take_snapshot().dump(name + ".snap")
        report = {"rss_kib": rss, "rss_trimmed_kib": trimmed, "traced_bytes": traced, "peak_bytes": peak}
        with open(name + ".tmp", "w") as out:
            json.dump({**report, "types": types}, out)
        os.replace(name + ".tmp", name + ".json")  # the reader waits for the .json: written whole

    signal.signal(signal.SIGRTMIN + 3, _probe)
