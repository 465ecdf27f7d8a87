"""The broker fixture's choice: containers only when asked, or when a daemon answers *and* the Kafka image is there;
a Docker daemon alone never switches the suite away from the local broker."""

from __future__ import annotations

import pytest

from tests.support import broker

pytestmark = pytest.mark.unit


@pytest.fixture
def docker_state(monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    state = {"daemon": True, "image": False}
    monkeypatch.setattr(broker, "docker_daemon_answers", lambda: state["daemon"])
    monkeypatch.setattr(broker, "image_present", lambda image: state["image"])
    monkeypatch.delenv("KAFKA_TEST_BROKER", raising=False)
    monkeypatch.delenv("KAFKA_TEST_IMAGE", raising=False)
    return state


def test_a_daemon_without_the_image_keeps_the_local_broker(docker_state: dict[str, bool]) -> None:
    assert broker.wants_container() is False


def test_a_daemon_with_the_image_uses_it(docker_state: dict[str, bool]) -> None:
    docker_state["image"] = True
    assert broker.wants_container() is True
    assert broker.kafka_test_image() == broker.DEFAULT_TEST_IMAGE
    assert broker.DEFAULT_TEST_IMAGE.startswith("recall-pipeline/kafka:4.")


def test_local_wins_over_a_daemon_with_the_image(
    docker_state: dict[str, bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    docker_state["image"] = True
    monkeypatch.setenv("KAFKA_TEST_BROKER", "local")
    assert broker.wants_container() is False


def test_asking_for_a_container_without_a_daemon_fails_clearly(
    docker_state: dict[str, bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    docker_state["daemon"] = False
    monkeypatch.setenv("KAFKA_TEST_BROKER", "container")
    with pytest.raises(RuntimeError, match="no Docker daemon answers"):
        broker.wants_container()


def test_a_misspelt_choice_is_an_error(docker_state: dict[str, bool], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_TEST_BROKER", "containers")
    with pytest.raises(RuntimeError, match="KAFKA_TEST_BROKER must be local, container or auto"):
        broker.wants_container()


def test_another_image_can_be_named(docker_state: dict[str, bool], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_TEST_IMAGE", "confluentinc/cp-kafka:7.9.0")
    assert broker.kafka_test_image() == "confluentinc/cp-kafka:7.9.0"
