"""The images: one Dockerfile target per service, each installing only its own packages from the lock file, non-root,
exec-form entrypoint, pinned base; and `make images` says plainly when no Docker engine can build them."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from deploy.kustomize import ROOT
from deploy.validate import Obj, kind_of
from tests.deploy.helpers import container

pytestmark = pytest.mark.unit

DOCKERFILE = ROOT / "deploy" / "images" / "Dockerfile"
#: What both Dockerfiles run to add tini, the user 10001 and its data directories.
PREPARE_RUNTIME = ROOT / "deploy" / "images" / "prepare-runtime.sh"
BUILD_SCRIPT = ROOT / "scripts" / "build-images"
#: image target -> (workspace member directory, Python module it runs)
SERVICES = {
    "ingest": ("services/ingest", "ingest"),
    "transcriber": ("services/transcriber", "transcriber"),
    "fetcher": ("services/fetcher", "fetcher"),
    "recall-sim": ("services/recall_sim", "recall_sim"),
    "cli": ("tools/cli", "pipeline_cli"),
}
#: What a service must not carry into its image.
FOREIGN: dict[str, set[str]] = {
    "ingest": {"faust-streaming"},
    "transcriber": {"fastapi", "uvicorn"},
    "fetcher": set(),  # its read API may use FastAPI; the workspace-member check still applies
    "recall-sim": {"faust-streaming"},
    "cli": {"faust-streaming", "fastapi", "uvicorn"},
}
DEV_ONLY = {"pytest", "ruff", "mypy", "hypothesis", "testcontainers", "kubernetes-validate"}


def stages() -> dict[str, list[str]]:
    """Dockerfile stage name -> its instructions (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text(encoding="utf-8"))
    result: dict[str, list[str]] = {"(global)": []}
    current = "(global)"
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
        if match:
            current = match.group(2) or match.group(1)
            result[current] = [line]
        else:
            result[current].append(line)
    return result


def dist_name(member: str) -> str:
    with (ROOT / member / "pyproject.toml").open("rb") as handle:
        name: str = tomllib.load(handle)["project"]["name"]
    return name


def test_the_base_image_is_pinned_to_an_exact_release() -> None:
    (default,) = [line for line in stages()["(global)"] if line.startswith("ARG PYTHON_IMAGE=")]
    image = default.split("=", 1)[1]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", image), image
    for name, instructions in stages().items():
        if name != "(global)" and instructions[0].split()[1].startswith("python"):
            pytest.fail(f"stage {name} names a base image directly instead of ${{PYTHON_IMAGE}}")


def test_the_uv_in_the_image_is_the_one_the_makefile_pins() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    (pinned,) = re.findall(r"^UV_VERSION := (\S+)$", makefile, re.M)
    assert f"ARG UV_VERSION={pinned}" in stages()["(global)"]


def test_the_build_stage_installs_only_the_named_services_packages_from_prepared_wheels() -> None:
    build = stages()["build"]
    assert "ARG SERVICE" in build
    assert not [line for line in build if line.startswith("COPY")], "the build stage copies sources: build wheels"
    installs = [line for line in build if "uv pip install" in line]
    assert len(installs) == 2
    third_party, workspace = installs
    # The lock file's third-party packages for this service only, hash-checked, from the prepared wheels.
    assert "--require-hashes" in third_party
    assert '-r "/wheels/requirements/${SERVICE}.txt"' in third_party
    # Then exactly two workspace wheels: the shared library and the service's (named in <service>.wheel).
    assert 'wheel="$(cat "/wheels/requirements/${SERVICE}.wheel")"' in workspace
    assert re.findall(r"/wheels/workspace/(\S+?)\"?-\*\.whl", workspace) == ["pipeline_common", "${wheel}"]
    assert "--no-deps" in workspace
    # Build arguments are expanded by the shell inside RUN only: never in a --mount option.
    for line in build:
        for mount in re.findall(r"--mount=\S+", line):
            assert "$" not in mount, mount


@pytest.mark.parametrize("service", list(SERVICES))
def test_each_target_gets_the_environment_built_for_it(service: str) -> None:
    member, module = SERVICES[service]
    final = stages()[service]
    assert final[0] == f"FROM runtime AS {service}"
    assert "COPY --from=build /app/.venv /app/.venv" in final
    assert (ROOT / member / "src" / module / "__init__.py").is_file()
    # scripts/build-wheels names the service's wheel: its distribution name as the wheel's file name spells it.
    dist_of = re.search(r"^dist_of\(\) \{.*?^\}", (ROOT / "scripts" / "build-wheels").read_text(), re.M | re.S)
    assert dist_of is not None
    script = f'{dist_of.group(0)}\nROOT={ROOT}\ndist="$(dist_of {service})"\nprintf %s "${{dist//-/_}}"'
    named = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout
    assert named == dist_name(member).replace("-", "_")
    assert (
        'printf \'%s\\n\' "${dist//-/_}" >"$OUT/requirements/$service.wheel"'
        in (ROOT / "scripts" / "build-wheels").read_text()
    )


def test_nothing_is_fetched_from_inside_a_build() -> None:
    first = DOCKERFILE.read_text(encoding="utf-8").splitlines()[0]
    assert not first.startswith("# syntax="), "a syntax line pulls a frontend image: not where no registry answers"
    for name, instructions in stages().items():
        for line in instructions:
            if "pip install" in line:
                assert "--no-index" in line, f"{name}: {line}"
            assert "apt-get" not in line, f"{name}: {line} (apt is for tini only, in {PREPARE_RUNTIME.name})"
            assert "curl " not in line and "wget " not in line, f"{name}: {line}"
    # Only for tini, only where the base lacks it (the upstream image); the local base has it.
    prepare = PREPARE_RUNTIME.read_text(encoding="utf-8")
    assert re.findall(r"apt-get install.*", prepare) == ["apt-get install -y --no-install-recommends tini"]
    assert prepare.index("if ! command -v tini") < prepare.index("apt-get update")
    assert "curl " not in prepare and "wget " not in prepare


@pytest.mark.parametrize("service", list(SERVICES))
def test_each_target_starts_its_module_in_exec_form_under_tini(service: str) -> None:
    _, module = SERVICES[service]
    (entrypoint,) = [line for line in stages()[service] if line.startswith("ENTRYPOINT")]
    command = json.loads(entrypoint.removeprefix("ENTRYPOINT").strip())
    assert command == ["/usr/bin/tini", "--", "/app/.venv/bin/python", "-m", module]


def test_the_runtime_runs_as_the_uid_the_manifests_expect(rendered: dict[str, list[Obj]]) -> None:
    runtime = stages()["runtime"]
    assert "USER 10001:10001" in runtime
    (prepare,) = [line for line in runtime if line.startswith("RUN") and "/prepare-runtime.sh app " in line]
    assert "source=deploy/images/prepare-runtime.sh" in prepare
    assert "--uid 10001 --gid 10001" in PREPARE_RUNTIME.read_text(encoding="utf-8")
    assert "STOPSIGNAL SIGTERM" in runtime
    for objects in rendered.values():
        for obj in objects:
            if kind_of(obj) == "Deployment":
                pod = obj["spec"]["template"]["spec"]["securityContext"]
                assert pod["runAsUser"] == 10001
                assert pod["runAsGroup"] == 10001


def test_every_image_the_manifests_use_has_a_target_and_is_built(rendered: dict[str, list[Obj]]) -> None:
    script = BUILD_SCRIPT.read_text(encoding="utf-8")
    (listed,) = re.findall(r"^SERVICES=\((.*)\)$", script, re.M)
    assert listed.split() == list(SERVICES)
    for objects in rendered.values():
        for obj in objects:
            if kind_of(obj) != "Deployment":
                continue
            image = container(objects, obj["metadata"]["name"])["image"]
            repository = image.split("@")[0].rsplit(":", 1)[0]
            assert repository.rsplit("/", 1)[-1] in SERVICES, image
            assert repository.endswith(f"recall-pipeline/{repository.rsplit('/', 1)[-1]}")


def test_the_build_context_sends_only_the_prepared_wheels() -> None:
    lines = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    assert [line for line in lines if line and not line.startswith("#")] == [
        "*",
        "!.cache/images/wheels/",
        "!deploy/images/prepare-runtime.sh",
    ]


def _uv() -> str:
    for candidate in (shutil.which("uv"), str(ROOT / ".tools" / "bin" / "uv")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("uv not found: run `make setup`")


@pytest.mark.parametrize("service", list(SERVICES))
def test_the_lock_file_gives_each_image_only_what_its_service_needs(service: str) -> None:
    member, _ = SERVICES[service]
    result = subprocess.run(
        [_uv(), "export", "--frozen", "--no-dev", "--package", dist_name(member), "--no-hashes", "--no-header"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
    )
    packages = {
        re.split(r"[=<> ;@]", line, maxsplit=1)[0].lower()
        for line in result.stdout.splitlines()
        if line and not line.startswith((" ", "#", "-e", "."))
    }
    assert packages, result.stdout
    members = sorted(line.removeprefix("-e ./") for line in result.stdout.splitlines() if line.startswith("-e ./"))
    assert members == sorted(["libs/common", member]), "the image would carry another service's package"
    assert not packages & FOREIGN[service], f"{service} would carry {packages & FOREIGN[service]}"
    assert not packages & DEV_ONLY, f"{service} would carry dev tools {packages & DEV_ONLY}"


def _fake_engine(tmp_path: Path, *, info_exit: int) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    engine = bin_dir / "docker"
    engine.write_text(
        f'#!/usr/bin/env bash\necho "$*" >> {log}\nif [[ "$1" == info ]]; then exit {info_exit}; fi\nexit 0\n',
        encoding="utf-8",
    )
    engine.chmod(0o755)
    return bin_dir


def _run_build_script(bin_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    path = f"{bin_dir}:/usr/bin:/bin"
    return subprocess.run(
        [str(BUILD_SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            "PATH": path,
            "HOME": os.environ.get("HOME", "/tmp"),
            "PREPARE_WHEELS": "0",
            "IMAGES_RECORD": str(bin_dir.parent / "record.json"),
            **env,
        },
    )


def test_make_images_says_clearly_that_no_docker_engine_is_available(tmp_path: Path) -> None:
    result = _run_build_script(_fake_engine(tmp_path, info_exit=1))
    assert result.returncode == 3
    assert "no Docker engine available" in result.stderr
    assert "Nothing was built" in result.stderr
    assert (tmp_path / "calls.log").read_text().split("\n")[0] == "info"
    assert "build" not in (tmp_path / "calls.log").read_text()


def test_make_images_says_clearly_that_no_client_is_installed(tmp_path: Path) -> None:
    result = _run_build_script(tmp_path, CONTAINER_ENGINE="no-such-engine")
    assert result.returncode == 3
    assert "no container engine" in result.stderr


def test_make_images_builds_every_target_where_an_engine_answers(tmp_path: Path) -> None:
    result = _run_build_script(
        _fake_engine(tmp_path, info_exit=0), *SERVICES, IMAGE_TAG="1.2.3", IMAGE_REGISTRY="reg.example/rp"
    )
    assert result.returncode == 0, result.stderr
    builds = [line for line in (tmp_path / "calls.log").read_text().splitlines() if line.startswith("build ")]
    assert len(builds) == len(SERVICES)
    for service, line in zip(SERVICES, builds, strict=True):
        assert "-f deploy/images/Dockerfile" in line
        assert f"--target {service}" in line
        assert f"--build-arg SERVICE={service}" in line
        assert f"-t reg.example/rp/{service}:1.2.3" in line
        # The fake engine "has" the pinned upstream base: it is used as is, on the host's network (for apt).
        assert "--build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm" in line
        assert "--network host" in line
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["images"] == {service: f"reg.example/rp/{service}:1.2.3" for service in SERVICES}
    for service in SERVICES:
        assert re.search(rf"reg.example/rp/{service}:1.2.3 +\d+ MB +\d+ s", result.stdout), result.stdout


def test_by_default_make_images_builds_the_kafka_test_image_too() -> None:
    script = BUILD_SCRIPT.read_text(encoding="utf-8")
    assert 'IMAGES=("${SERVICES[@]}" kafka)' in script
    kafka = (ROOT / "deploy" / "images" / "kafka" / "Dockerfile").read_text(encoding="utf-8")
    assert "COPY .cache/kafka/jars/${KAFKA_VERSION}/ /opt/kafka/libs/" in kafka
    assert "USER 10001:10001" in kafka


def test_make_images_rejects_an_unknown_service(tmp_path: Path) -> None:
    result = _run_build_script(_fake_engine(tmp_path, info_exit=0), "billing")
    assert result.returncode == 1
    assert "unknown image 'billing'" in result.stderr
