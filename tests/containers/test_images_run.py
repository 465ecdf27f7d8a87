"""Each service image, run as its manifest runs it: the image's own user is the manifests' UID, the root filesystem
is read-only with only the manifests' emptyDirs writable, the health endpoint answers, and SIGTERM stops it
cleanly within the grace period. The offline manifest validation cannot prove these; only running the image can."""

from __future__ import annotations

import time

import pytest

from tests.containers.harness import SERVICES, base_env, docker, pod_spec, running
from tests.support.broker import Broker
from tests.support.http import free_port

pytestmark = [pytest.mark.container, pytest.mark.slow]

#: What each service logs last when it shut down in order (the simulator logs nothing then).
GRACEFUL_END = {
    "ingest": "ingest stopped",
    "transcriber": "Closing event loop",
    "fetcher": "Closing event loop",
    "recall-sim": "",
}


@pytest.mark.parametrize("name", list(SERVICES))
def test_the_image_runs_as_its_manifest_says_and_stops_on_sigterm(
    name: str, images: dict[str, str], kafka_broker: Broker
) -> None:
    service = SERVICES[name]
    spec = pod_spec(service)
    image = images[name]
    configured_user = docker("image", "inspect", "--format", "{{.Config.User}}", image).stdout.strip()
    assert configured_user.split(":") == [str(spec.run_as_user), str(spec.run_as_group)]

    port = free_port()
    env = base_env(kafka_broker.bootstrap_servers, sim_port=free_port(), ingest_port=free_port())
    with running(service, image, port, env) as container:
        container.wait_healthy()
        uids = container.process_uids()
        assert uids, "no process in the container"
        assert set(uids.values()) == {spec.run_as_user}, uids
        assert any("tini" in command for command in uids), uids  # PID 1 forwards signals

        # Read-only root: writing outside the emptyDirs fails; inside them it works.
        outside = docker("exec", container.container_id, "touch", "/app/probe", check=False)
        assert outside.returncode != 0 and "Read-only file system" in outside.stderr
        for path in spec.empty_dirs:
            docker("exec", container.container_id, "touch", f"{path}/probe")

        started = time.monotonic()
        docker("stop", "--time", str(spec.grace_seconds), container.container_id, timeout=spec.grace_seconds + 30)
        elapsed = time.monotonic() - started
        state = container.state()
        logs = container.logs()
        assert not state["Running"]
        # 137 would be the SIGKILL at the end of the grace period. 143 is a clean exit too: uvicorn re-raises the
        # SIGTERM it handled once it has shut down, so tini reports 128 + 15.
        assert state["ExitCode"] in (0, 143), f"exit code {state['ExitCode']} after {elapsed:.1f}s:\n{logs}"
        assert elapsed < spec.grace_seconds, f"took {elapsed:.1f}s of a {spec.grace_seconds}s grace period"
        if GRACEFUL_END[name]:
            assert GRACEFUL_END[name] in logs, f"no sign of a graceful shutdown:\n{logs}"
