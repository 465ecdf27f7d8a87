"""A settable fault hook: raise an unforeseen exception in the middle of a handler with a given probability, so the
chaos harness can prove that the supervisor ends every such event in a decision. Off (0.0) unless configured."""

from __future__ import annotations

import random


class InjectedFault(RuntimeError):
    """Raised by :class:`FaultHook`; deliberately not a type any handler expects."""


class FaultHook:
    def __init__(self, probability: float, rng: random.Random | None = None) -> None:
        if not 0.0 <= probability <= 1.0:
            raise ValueError("fault probability must be between 0 and 1")
        self.probability = probability
        self._rng = rng or random.Random()  # noqa: S311 - fault injection, not cryptography
        self.raised = 0

    def maybe_raise(self, where: str) -> None:
        if self.probability and self._rng.random() < self.probability:
            self.raised += 1
            raise InjectedFault(f"injected fault at {where}")
