"""``python -m devkit.docs`` (``make docs``)."""

from __future__ import annotations

import sys

from devkit.docs.files import main

sys.exit(main())
