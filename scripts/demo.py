"""``make demo``: the whole pipeline end to end on this machine (the code is :mod:`devkit.demo`)."""

from __future__ import annotations

import sys

from devkit.demo import main

if __name__ == "__main__":
    sys.exit(main())
