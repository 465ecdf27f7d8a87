"""Run the service images the way the manifests run them, on the host's network, with the Docker CLI.

Every `docker run` flag that matters is read from the manifests (deploy/base, and the dev overlay for the
simulator): the tmpfs mounts stand for their emptyDirs, the read-only root, the dropped capabilities, no privilege
escalation, the grace period. The user is *not* passed: the image's own USER must be the manifests' runAsUser.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.broker import ROOT
from tests.support.waiting import ConditionTimeout, wait_for_sync

LAST_BUILD = ROOT / ".cache" / "images" / "last-build.json"


@dataclass(frozen=True)
class Service:
    image: str  # the image (and Dockerfile target) name
    manifest: Path
    config: tuple[str, ...]  # deploy/base/config/*.env the manifest's envFrom names
    host_var: str
    port_var: str


SERVICES = {
    "ingest": Service(
        "ingest", ROOT / "deploy/base/ingest/deployment.yaml", ("pipeline", "ingest"), "INGEST_HOST", "INGEST_PORT"
    ),
    "transcriber": Service(
        "transcriber",
        ROOT / "deploy/base/transcriber/deployment.yaml",
        ("pipeline", "transcriber"),
        "TRANSCRIBER_WEB_HOST",
        "TRANSCRIBER_WEB_PORT",
    ),
    "fetcher": Service(
        "fetcher",
        ROOT / "deploy/base/fetcher/deployment.yaml",
        ("pipeline", "fetcher"),
        "FETCHER_WEB_HOST",
        "FETCHER_WEB_PORT",
    ),
    "recall-sim": Service(
        "recall-sim",
        ROOT / "deploy/overlays/dev/recall-sim/deployment.yaml",
        (),
        "RECALL_SIM_HOST",
        "RECALL_SIM_PORT",
    ),
}


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def built_images() -> dict[str, str]:
    """Image name -> reference, as `make images` (scripts/build-images) last built them."""
    if not LAST_BUILD.is_file():
        return {}
    images: dict[str, str] = json.loads(LAST_BUILD.read_text(encoding="utf-8"))["images"]
    return images


@dataclass(frozen=True)
class PodSpec:
    """What the tier takes from a Deployment."""

    run_as_user: int
    run_as_group: int
    fs_group: int
    grace_seconds: int
    read_only_root: bool
    drop_capabilities: list[str]
    no_privilege_escalation: bool
    empty_dirs: list[str]  # mount paths
    health_path: str


def pod_spec(service: Service) -> PodSpec:
    deployment = yaml.safe_load(service.manifest.read_text(encoding="utf-8"))
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    security = container["securityContext"]
    empty = {volume["name"] for volume in pod.get("volumes", []) if "emptyDir" in volume}
    probe = container["livenessProbe"]
    return PodSpec(
        run_as_user=pod["securityContext"]["runAsUser"],
        run_as_group=pod["securityContext"]["runAsGroup"],
        fs_group=pod["securityContext"]["fsGroup"],
        grace_seconds=pod["terminationGracePeriodSeconds"],
        read_only_root=security["readOnlyRootFilesystem"],
        drop_capabilities=security["capabilities"]["drop"],
        no_privilege_escalation=security["allowPrivilegeEscalation"] is False,
        empty_dirs=[mount["mountPath"] for mount in container["volumeMounts"] if mount["name"] in empty],
        # The simulator's probes are TCP; its /healthz is what the tier asks.
        health_path=probe.get("httpGet", {}).get("path", "/healthz"),
    )


def config_env(service: Service) -> dict[str, str]:
    """The ConfigMaps the manifest's envFrom names, from their .env sources."""
    env: dict[str, str] = {}
    for name in service.config:
        for line in (ROOT / "deploy/base/config" / f"{name}.env").read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                key, value = line.split("=", 1)
                env[key] = value
    return env


def run_args(service: Service, spec: PodSpec) -> list[str]:
    args = ["--network", "host", "--stop-timeout", str(spec.grace_seconds)]
    if spec.read_only_root:
        args.append("--read-only")
    for capability in spec.drop_capabilities:
        args += ["--cap-drop", capability]
    if spec.no_privilege_escalation:
        args += ["--security-opt", "no-new-privileges"]
    for path in spec.empty_dirs:
        # An emptyDir under fsGroup is writable by the pod's group; so is this tmpfs.
        args += ["--tmpfs", f"{path}:rw,nosuid,nodev,mode=1777,uid={spec.run_as_user},gid={spec.fs_group}"]
    return args


@dataclass
class Running:
    service: Service
    container_id: str
    port: int
    spec: PodSpec

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        result = docker("logs", "--tail", "60", self.container_id, check=False)
        return result.stdout + result.stderr

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads(docker("inspect", "--format", "{{json .State}}", self.container_id).stdout)
        return state

    def process_uids(self) -> dict[str, int]:
        """Every process in the container -> its real UID, as the host sees them."""
        rows = docker("top", self.container_id, "-eo", "uid,pid,args").stdout.splitlines()[1:]
        return {row.split(None, 2)[2]: int(row.split(None, 2)[0]) for row in rows if row.strip()}

    def healthy(self, path: str | None = None) -> bool:
        try:
            return httpx.get(self.base_url + (path or self.spec.health_path), timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def wait_healthy(self, path: str | None = None, timeout: float = 90) -> None:
        def healthy() -> bool:
            if not self.state()["Running"]:
                raise AssertionError(f"{self.service.image} exited ({self.state()}):\n{self.logs()}")
            return self.healthy(path)

        try:
            wait_for_sync(healthy, timeout=timeout, interval=0.3, message=f"{self.service.image} healthy")
        except ConditionTimeout as timed_out:
            raise AssertionError(f"{timed_out}\n{self.logs()}") from None


@contextmanager
def running(service: Service, image: str, port: int, env: dict[str, str]) -> Iterator[Running]:
    spec = pod_spec(service)
    full_env = {
        **config_env(service),
        **env,
        service.host_var: "127.0.0.1",
        service.port_var: str(port),
    }
    env_args = [item for key, value in full_env.items() for item in ("--env", f"{key}={value}")]
    name = f"tier-{service.image}-{uuid.uuid4().hex[:8]}"
    container_id = docker(
        "run", "--detach", "--name", name, *run_args(service, spec), *env_args, image, timeout=60
    ).stdout.strip()
    try:
        yield Running(service, container_id, port, spec)
    finally:
        docker("rm", "--force", "--volumes", container_id, check=False, timeout=60)


def base_env(bootstrap: str, sim_port: int, ingest_port: int) -> dict[str, str]:
    """What the manifests take from Secrets and the cluster, here pointed at loopback."""
    from recall_sim.settings import DEV_API_KEY, DEV_WEBHOOK_SECRET

    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_CREATE_TOPICS": "true",  # no Strimzi here to own the topics
        "RECALL_API_BASE_URL": f"http://127.0.0.1:{sim_port}",
        "RECALL_API_KEY": DEV_API_KEY,
        "RECALL_WEBHOOK_SECRET": DEV_WEBHOOK_SECRET,
        "RECALL_SIM_API_KEY": DEV_API_KEY,
        "RECALL_SIM_WEBHOOK_SECRET": DEV_WEBHOOK_SECRET,
        "RECALL_SIM_WEBHOOK_URL": f"http://127.0.0.1:{ingest_port}/webhooks/recall",
        "RECALL_SIM_TRANSCRIPT_DELAY_SECONDS": "0.3",
        "LOG_FORMAT": "json",
    }


def unavailable_reason() -> str | None:
    """Why the tier cannot run here, or None."""
    from tests.support.broker import docker_daemon_answers

    if not docker_daemon_answers():
        why = os.environ.get("DOCKER_UNAVAILABLE") or "`docker info` failed"
        return (
            f"no Docker daemon answers ({why}); `make test` starts one where it can (root, Debian's docker.io), "
            "or run `make test-containers`"
        )
    images = built_images()
    missing = [name for name in SERVICES if name not in images]
    if missing:
        return f"no images built for {', '.join(missing)}: run `make images` (or `make test-containers`)"
    for reference in images.values():
        if docker("image", "inspect", reference, check=False).returncode != 0:
            return f"image {reference} is gone from the daemon: run `make images`"
    return None
