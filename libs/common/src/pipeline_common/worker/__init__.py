"""The worker core both faust workers are built on: plain asyncio and pydantic, no faust, so that a test can drive a
worker's whole per-event logic in-process with a dict for its Table and lists for its outputs.

- :mod:`.message`: :class:`Inbound`, one consumed Kafka record as the logic sees it;
- :mod:`.backoff`: the retry delays (:class:`RetrySchedule`) and the clock;
- :mod:`.locks`: :class:`KeyedLocks`, one lock per recording across every agent and timer of a worker;
- :mod:`.table`: :class:`RecordingTable`, the Table behind one door that keeps the due-index of scheduled retries;
- :mod:`.supervisor`: :class:`Supervisor`, which turns any exception into a scheduled retry, then a dead letter;
- :mod:`.base`: :class:`SupervisedWorker`, what both workers do the same way around their own logic;
- :mod:`.limits`: :class:`WorkerLimits`, the bounds every worker keeps (attempts, deadlines, retention);
- :mod:`.faults`: :class:`FaultHook`, the chaos harness's "raise here with probability p";
- :mod:`.faust_patches`: the faust-streaming fixes, applied by the app factory.

See docs/worker-core.md.
"""

from pipeline_common.worker.backoff import Backoff, RetrySchedule, now
from pipeline_common.worker.faults import FaultHook, InjectedFault
from pipeline_common.worker.limits import WorkerLimits
from pipeline_common.worker.locks import KeyedLocks
from pipeline_common.worker.message import Inbound
from pipeline_common.worker.supervisor import PARKED_TARGET, Supervision, Supervisor
from pipeline_common.worker.table import RecordingTable

__all__ = [
    "PARKED_TARGET",
    "Backoff",
    "FaultHook",
    "Inbound",
    "InjectedFault",
    "KeyedLocks",
    "RecordingTable",
    "RetrySchedule",
    "Supervision",
    "Supervisor",
    "WorkerLimits",
    "now",
]
