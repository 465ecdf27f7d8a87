"""``make chaos``: a ledger run under faults, then fuzzing (the code is :mod:`devkit.chaos`; ``--help`` says more)."""

from __future__ import annotations

import sys

from devkit.chaos.main import main

if __name__ == "__main__":
    sys.exit(main())
