"""``python -m deploy.validate [overlay ...]`` (``make kube-validate``)."""

from __future__ import annotations

import sys

from deploy.validate import main

sys.exit(main())
