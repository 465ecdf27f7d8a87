"""The secured local broker for this package's tests: started once per session, only when a test asks for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.broker import SecuredBroker, secured_local_broker


@pytest.fixture(scope="session")
def secured_broker() -> Iterator[SecuredBroker]:
    with secured_local_broker() as broker:
        yield broker
