"""The bounds every worker keeps, with the same names in both (each reads them from its own prefixed variables)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerLimits:
    #: Unforeseen exceptions one recording may hit before its parked events are dead-lettered and it is failed.
    max_internal_errors: int = 5
    #: How long a recording may wait in a working state (requested, transcribing, fetching) before it is checked.
    deadline_seconds: float = 1800.0
    #: How often the sweep looks for recordings past their deadline or their retention.
    sweep_seconds: float = 60.0
    #: How often the retry timer looks for due retries.
    retry_scan_seconds: float = 0.5
    #: How long a finished recording stays in the Table (to recognise late duplicates) before it is removed.
    retention_seconds: float = 3 * 86_400.0
    #: How long retryable failures of one step are retried before the recording is given up.
    give_up_seconds: float = 6 * 3600.0
    #: Fault injection for the chaos harness: the probability that a handler raises in its middle. 0 in production.
    fault_probability: float = 0.0
