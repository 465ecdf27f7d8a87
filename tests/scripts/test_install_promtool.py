"""scripts/install-promtool: the binaries from Debian's package, or the ones already installed; a clear error
otherwise. Each case runs a copy of the script in its own directory, so the project's .cache is left alone."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.broker import ROOT
from tests.support.prometheus import promtool_path

pytestmark = pytest.mark.unit

SCRIPT = ROOT / "scripts" / "install-promtool"


def copy_of_the_script(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy2(SCRIPT, tmp_path / "scripts" / "install-promtool")
    return tmp_path / "scripts" / "install-promtool"


def run(script: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=120, check=False)


def fake_tool(directory: Path, name: str) -> Path:
    """A stand-in that answers --version like promtool does (the script only asks that)."""
    directory.mkdir(exist_ok=True)
    tool = directory / name
    tool.write_text(f"#!/bin/sh\necho '{name}, version 0.0.0-test'\n")
    tool.chmod(0o755)
    return tool


def test_installed_binaries_are_linked_and_a_second_run_does_nothing(tmp_path: Path) -> None:
    script = copy_of_the_script(tmp_path)
    promtool, prometheus = fake_tool(tmp_path / "bin", "promtool"), fake_tool(tmp_path / "bin", "prometheus")
    env = {"PATH": "/usr/bin:/bin", "PROMTOOL": str(promtool), "PROMETHEUS": str(prometheus)}
    first = run(script, env)
    assert first.returncode == 0, first.stderr
    assert (tmp_path / ".cache" / "bin" / "promtool").resolve() == promtool
    assert (tmp_path / ".cache" / "bin" / "prometheus").resolve() == prometheus
    second = run(script, env)
    assert second.returncode == 0 and second.stdout == ""


def test_without_promtool_or_apt_it_says_what_to_install(tmp_path: Path) -> None:
    script = copy_of_the_script(tmp_path)
    # Only bash's own basics on the PATH: no promtool, no apt-get, no dpkg-deb.
    tools = tmp_path / "tools"
    tools.mkdir()
    for name in ("bash", "mkdir", "id", "dirname", "cat"):
        found = shutil.which(name)
        assert found is not None
        os.symlink(found, tools / name)
    result = run(script, {"PATH": str(tools)})
    assert result.returncode == 1
    assert "install Prometheus' promtool with your package manager, or set PROMTOOL" in result.stderr


def test_make_promtool_left_a_working_promtool() -> None:
    """What `make promtool` left for the rest of the suite (the rule tests depend on it)."""
    version = subprocess.run([promtool_path(), "--version"], capture_output=True, text=True, timeout=30, check=True)
    assert "promtool, version" in version.stdout + version.stderr
