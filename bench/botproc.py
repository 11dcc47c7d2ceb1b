"""Run a bot as its own process, from this tree or from another git revision (a baseline), so that
two versions of the bot are measured side by side in one run against the same homeserver.

    tree = source_tree("88c8f17")         # `git archive` of that revision into a temp dir
    async with bot_process(config_dict, tree, state_dir) as proc: ...
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from io import BytesIO
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent


def source_tree(revision: str | None) -> Path:
    """This working tree (None), or a copy of `revision` exported from git."""
    if revision is None:
        return REPO
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", revision, "bot", "commands"],
                             check=True, capture_output=True).stdout
    target = Path(tempfile.mkdtemp(prefix=f"sab-rev-{revision[:10]}-"))
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def describe_revision(revision: str) -> str:
    out = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%h %s", revision],
                         capture_output=True, text=True)
    return out.stdout.strip() or revision


@asynccontextmanager
async def bot_process(config: dict[str, Any], tree: Path, state_dir: Path, *,
                      log_level: str = "WARNING") -> AsyncIterator[subprocess.Popen[bytes]]:
    state_dir.mkdir(parents=True, exist_ok=True)
    config_path = state_dir / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": str(tree)}
    log = (state_dir / "bot.log").open("ab")  # a restarted bot (bench/soak.py) adds to the same log
    proc = subprocess.Popen([sys.executable, "-m", "bot", "--log-level", log_level, "run", "--config",
                             str(config_path)], cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 30)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)
        log.close()


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (Linux)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")
