"""The Dockerfile builds (where a Docker engine is available; CI machines of this kind have none)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_image_builds_and_runs_as_non_root() -> None:
    if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.skip("no Docker engine on this machine: the Dockerfile build is not checked here")
    subprocess.run(["docker", "build", "-t", "synapse-admin-bot:test", str(ROOT)], check=True, capture_output=True)
    user = subprocess.run(["docker", "run", "--rm", "--entrypoint", "id", "synapse-admin-bot:test", "-u"],
                          check=True, capture_output=True, text=True).stdout.strip()
    assert user != "0"
    result = subprocess.run(["docker", "run", "--rm", "synapse-admin-bot:test", "check", "--config", "/nowhere.yaml"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "cannot read" in result.stderr
