"""``make up``/``down``/``logs``/``stack-status``: the local stack supervisor (the code is :mod:`devkit.stack`)."""

from __future__ import annotations

import sys

from devkit.stack import main

if __name__ == "__main__":
    sys.exit(main())
