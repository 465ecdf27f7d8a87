"""The container tier: skipped, with the reason, where no Docker daemon answers or the images are not built."""

from __future__ import annotations

import pytest

from tests.containers.harness import built_images, unavailable_reason


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    return built_images()
