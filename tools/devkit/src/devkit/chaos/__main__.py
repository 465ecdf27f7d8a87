"""``python -m devkit.chaos``."""

from __future__ import annotations

import sys

from devkit.chaos.main import main

sys.exit(main())
