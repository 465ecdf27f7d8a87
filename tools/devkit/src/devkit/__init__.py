"""The development harness of the repository: what ``make up``/``demo``/``chaos``/``docs``/``bench`` and the tests
drive the pipeline with. Never part of a service image; the services never import it."""

from __future__ import annotations

from pathlib import Path
from typing import Final

#: The repository's root (the workspace installs this package editable, so this file lives in the checkout).
ROOT: Final = Path(__file__).resolve().parents[4]
