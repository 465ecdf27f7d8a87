"""What a store can fail with."""

from __future__ import annotations

__all__ = ["ObjectNotFound", "StoreError", "StoreUnavailable"]


class StoreError(Exception):
    """The store could not do what was asked. Worth retrying unless a subclass says otherwise."""


class StoreUnavailable(StoreError):
    """The store did not answer (network, server error, disk full, ...): retry later."""


class ObjectNotFound(StoreError):
    """No object under that key."""
