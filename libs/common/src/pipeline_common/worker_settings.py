"""What every faust worker here reads besides the shared pieces: its own :class:`FaustWorker`, retry schedule and
:class:`~pipeline_common.worker.limits.WorkerLimits`, each from variables named ``<WORKER_PREFIX>_...``.

The retry and limit variables mean the same in both workers, so they are declared once, here, and each worker's
settings class takes them as a mixin under its own prefix::

    class FetcherSettings(worker_variables("fetcher", deadline_seconds=900.0), WorkerSettings): ...

gives ``fetcher_retry_base_seconds`` (read from ``FETCHER_RETRY_BASE_SECONDS``) and the rest, with the bounds below
and the error messages naming the prefixed variable, as a hand-written field would.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeVar

from pydantic import Field, create_model
from pydantic.fields import FieldInfo

from pipeline_common.settings import BaseServiceSettings, KafkaSettings, LoggingSettings, RecallApiSettings
from pipeline_common.worker.limits import WorkerLimits

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

DataclassT = TypeVar("DataclassT", bound="DataclassInstance")

_LIMITS: Final = WorkerLimits()  # the limits' defaults are the dataclass's own

#: The variables both workers read, by their name after the prefix: the retry schedule
#: (:class:`~pipeline_common.worker.backoff.RetrySchedule`) and the limits (:class:`WorkerLimits`).
WORKER_VARIABLES: Final[dict[str, tuple[type, Any]]] = {  # Any: what Field() is typed to return
    "retry_base_seconds": (float, Field(default=1.0, gt=0, le=600)),
    "retry_max_seconds": (float, Field(default=300.0, gt=0, le=86_400)),
    "operator_retry_seconds": (float, Field(default=60.0, gt=0, le=86_400)),
    "operator_retry_max_seconds": (float, Field(default=900.0, gt=0, le=86_400)),
    "retry_scan_seconds": (float, Field(default=_LIMITS.retry_scan_seconds, gt=0, le=60)),
    "give_up_seconds": (float, Field(default=_LIMITS.give_up_seconds, gt=0, le=30 * 86_400)),
    "max_internal_errors": (int, Field(default=_LIMITS.max_internal_errors, ge=1, le=100)),
    "deadline_seconds": (float, Field(default=_LIMITS.deadline_seconds, ge=1, le=7 * 86_400)),
    "sweep_seconds": (float, Field(default=_LIMITS.sweep_seconds, gt=0, le=3600)),
    "retention_seconds": (float, Field(default=_LIMITS.retention_seconds, ge=0, le=365 * 86_400)),
    "fault_probability": (
        float,
        Field(
            default=_LIMITS.fault_probability,
            ge=0,
            le=1,
            description="chaos only: probability a handler raises in its middle",
        ),
    ),
}


def worker_variables(prefix: str, **defaults: float) -> type[BaseServiceSettings]:
    """A settings mixin declaring :data:`WORKER_VARIABLES` as ``<prefix>_<name>``, with a worker's own ``defaults``."""
    unknown = sorted(set(defaults) - set(WORKER_VARIABLES))
    if unknown:
        raise TypeError(f"not worker variables: {', '.join(unknown)}")
    declared: dict[str, Any] = {
        f"{prefix}_{name}": (kind, FieldInfo.merge_field_infos(field, default=defaults.get(name, field.default)))
        for name, (kind, field) in WORKER_VARIABLES.items()
    }
    return create_model(f"{prefix.title()}WorkerVariables", __base__=BaseServiceSettings, **declared)


@dataclass(frozen=True)
class FaustWorker:
    """What differs between the faust workers here; each reads it from its own prefixed variables."""

    app_id: str  # the consumer group, and the prefix of the Table's changelog topic
    data_dir: str
    partitions: int  # of the input topics, which the Table is co-partitioned with
    auto_offset_reset: str
    web_host: str
    web_port: int
    session_timeout_seconds: float


class WorkerSettings(KafkaSettings, RecallApiSettings, LoggingSettings):
    """What every faust worker here reads: Kafka, Recall's API, logging, and its own :class:`FaustWorker` and
    :class:`WorkerLimits` (a worker's settings class also takes :func:`worker_variables` under its prefix)."""

    WORKER_PREFIX: ClassVar[str]
    WORKER_PARTITIONS: ClassVar[int]  # of the input topics, which the Table is co-partitioned with

    def own(self, kind: type[DataclassT], **given: Any) -> DataclassT:
        """A ``kind`` (a dataclass) whose fields not ``given`` are read from this worker's ``<prefix>_<field>``."""
        read = {f.name: getattr(self, f"{self.WORKER_PREFIX}_{f.name}") for f in fields(kind) if f.name not in given}
        return kind(**read, **given)

    def faust_worker(self) -> FaustWorker:
        return self.own(FaustWorker, partitions=self.WORKER_PARTITIONS)

    def limits(self) -> WorkerLimits:
        return self.own(WorkerLimits)
